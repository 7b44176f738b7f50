/**
 * Reading claims from tokens without verifying them. Used only for values Entra also returns
 * elsewhere or that only label the result (`tid`, `oid`, `upn`, id-token `nonce` after TLS):
 * the client is not the audience of an access token and cannot verify it (why: Entra signs
 * Microsoft Graph tokens with a nonce header that breaks verification by anyone but Graph).
 */

export function decodeJwtPayload(token: string): Record<string, unknown> | undefined {
  const part = token.split(".")[1];
  if (!part) return undefined;
  try {
    const v: unknown = JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
    return typeof v === "object" && v !== null && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

export function stringClaim(claims: Record<string, unknown> | undefined, name: string): string | undefined {
  const v = claims?.[name];
  return typeof v === "string" && v ? v : undefined;
}
