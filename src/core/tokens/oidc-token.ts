/**
 * Tokens of a generic OpenID sign-in (`azkeep login --authority ISSUER --client-id ID`), for
 * `account get-access-token --authority ISSUER` and `rest --authority ISSUER --url …`.
 *
 * The same policy as Azure tokens, smaller: the cached access token while more than 5 minutes
 * remain (unless `forceRefresh`), else, under the store lock, a refresh through openid-client
 * (`oidcRefresh`: discovery of the issuer recorded with the refresh token, then the refresh
 * grant), retried on network trouble. The refresh token is sent only to the issuer it was
 * issued by (its `environment`, sealed with it), never to a host named on the command line.
 */
import type { Context } from "../context.js";
import { AuthenticationRequiredError } from "../errors.js";
import { registerSecrets } from "../redact.js";
import type { AccessTokenEntry, RefreshTokenEntry, Secrets, Store } from "../store/types.js";
import { DEFAULT_RETRY, withRetries } from "./retry.js";

export const OIDC_PREFIX = "oidc:";

export interface OidcTokenRequest {
  /** The issuer given to `login --authority` (a trailing slash does not matter). */
  issuer: string;
  /** When several clients of the issuer are signed in. */
  clientId?: string | undefined;
  /** Default: the scopes of the sign-in. */
  scopes?: string[] | undefined;
  forceRefresh?: boolean | undefined;
  signal?: AbortSignal | undefined;
}

export interface OidcToken {
  accessToken: string;
  tokenType: string;
  /** Epoch seconds. */
  expiresOn: number;
  issuer: string;
  username: string;
  source: "cache" | "network";
}

const norm = (issuer: string) => issuer.trim().replace(/\/+$/, "").toLowerCase();

function findSignIn(secrets: Secrets, req: OidcTokenRequest): RefreshTokenEntry {
  const want = norm(req.issuer);
  const all = secrets.refreshTokens
    .filter((r) => r.cloud.startsWith(OIDC_PREFIX) && norm(r.cloud.slice(OIDC_PREFIX.length)) === want)
    .filter((r) => !req.clientId || r.clientId === req.clientId)
    .sort((a, b) => b.lastModified - a.lastModified);
  const rt = all[0];
  if (!rt) {
    throw new AuthenticationRequiredError(
      `No sign-in to the OpenID provider ${req.issuer}${req.clientId ? ` with client ${req.clientId}` : ""} is stored.`,
      {
        hint: `Run \`azkeep login --authority ${req.issuer} --client-id ${req.clientId ?? "CLIENT_ID"}\` first.`,
      },
    );
  }
  return rt;
}

function findCached(
  secrets: Secrets,
  rt: RefreshTokenEntry,
  scopes: string[] | undefined,
): AccessTokenEntry | undefined {
  return secrets.accessTokens
    .filter(
      (a) =>
        a.cloud === rt.cloud &&
        a.clientId === rt.clientId &&
        a.principal === rt.username &&
        (!scopes?.length || scopes.every((s) => a.target.split(" ").includes(s))),
    )
    .sort((a, b) => b.cachedAt - a.cachedAt)[0];
}

const FRESH_S = 300;

/** The access token of a generic OpenID sign-in (cached, or refreshed). */
export async function acquireOidcToken(
  ctx: Context,
  store: Store,
  req: OidcTokenRequest,
): Promise<OidcToken> {
  const nowS = () => Math.floor(ctx.clock.now() / 1000);
  const secrets = await store.readSecrets();
  registerSecrets(secrets);
  const rt0 = findSignIn(secrets, req);
  const issuer0 = rt0.cloud.slice(OIDC_PREFIX.length);
  const answer = (a: AccessTokenEntry, rt: RefreshTokenEntry, source: OidcToken["source"]): OidcToken => ({
    accessToken: a.secret,
    // openid-client lower-cases it; az and every client print and send `Bearer`.
    tokenType: !a.tokenType || a.tokenType.toLowerCase() === "bearer" ? "Bearer" : a.tokenType,
    expiresOn: a.expiresOn,
    issuer: rt.cloud.slice(OIDC_PREFIX.length),
    username: rt.username,
    source,
  });
  const cached = findCached(secrets, rt0, req.scopes);
  if (!req.forceRefresh && cached && cached.expiresOn - nowS() > FRESH_S) return answer(cached, rt0, "cache");
  const startedS = nowS();
  return store.update(async (state) => {
    const rt = findSignIn(state.secrets, { ...req, issuer: issuer0, clientId: rt0.clientId });
    const current = findCached(state.secrets, rt, req.scopes);
    const now = nowS();
    if (current && current.expiresOn - now > FRESH_S && (!req.forceRefresh || current.cachedAt > startedS))
      return answer(current, rt, "cache");
    const { oidcRefresh } = await import("../flows/oidc.js");
    const t = await withRetries(
      ctx,
      DEFAULT_RETRY,
      () =>
        oidcRefresh(ctx, {
          // Where the refresh token was issued (sealed with it), not what the command line says.
          issuer: rt.environment || issuer0,
          clientId: rt.clientId,
          refreshToken: rt.secret,
          ...(req.scopes?.length ? { scopes: req.scopes } : {}),
        }),
      req.signal ? { signal: req.signal } : {},
    );
    const at = nowS();
    const target = t.scope || (req.scopes ?? []).join(" ") || current?.target || "";
    const entry: AccessTokenEntry = {
      homeAccountId: rt.homeAccountId,
      principal: rt.username,
      clientId: rt.clientId,
      environment: rt.environment,
      cloud: rt.cloud,
      tenantId: rt.homeTenantId,
      target,
      secret: t.accessToken,
      tokenType: t.tokenType || "Bearer",
      expiresOn: t.expiresOn,
      cachedAt: at,
    };
    state.secrets.accessTokens = state.secrets.accessTokens.filter(
      (a) =>
        !(
          a.cloud === rt.cloud &&
          a.clientId === rt.clientId &&
          a.principal === rt.username &&
          a.target === target
        ),
    );
    state.secrets.accessTokens.push(entry);
    if (t.refreshToken) {
      rt.secret = t.refreshToken;
      rt.lastModified = at;
    }
    return answer(entry, rt, "network");
  });
}
