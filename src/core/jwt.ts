/**
 * Local decoding of a JSON Web Token (RFC 7519, compact JWS serialisation): header and claims,
 * without verifying the signature and without any network. Used by `azkeep token decode` (so
 * nobody pastes a token into a website to read it) and the library's `decodeJwt`: strict, with
 * a message for each way the input is not a JWT. A claim such as `tid` of a token azkeep just
 * received over TLS is read with `entra/jwt.ts` instead, which never throws.
 *
 * Deliberately dependency-free: it sits on hot paths where importing `jose` would cost start-up.
 */
import { AzkeepError } from "./errors.js";

export interface DecodedJwt {
  header: Record<string, unknown>;
  claims: Record<string, unknown>;
  /** Length in bytes of the decoded signature (0 for an unsecured `alg: none` token). */
  signatureBytes: number;
}

const B64URL = /^[A-Za-z0-9_-]*$/;

function malformed(reason: string): AzkeepError {
  return new AzkeepError("bad_input", `This is not a valid JWT: ${reason}.`, {
    hint: "Pass a token in the compact form header.payload.signature (three base64url parts), e.g. `azkeep account get-access-token --query accessToken -o tsv | azkeep token decode`.",
  });
}

function decodePart(part: string, name: string): Record<string, unknown> {
  if (part.length === 0) throw malformed(`the ${name} is empty`);
  if (!B64URL.test(part)) throw malformed(`the ${name} is not base64url`);
  if (part.length % 4 === 1) throw malformed(`the ${name} has an impossible base64url length`);
  const text = Buffer.from(part, "base64url").toString("utf8");
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw malformed(`the ${name} is not JSON`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value))
    throw malformed(`the ${name} is not a JSON object`);
  return value as Record<string, unknown>;
}

/**
 * Decodes `token` (surrounding whitespace, a `Bearer ` prefix and surrounding quotes are
 * tolerated, since tokens are often copied from headers or JSON). Throws an `AzkeepError` with
 * code `bad_input` whose message never contains the input.
 */
export function decodeJwt(token: string): DecodedJwt {
  let t = token.trim();
  if (/^bearer\s+/i.test(t)) t = t.replace(/^bearer\s+/i, "");
  if (t.length >= 2 && t.startsWith('"') && t.endsWith('"')) t = t.slice(1, -1);
  if (t.length === 0) throw malformed("the input is empty");
  const parts = t.split(".");
  if (parts.length === 5)
    throw malformed("it has five parts, so it is an encrypted JWE, which cannot be read without its key");
  if (parts.length !== 3)
    throw malformed(`it has ${parts.length} part${parts.length === 1 ? "" : "s"}, not 3`);
  const [h, p, s] = parts as [string, string, string];
  const header = decodePart(h, "header");
  const claims = decodePart(p, "payload");
  if (!B64URL.test(s)) throw malformed("the signature is not base64url");
  if (typeof header.alg !== "string") throw malformed('the header has no "alg"');
  return { header, claims, signatureBytes: Buffer.from(s, "base64url").length };
}

/** A numeric date claim (`exp`, `nbf`, `iat`) in epoch seconds, or undefined. */
export function numericDate(claims: Record<string, unknown>, name: string): number | undefined {
  const v = claims[name];
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}
