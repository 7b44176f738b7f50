/**
 * The access-token cache inside the sealed store: lookups and updates as pure functions over
 * `Secrets`, with MSAL's semantics (reference §1.4): an access token matches when identity,
 * authority host and tenant are equal and the requested scope is one of its scopes; it is
 * reused while more than 5 minutes remain (and its `refresh_in` has not passed).
 */
import type { Cloud } from "../clouds.js";
import { environment } from "../entra/authority.js";
import type { TokenResult } from "../flows/token.js";
import type { AccessTokenEntry, RefreshTokenEntry, Secrets } from "../store/types.js";

/** Reuse a cached token only while more than this remains (as az/MSAL: 300 s). */
export const REUSE_MARGIN_S = 300;

/** A token with less than this left is not served even as a fallback. */
export const FALLBACK_MIN_S = 5;

/** Who a token is for. */
export interface TokenKey {
  /** `<uid>.<utid>` for users, null for service principals and managed identities. */
  homeAccountId: string | null;
  /** Username, service-principal client id, or managed identity name. */
  principal: string;
  clientId: string;
  cloud: string;
  tenantId: string;
  /** The scopes asked for; a token matches when it has all of them. */
  scopes: readonly string[];
}

function scopesOf(target: string): string[] {
  return target.split(" ").filter(Boolean);
}

function sameKey(e: AccessTokenEntry, k: TokenKey): boolean {
  return (
    e.homeAccountId === k.homeAccountId &&
    e.principal.toLowerCase() === k.principal.toLowerCase() &&
    e.clientId === k.clientId &&
    e.cloud === k.cloud &&
    e.tenantId.toLowerCase() === k.tenantId.toLowerCase() &&
    k.scopes.every((s) => scopesOf(e.target).includes(s))
  );
}

/** The cached token for `key` with the most time left, whatever that is. */
export function findAccessToken(secrets: Secrets, key: TokenKey): AccessTokenEntry | undefined {
  let best: AccessTokenEntry | undefined;
  for (const e of secrets.accessTokens) {
    if (sameKey(e, key) && (!best || e.expiresOn > best.expiresOn)) best = e;
  }
  return best;
}

/** A cached token may be handed out without asking the identity provider. */
export function isFresh(e: AccessTokenEntry, nowS: number): boolean {
  if (e.expiresOn - nowS <= REUSE_MARGIN_S) return false;
  if (e.refreshOn !== undefined && e.refreshOn <= nowS) return false;
  return true;
}

/** Still usable, if aging: served when the identity provider cannot be reached. */
export function isUsable(e: AccessTokenEntry, nowS: number): boolean {
  return e.expiresOn - nowS > FALLBACK_MIN_S;
}

/**
 * The refresh token of a user: matched by username (case-insensitive) and cloud, preferring the
 * account's `homeAccountId` when known; newest first (as MSAL tries them).
 */
export function findRefreshToken(
  secrets: Secrets,
  user: { username: string; cloud: string; homeAccountId?: string | undefined },
): RefreshTokenEntry | undefined {
  const candidates = secrets.refreshTokens.filter(
    (r) => r.username.toLowerCase() === user.username.toLowerCase() && r.cloud === user.cloud,
  );
  const preferred = user.homeAccountId
    ? candidates.filter((r) => r.homeAccountId === user.homeAccountId)
    : [];
  const pool = preferred.length ? preferred : candidates;
  return pool.sort((a, b) => b.lastModified - a.lastModified)[0];
}

/**
 * Stores `entry`: replaces tokens with the same identity, tenant and an overlapping scope, and
 * drops every expired token while at it, so the sealed blob stays small.
 */
export function putAccessToken(secrets: Secrets, entry: AccessTokenEntry, nowS: number): void {
  const scopes = scopesOf(entry.target);
  secrets.accessTokens = secrets.accessTokens.filter((e) => {
    if (e.expiresOn <= nowS) return false;
    const same =
      e.homeAccountId === entry.homeAccountId &&
      e.principal.toLowerCase() === entry.principal.toLowerCase() &&
      e.clientId === entry.clientId &&
      e.cloud === entry.cloud &&
      e.tenantId.toLowerCase() === entry.tenantId.toLowerCase() &&
      scopesOf(e.target).some((s) => scopes.includes(s));
    return !same;
  });
  secrets.accessTokens.push(entry);
}

/**
 * The target to store: the scopes the server granted plus the ones asked for, so the next
 * lookup for the same scope hits even when the server echoes a different spelling (Entra
 * answers `.default` requests with `…/user_impersonation`).
 */
export function targetFor(requested: readonly string[], granted: string | undefined): string {
  const scopes = scopesOf(granted ?? "");
  for (const r of requested) if (!scopes.includes(r)) scopes.push(r);
  return scopes.join(" ");
}

/**
 * The cache entry of a token just granted to `key`'s identity by `cloud`'s identity provider,
 * for the `scopes` asked (kept next to the granted ones, see `targetFor`). One shape for every
 * writer: sign-in, the token policy and `import az`'s verification.
 */
export function grantedAccessToken(
  key: { homeAccountId: string | null; principal: string; clientId: string; cloud: string; tenantId: string },
  cloud: Cloud,
  grant: Pick<TokenResult, "accessToken" | "tokenType" | "expiresOn" | "refreshOn" | "scope">,
  scopes: readonly string[],
  nowS: number,
): AccessTokenEntry {
  return {
    homeAccountId: key.homeAccountId,
    principal: key.principal,
    clientId: key.clientId,
    environment: environment(cloud),
    cloud: key.cloud,
    tenantId: key.tenantId,
    target: targetFor(scopes, grant.scope),
    secret: grant.accessToken,
    tokenType: grant.tokenType || "Bearer",
    expiresOn: grant.expiresOn,
    cachedAt: nowS,
    ...(grant.refreshOn !== undefined ? { refreshOn: grant.refreshOn } : {}),
  };
}
