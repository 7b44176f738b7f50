/**
 * Redaction of anything that looks like a token or secret, for `--debug` output, logs and
 * error messages. Threat: tokens leaking through logs pasted into issues or CI output.
 *
 * Three layers:
 * 1. Shapes: JWTs, `Bearer …` / `Basic …`, and `key=value` / `"key": "value"` pairs whose key
 *    names a secret (a query string's `sig=` of a SAS URL, a form's `client_secret=`, …).
 * 2. OAuth's `code` only where it is an authorization code: a `code=` in a query string or a
 *    form body. A JSON `"code"` is an error code (`"code":"MissingApiVersionParameter"`) and
 *    is kept, or every ARM error would read `[REDACTED]`.
 * 3. Exact values: every secret azkeep holds in the process (refresh tokens, client secrets,
 *    passwords, tokens it was just given) is registered with `registerSecret` and replaced
 *    wherever it appears — an opaque refresh token echoed in a server's body has no shape.
 *
 * It is deliberately greedy: a false positive costs a log line's readability, a false negative
 * leaks a credential.
 */

const REDACTED = "[REDACTED]";

/** JWTs (access tokens, id tokens, client assertions): three base64url parts, header `eyJ`. */
const JWT = /eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g;

/** Keys whose value is a secret, in JSON and in forms / query strings. */
const SECRET_KEYS =
  "access_?token|refresh_?token|id_?token|client_?secret|password|passphrase|assertion|client_assertion|secret|code_verifier|device_code|authorization|x-identity-header|api[-_]?key|token|sig|signature|x-amz-signature|x-goog-signature|subscription-key|sas_?token|account_?key|shared_?access_?key|sharedaccesssignature";
/** Query-string and form keys only: `code` is an authorization code there (RFC 6749 §4.1.2). */
const FORM_ONLY_KEYS = "code";
const PAIR_QUOTED = new RegExp(`("(?:${SECRET_KEYS})"\\s*:\\s*")([^"]*)(")`, "gi");
const PAIR_FORM = new RegExp(`(\\b(?:${SECRET_KEYS}|${FORM_ONLY_KEYS})=)([^&;\\s"'#]+)`, "gi");
const BEARER = /(\b(?:Bearer|Basic)\s+)[A-Za-z0-9._~+/=-]+/gi;
/** Storage and Service Bus authorization schemes: `SharedKey acct:sig`, `SharedAccessSignature sr=…&sig=…`. */
const SHARED = /(\b(?:SharedKey|SharedAccessSignature)\s+)[^\s"',]+/gi;
/** Connection strings: `AccountKey=…;`, `SharedAccessKey=…;`. */
const CONN_KEY = /(\b(?:AccountKey|SharedAccessKey)=)([^;\s"']+)/gi;

/** Shortest exact secret redacted: shorter ones would blank ordinary words. */
const MIN_EXACT = 8;
const exact = new Set<string>();
let exactSorted: string[] | undefined;

/**
 * Registers a secret azkeep holds in this process, so that `redact` removes it wherever it
 * appears (opaque refresh tokens, client secrets, passwords have no recognisable shape).
 */
export function registerSecret(value: string | undefined | null): void {
  if (typeof value !== "string" || value.length < MIN_EXACT || exact.has(value)) return;
  exact.add(value);
  // URL-encoded and base64url forms appear in query strings and forms.
  const enc = encodeURIComponent(value);
  if (enc !== value) exact.add(enc);
  exactSorted = undefined;
}

/** Registers every secret of a store's sealed contents (refresh tokens, tokens, credentials). */
export function registerSecrets(secrets: {
  refreshTokens?: readonly { secret: string }[];
  accessTokens?: readonly { secret: string }[];
  servicePrincipals?: readonly {
    credential: { kind: string; secret?: string; certificatePem?: string; token?: string };
  }[];
}): void {
  for (const r of secrets.refreshTokens ?? []) registerSecret(r.secret);
  for (const a of secrets.accessTokens ?? []) registerSecret(a.secret);
  for (const s of secrets.servicePrincipals ?? []) {
    const c = s.credential;
    registerSecret(c.secret);
    registerSecret(c.token);
    if (c.certificatePem) {
      // The key's base64 body, line by line as it appears in a PEM.
      for (const line of c.certificatePem.split(/\r?\n/))
        if (!line.startsWith("-----")) registerSecret(line.trim());
    }
  }
}

/** For tests: forget the registered secrets. */
export function clearRegisteredSecrets(): void {
  exact.clear();
  exactSorted = undefined;
}

function replaceExact(text: string): string {
  if (exact.size === 0) return text;
  exactSorted ??= [...exact].sort((a, b) => b.length - a.length);
  let out = text;
  for (const s of exactSorted) if (out.includes(s)) out = out.split(s).join(REDACTED);
  return out;
}

/** Returns `text` with every token-like or secret-like value replaced by `[REDACTED]`. */
export function redact(text: string): string {
  return replaceExact(text)
    .replace(JWT, REDACTED)
    .replace(PAIR_QUOTED, `$1${REDACTED}$3`)
    .replace(PAIR_FORM, `$1${REDACTED}`)
    .replace(CONN_KEY, `$1${REDACTED}`)
    .replace(BEARER, `$1${REDACTED}`)
    .replace(SHARED, `$1${REDACTED}`);
}

/** Removes given exact secret strings (e.g. a secret just read from stdin) from `text`. */
export function redactExact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s.length >= 4) out = out.split(s).join(REDACTED);
  return out;
}
