/**
 * The token acquisition policy (design §7): how an access token is obtained for a request.
 *
 * 1. Without a lock: read the profile and the sealed secrets; a cached token with more than
 *    5 minutes left (and whose `refresh_in` has not passed) is returned at once. This is the
 *    hot path: no network, no lock, no write.
 * 2. Otherwise, under the store's cross-process lock (`Store.update`): re-read, and if another
 *    process refreshed meanwhile, return its token. Only if nobody did, ask the identity
 *    provider — so N processes racing on an expired token cause one token request and all N
 *    succeed (single flight across processes).
 * 3. Users: one refresh token serves every resource and tenant. Service principals re-acquire
 *    with their stored credential (a federated token file is re-read). Managed identities ask
 *    their endpoint.
 * 4. Network errors, timeouts, 5xx and 429 are retried with backoff, honouring Retry-After,
 *    within a bounded budget; they never cost the refresh token. When they persist and a
 *    still-valid (aging) token is in hand, that token is served. A failure is remembered for a
 *    few seconds so that the processes queued behind the lock do not each repeat the retries.
 * 5. `invalid_grant` / `interaction_required` end with the exact `azkeep login …` command (the
 *    flows put it in the error's hint); nothing is deleted.
 *
 * A claims challenge skips the cache, as MSAL does.
 */
import {
  BUILTIN_CLOUDS,
  DEFAULT_CLOUD,
  RESOURCE_TYPES,
  resourceToScope,
  type Cloud,
  type ResourceType,
} from "../clouds.js";
import type { Context } from "../context.js";
import type {
  TokenResult,
  acquireForManagedIdentity,
  acquireForServicePrincipal,
  acquireWithRefreshToken,
} from "../flows/token.js";
import { AuthenticationRequiredError, AzkeepError, NetworkError } from "../errors.js";
import { findSubscription, unquote } from "../profile/accounts.js";
import type { SubscriptionEntry } from "../profile/types.js";
import { checkBinding } from "../store/integrity.js";
import type { AccessTokenEntry, Secrets, ServicePrincipalEntry, Store } from "../store/types.js";
import { identityKind, managedIdentitySelector } from "./account.js";
import {
  findAccessToken,
  findRefreshToken,
  grantedAccessToken,
  isFresh,
  isUsable,
  putAccessToken,
  type TokenKey,
} from "./cache.js";
import type { FailureMemo } from "./memo.js";
import { registerSecrets } from "../redact.js";
import { DEFAULT_RETRY, FALLBACK_RETRY, withRetries, type RetryPolicy } from "./retry.js";

/** What a token source answers: the part of `core/flows/token.ts`'s `TokenResult` the policy uses. */
export type Grant = Pick<
  TokenResult,
  "accessToken" | "tokenType" | "expiresOn" | "refreshOn" | "refreshToken" | "scope" | "tenantId"
>;

/**
 * Where tokens come from: one request each, no retries (the policy retries), with the requests
 * of `core/flows/token.ts` — the default, imported only when the cache cannot answer.
 */
export interface TokenSource {
  refresh(ctx: Context, req: Parameters<typeof acquireWithRefreshToken>[1]): Promise<Grant>;
  servicePrincipal(ctx: Context, req: Parameters<typeof acquireForServicePrincipal>[1]): Promise<Grant>;
  managedIdentity(ctx: Context, req: Parameters<typeof acquireForManagedIdentity>[1]): Promise<Grant>;
}

export interface TokenRequest {
  /**
   * v2 scopes, e.g. `["https://management.core.windows.net//.default"]`. When empty, the scope
   * comes from `resource`, else `resourceType`, else the cloud's ARM audience (as az does).
   */
  scopes?: string[];
  /** A v1 resource: the scope is `resource + "/.default"`, keeping a trailing slash. */
  resource?: string;
  /** `arm`, `ms-graph`, …: an endpoint of the account's cloud. */
  resourceType?: ResourceType;
  /** Subscription id or name (either case); default: the default subscription. */
  subscription?: string;
  /** Tenant to get the token from; default: the account's tenant. */
  tenant?: string;
  /** A claims challenge (JSON or base64 JSON): skips the cache. */
  claims?: string;
  /**
   * Skip the cached access token and ask the identity provider (MSAL's `force_refresh`): for a
   * token the resource refused though it has not expired. The new token replaces the cached one.
   */
  forceRefresh?: boolean;
}

export interface TokenResponse {
  accessToken: string;
  tokenType: string;
  /** Epoch seconds. */
  expiresOn: number;
  /** The tenant asked (or the account's). */
  tenant: string;
  /** The account's subscription id. */
  subscription: string;
  /** Where the token came from; `fallback` = the IdP failed and an aging token was served. */
  source: "cache" | "network" | "fallback";
  /** Epoch seconds after which the policy refreshes early (the IdP's `refresh_in`), when set. */
  refreshOn?: number;
}

