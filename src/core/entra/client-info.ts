/**
 * `client_info`: Entra returns it (when asked with `client_info=1`) as base64url JSON
 * `{uid, utid}`; MSAL keys accounts by `<uid>.<utid>` (the home account id), which stays the
 * same across tenants while `oid` in a guest tenant's token differs.
 */

export interface ClientInfo {
  uid: string;
  utid: string;
}

export function parseClientInfo(value: unknown): ClientInfo | undefined {
  if (typeof value !== "string" || !value) return undefined;
  try {
    const v = JSON.parse(Buffer.from(value, "base64url").toString("utf8")) as Record<string, unknown>;
    if (typeof v.uid === "string" && typeof v.utid === "string") return { uid: v.uid, utid: v.utid };
  } catch {
    /* not client_info */
  }
  return undefined;
}

export function homeAccountId(info: ClientInfo): string {
  return `${info.uid}.${info.utid}`;
}
