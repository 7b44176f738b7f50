/**
 * Redaction of anything that looks like a token or secret, for `--debug` output, logs and
 * error messages. Threat: tokens leaking through logs pasted into issues or CI output.
 *
 * It is deliberately greedy: a false positive costs a log line's readability, a false negative
 * leaks a credential.
 */

const REDACTED = "[REDACTED]";

/** JWTs (access tokens, id tokens, client assertions): three base64url parts, header `eyJ`. */
const JWT = /eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g;

/** `key=value` / `"key": "value"` / `key: value` pairs whose key names a secret. */
const SECRET_KEYS =
  "access_?token|refresh_?token|id_?token|client_?secret|password|passphrase|assertion|client_assertion|secret|code_verifier|code|device_code|authorization|x-identity-header|api[-_]?key|token";
const PAIR_QUOTED = new RegExp(`("(?:${SECRET_KEYS})"\\s*:\\s*")([^"]*)(")`, "gi");
const PAIR_FORM = new RegExp(`(\\b(?:${SECRET_KEYS})=)([^&\\s"']+)`, "gi");
const BEARER = /(\b(?:Bearer|Basic)\s+)[A-Za-z0-9._~+/=-]+/gi;

/** Returns `text` with every token-like or secret-like value replaced by `[REDACTED]`. */
export function redact(text: string): string {
  return text
    .replace(JWT, REDACTED)
    .replace(PAIR_QUOTED, `$1${REDACTED}$3`)
    .replace(PAIR_FORM, `$1${REDACTED}`)
    .replace(BEARER, `$1${REDACTED}`);
}

/** Removes given exact secret strings (e.g. a secret just read from stdin) from `text`. */
export function redactExact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s.length >= 4) out = out.split(s).join(REDACTED);
  return out;
}