export interface PolicyDeps {
  store: Store;
  /** Default: `core/flows/token.ts`, loaded lazily. */
  source?: TokenSource;
  /** Cloud by name (`environmentName`); default: the built-in clouds. */
  resolveCloud?: (name: string) => Cloud | Promise<Cloud>;
  /** The active cloud's name: requests use its accounts only (as az); default `AzureCloud`. */
  activeCloud?: () => string | Promise<string>;
  retry?: RetryPolicy;
  fallbackRetry?: RetryPolicy;
  /** Remembers recent failures across processes; default: a file in the runtime folder. */
  memo?: FailureMemo;
  signal?: AbortSignal;
  /**
   * Asked first: the azkeep agent, when one runs (the CLI, the shim and the library set it;
   * `core` does not know the agent). `undefined` means "answer here".
   */
  delegate?: (request: TokenRequest) => Promise<TokenResponse | undefined>;
}

const nowS = (ctx: Context): number => Math.floor(ctx.clock.now() / 1000);

function builtinCloud(name: string): Cloud {
  const c = BUILTIN_CLOUDS.find((b) => b.name.toLowerCase() === name.toLowerCase());
  if (!c) {
    throw new AzkeepError("not_found", `The cloud '${name}' of this account is not known.`, {
      hint: "Run `azkeep cloud list` to see the registered clouds, or sign in again with `azkeep login`.",
    });
  }
  return c;
}

async function defaultSource(): Promise<TokenSource> {
  const flows = await import("../flows/token.js");
  return {
    refresh: (ctx, req) => flows.acquireWithRefreshToken(ctx, req),
    servicePrincipal: (ctx, req) => flows.acquireForServicePrincipal(ctx, req),
    managedIdentity: (ctx, req) => flows.acquireForManagedIdentity(ctx, req),
  };
}

/** The `resource` of a v2 scope (`…/.default` trimmed), for managed identity endpoints. */
export function scopeToResource(scope: string): string {
  return scope.replace(/\/\.default$/, "");
}

interface Plan {
  account: SubscriptionEntry;
  kind: ReturnType<typeof identityKind>;
  tenant: string;
  key: TokenKey;
  /** Users: the key of the refresh token; filled from secrets. */
  homeAccountId?: string;
}

/** A request whose scopes are known. */
type ScopedRequest = TokenRequest & { scopes: string[] };

/** The scopes of a request (reference §2.4): `--scope` as is, else the resource's `/.default`. */
export function requestScopes(cloud: Cloud, req: TokenRequest): string[] {
  if (req.scopes && req.scopes.length > 0) return req.scopes;
  if (req.resource) return [resourceToScope(req.resource)];
  const field = RESOURCE_TYPES[req.resourceType ?? "arm"];
  const resource = cloud.endpoints[field];
  if (!resource) {
    throw new AzkeepError(
      "not_found",
      `The cloud '${cloud.name}' has no endpoint for --resource-type ${req.resourceType ?? "arm"}.`,
      { hint: "Pass the resource itself with --resource, or a scope with --scope." },
    );
  }
  return [resourceToScope(resource)];
}

function plan(account: SubscriptionEntry, secrets: Secrets, req: ScopedRequest): Plan {
  const kind = identityKind(account);
  const tenant = req.tenant ? unquote(req.tenant) : account.tenantId;
  const cloud = account.environmentName;
  if (kind === "user") {
    const rt = findRefreshToken(secrets, { username: account.user.name, cloud });
    if (!rt) {
      throw new AuthenticationRequiredError(`User '${account.user.name}' has no sign-in in azkeep's store.`, {
        hint: `Run \`azkeep login${tenant ? ` --tenant ${tenant}` : ""}\` to sign in.`,
      });
    }
    return {
      account,
      kind,
      tenant,
      homeAccountId: rt.homeAccountId,
      key: {
        homeAccountId: rt.homeAccountId,
        principal: account.user.name,
        clientId: rt.clientId,
        cloud,
        tenantId: tenant,
        scopes: req.scopes,
      },
    };
  }
  if (kind === "managedIdentity") {
    if (req.tenant && unquote(req.tenant).toLowerCase() !== account.tenantId.toLowerCase()) {
      throw new AzkeepError(
        "bad_input",
        "For a managed identity account, getting an access token for another tenant is not supported.",
        { hint: `Leave out --tenant, or pass the account's tenant ${account.tenantId}.` },
      );
    }
    const sel = managedIdentitySelector(account);
    return {
      account,
      kind,
      tenant: account.tenantId,
      key: {
        homeAccountId: null,
        principal: account.user.assignedIdentityInfo ?? account.user.name,
        clientId: sel.clientId ?? "managed-identity",
        cloud,
        tenantId: account.tenantId,
        scopes: req.scopes,
      },
    };
  }
  return {
    account,
    kind,
    tenant,
    key: {
      homeAccountId: null,
      principal: account.user.name,
      clientId: account.user.name,
      cloud,
      tenantId: tenant,
      scopes: req.scopes,
    },
  };
}

function respond(e: AccessTokenEntry, p: Plan, source: TokenResponse["source"]): TokenResponse {
  return {
    accessToken: e.secret,
    tokenType: e.tokenType || "Bearer",
    expiresOn: e.expiresOn,
    tenant: p.tenant,
    subscription: p.account.id,
    source,
    ...(e.refreshOn !== undefined ? { refreshOn: e.refreshOn } : {}),
  };
}

function validate(req: ScopedRequest): void {
  if (req.scopes.length === 0 || req.scopes.some((s) => !s || /\s/.test(s))) {
    throw new AzkeepError("bad_input", "Give one or more scopes without spaces.", {
      hint: "For example `--scope https://management.core.windows.net//.default`.",
    });
  }
}

/**
 * Gets an access token for `req`, from the cache when it has more than 5 minutes left,
 * otherwise from the identity provider (single flight across processes).
 */
export async function acquireToken(
  ctx: Context,
  deps: PolicyDeps,
  request: TokenRequest,
): Promise<TokenResponse> {
  if (deps.delegate) {
    const answered = await deps.delegate(request);
    if (answered) return answered;
  }
  const { store } = deps;
  const [profile, secrets, activeCloud] = await Promise.all([
    store.readProfile(),
    store.readSecrets(),
    deps.activeCloud?.() ?? DEFAULT_CLOUD,
  ]);
  registerSecrets(secrets);
  const account = findSubscription(profile, activeCloud, request.subscription);
  const resolveCloud = deps.resolveCloud ?? builtinCloud;
  const cloud = await resolveCloud(account.environmentName);
  const req: ScopedRequest = { ...request, scopes: requestScopes(cloud, request) };
  validate(req);
  const first = plan(account, secrets, req);
  const skipCache = Boolean(req.claims) || req.forceRefresh === true;
  if (!skipCache) {
    const cached = findAccessToken(secrets, first.key);
    if (cached && isFresh(cached, nowS(ctx))) {
      ctx.logger.debug(`token: cache hit (${cached.expiresOn - nowS(ctx)} s left)`);
      return respond(cached, first, "cache");
    }
  }
  // Imported here, off the cached path: it needs node:fs/promises.
  const memo = deps.memo ?? (await import("./memo.js")).createFileFailureMemo(ctx);
  const startedS = nowS(ctx);

  return store.update(async (state) => {
    // Re-read under the lock: another process may have refreshed (or signed out) meanwhile.
    const acct = state.profile.subscriptions.find(
      (e) =>
        e.id === account.id &&
        e.environmentName === account.environmentName &&
        e.user.type === account.user.type &&
        e.user.name.toLowerCase() === account.user.name.toLowerCase(),
    );
    if (!acct) {
      throw new AuthenticationRequiredError(`'${account.user.name}' was signed out meanwhile.`, {
        hint: "Run `azkeep login` to sign in again.",
      });
    }
    const p = plan(acct, state.secrets, req);
    const now = nowS(ctx);
    const current = findAccessToken(state.secrets, p.key);
    if (!skipCache && current && isFresh(current, now)) {
      ctx.logger.debug("token: refreshed by another process meanwhile");
      return respond(current, p, "cache");
    }
    if (req.forceRefresh && !req.claims && current && current.cachedAt > startedS && isFresh(current, now)) {
      ctx.logger.debug("token: force-refreshed by another process meanwhile");
      return respond(current, p, "network");
    }
    const fallback = current && isUsable(current, now) && !skipCache ? current : undefined;
    const memoKey = `${p.key.cloud}|${p.key.principal}|${p.key.tenantId}|${p.key.scopes.join(" ")}`;
    const recent = await memo.get(memoKey);
    if (recent) {
      if (fallback) {
        ctx.logger.debug("token: identity provider failed moments ago; serving the cached token");
        return respond(fallback, p, "fallback");
      }
      // The failure may be this user's own previous command, or a process running beside it.
      throw new NetworkError(recent.message, {
        hint: `azkeep failed to get this token moments ago (an earlier command, or one running beside this one) and waits before asking again: try again in ${Math.max(1, Math.ceil(recent.retryInMs / 1000))} s.`,
      });
    }

    // A credential goes only where it was issued (its binding is sealed with it), whatever the
    // plain files say; checked once, before any request (a refusal is not retried).
    if (p.kind === "user") {
      const rt = findRefreshToken(state.secrets, {
        username: acct.user.name,
        cloud: acct.environmentName,
        homeAccountId: p.homeAccountId,
      });
      if (rt) checkBinding(rt, cloud, acct.user.name);
    } else if (p.kind === "servicePrincipal") {
      checkBinding(findServicePrincipal(state.secrets, acct.user.name, p.tenant), cloud, acct.user.name);
    }
    const source = deps.source ?? (await defaultSource());
    const policy = fallback ? (deps.fallbackRetry ?? FALLBACK_RETRY) : (deps.retry ?? DEFAULT_RETRY);
    const claims = req.claims ? { claims: req.claims } : {};
    let grant: Grant;
    try {
      grant = await withRetries(
        ctx,
        policy,
        async ({ signal }) => {
          const actx = withSignal(ctx, signal);
          if (p.kind === "user") {
            const rt = findRefreshToken(state.secrets, {
              username: acct.user.name,
              cloud: acct.environmentName,
              homeAccountId: p.homeAccountId,
            });
            if (!rt)
              throw new AuthenticationRequiredError("The sign-in is gone.", { hint: "Run `azkeep login`." });
            return source.refresh(actx, {
              cloud,
              tenant: p.tenant,
              clientId: rt.clientId,
              refreshToken: rt.secret,
              scopes: [...req.scopes],
              ...claims,
            });
          }
          if (p.kind === "servicePrincipal") {
            const sp = findServicePrincipal(state.secrets, acct.user.name, p.tenant);
            return source.servicePrincipal(actx, {
              cloud,
              tenant: p.tenant,
              clientId: sp.clientId,
              credential: sp.credential,
              scopes: [...req.scopes],
              ...claims,
            });
          }
          if (req.scopes.length !== 1) {
            throw new AzkeepError("bad_input", "A managed identity token is for exactly one resource.", {
              hint: "Give a single --scope or --resource.",
            });
          }
          return source.managedIdentity(actx, {
            resource: scopeToResource(req.scopes[0]!),
            ...managedIdentitySelector(acct),
          });
        },
        {
          ...(deps.signal ? { signal: deps.signal } : {}),
          onRetry: (e, ms) => ctx.logger.debug(`token: ${e.message} Retrying in ${Math.round(ms)} ms.`),
        },
      );
    } catch (e) {
      if (e instanceof NetworkError) {
        await memo.set(memoKey, e.message, e.retryAfterMs);
        if (fallback) {
          ctx.logger.debug(
            `token: ${e.message} Serving the cached token (${fallback.expiresOn - now} s left).`,
          );
          return respond(fallback, p, "fallback");
        }
      }
      throw e;
    }

    const at = nowS(ctx);
    const entry = grantedAccessToken(p.key, cloud, grant, req.scopes, at);
    putAccessToken(state.secrets, entry, at);
    if (grant.refreshToken && p.kind === "user") {
      const rt = findRefreshToken(state.secrets, {
        username: acct.user.name,
        cloud: acct.environmentName,
        homeAccountId: p.homeAccountId,
      });
      if (rt) {
        rt.secret = grant.refreshToken;
        rt.lastModified = at;
      }
    }
    await memo.clear(memoKey);
    return respond(entry, p, "network");
  });
}

function findServicePrincipal(secrets: Secrets, clientId: string, tenant: string): ServicePrincipalEntry {
  const all = secrets.servicePrincipals.filter((s) => s.clientId.toLowerCase() === clientId.toLowerCase());
  const sp = all.find((s) => s.tenantId.toLowerCase() === tenant.toLowerCase()) ?? all[0];
  if (!sp) {
    throw new AuthenticationRequiredError(`No credential of service principal '${clientId}' is stored.`, {
      hint: `Run \`azkeep login --service-principal -u ${clientId} --tenant ${tenant}\` with its credential.`,
    });
  }
  return sp;
}

/** A Context whose fetch also aborts on `signal` (the per-attempt timeout of the retries). */
function withSignal(ctx: Context, signal: AbortSignal): Context {
  const base = ctx.fetch;
  const f = ((input: Parameters<typeof fetch>[0], init?: RequestInit) =>
    base(input, {
      ...init,
      signal: init?.signal ? AbortSignal.any([init.signal, signal]) : signal,
    })) as typeof fetch;
  return { ...ctx, fetch: f };
}
