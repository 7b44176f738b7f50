/**
 * Sign-in orchestration (`azkeep login`): run one flow, discover tenants and subscriptions as
 * az does (reference §3.7), then save the profile entries, the refresh token or service
 * principal credential, and the access tokens got on the way, in one store update. Nothing is
 * saved unless the whole sign-in succeeds.
 */
import { AZURE_CLI_CLIENT_ID, resourceToScope, type Cloud } from "./clouds.js";
import type { Context } from "./context.js";
import { AzkeepError, IdentityProviderError, UsageError } from "./errors.js";
import { ORGANIZATIONS, environment, isValidTenant } from "./entra/authority.js";
import { listSubscriptions, listTenants, type ArmTenant } from "./profile/arm.js";
import { mergeSignIn, sameUser, setDefault, withCloudName } from "./profile/accounts.js";
import { TENANT_LEVEL_ACCOUNT_NAME, type ProfileUser, type SubscriptionEntry } from "./profile/types.js";
import type {
  AccessTokenEntry,
  RefreshTokenEntry,
  ServicePrincipalCredential,
  ServicePrincipalEntry,
  StoreState,
  Store,
} from "./store/types.js";
import { grantedAccessToken, putAccessToken } from "./tokens/cache.js";
import {
  acquireForManagedIdentity,
  acquireForServicePrincipal,
  acquireWithRefreshToken,
  type TokenResult,
} from "./flows/token.js";
import type { DeviceCodePrompt } from "./flows/user.js";

export type LoginMethod =
  | { kind: "browser"; port?: number; noBrowser?: boolean; timeoutMs?: number }
  | { kind: "device-code" }
  | { kind: "password"; username: string; password: string }
  | { kind: "service-principal"; clientId: string; credential: ServicePrincipalCredential }
  | { kind: "identity"; clientId?: string; objectId?: string; resourceId?: string }
  /** No person: re-discover with a stored refresh token (`account list --refresh`). */
  | { kind: "refresh-token"; username: string; refreshToken: string; clientId: string };

export interface LoginRequest {
  cloud: Cloud;
  method: LoginMethod;
  /** GUID or domain; default `organizations` (every tenant the user is in). */
  tenant?: string;
  /** Default: the cloud's ARM `.default` scope. */
  scopes?: string[];
  allowNoSubscriptions?: boolean;
  /** A claims challenge (JSON or base64 JSON) to satisfy. */
  claims?: string;
  /** Public client id for user sign-in; default the Azure CLI's. */
  clientId?: string;
  signal?: AbortSignal;
  onDeviceCode?: (p: DeviceCodePrompt) => void;
}

export interface LoginResult {
  /** The new entries, in az's output shape (`cloudName`). */
  subscriptions: Record<string, unknown>[];
  user: ProfileUser;
}

interface Collected {
  user: ProfileUser;
  entries: SubscriptionEntry[];
  tokens: { token: TokenResult; scopes: string[]; tenantLabel: string }[];
  /** What the store keeps of this sign-in (plain data: it may travel to the agent). */
  record: () => SignInRecord;
}

/**
 * What a finished sign-in adds to the store, as plain data: the profile entries, the one
 * credential (a user's refresh token or a service principal's credential; none for a managed
 * identity) and the access tokens got on the way. `applySignIn` merges it into a store state;
 * in agent-only mode the client sends it to the agent (`WriteOp` "signin"), which applies it
 * under the seal, where the credential is bound to the agent's verified cloud.
 */
export interface SignInRecord {
  cloud: string;
  user: ProfileUser;
  entries: SubscriptionEntry[];
  credential?:
    | { kind: "refresh-token"; entry: RefreshTokenEntry }
    | { kind: "service-principal"; entry: ServicePrincipalEntry };
  accessTokens: AccessTokenEntry[];
  /** Epoch seconds of the sign-in. */
  now: number;
}

/** Merges a sign-in into `state` (az's rules: core/profile/accounts.ts); returns the added entries. */
export function applySignIn(state: StoreState, r: SignInRecord): SubscriptionEntry[] {
  const added = mergeSignIn(state.profile, r.cloud, r.user, r.entries);
  const c = r.credential;
  if (c?.kind === "refresh-token") {
    const e = c.entry;
    state.secrets.refreshTokens = state.secrets.refreshTokens.filter(
      (x) =>
        !(
          x.cloud === e.cloud &&
          x.clientId === e.clientId &&
          (x.homeAccountId === e.homeAccountId || x.username.toLowerCase() === e.username.toLowerCase())
        ),
    );
    state.secrets.refreshTokens.push(withoutBinding(e));
  } else if (c?.kind === "service-principal") {
    const e = c.entry;
    state.secrets.servicePrincipals = state.secrets.servicePrincipals.filter(
      (x) =>
        !(
          x.clientId === e.clientId &&
          x.cloud === e.cloud &&
          x.tenantId.toLowerCase() === e.tenantId.toLowerCase()
        ),
    );
    state.secrets.servicePrincipals.push(withoutBinding(e));
  }
  for (const t of r.accessTokens) putAccessToken(state.secrets, t, r.now);
  return added;
}

/** The store binds a new credential itself (integrity.ts); a binding that came with it is dropped. */
function withoutBinding<T extends { bound?: unknown }>(e: T): T {
  const { bound: _bound, ...rest } = e;
  return rest as T;
}

/** The record of a sign-in: its entries, its credential and the access tokens got on the way. */
function recordOf(
  ctx: Context,
  cloud: Cloud,
  c: Pick<Collected, "user" | "entries" | "tokens">,
  key: { homeAccountId: string | null; principal: string; clientId: string; tenantId?: string },
  credential?: (now: number) => SignInRecord["credential"],
): SignInRecord {
  const now = nowSec(ctx);
  const cred = credential?.(now);
  return {
    cloud: cloud.name,
    user: c.user,
    entries: c.entries,
    now,
    ...(cred ? { credential: cred } : {}),
    accessTokens: c.tokens.map((t) =>
      grantedAccessToken(
        { ...key, tenantId: key.tenantId ?? t.token.tenantId, cloud: cloud.name },
        cloud,
        t.token,
        t.scopes,
        now,
      ),
    ),
  };
}

function armScope(cloud: Cloud): string {
  return resourceToScope(cloud.endpoints.activeDirectoryResourceId);
}

function nowSec(ctx: Context): number {
  return Math.floor(ctx.clock.now() / 1000);
}

function entryFor(
  cloud: Cloud,
  user: ProfileUser,
  tokenTenant: string,
  sub: {
    subscriptionId: string;
    displayName: string;
    state: string;
    tenantId?: string;
    managedByTenants?: { tenantId: string }[];
  },
  tenant?: ArmTenant,
): SubscriptionEntry {
  const e: SubscriptionEntry = {
    id: sub.subscriptionId,
    name: sub.displayName,
    state: sub.state,
    user,
    isDefault: false,
    tenantId: tokenTenant,
    environmentName: cloud.name,
    homeTenantId: sub.tenantId ?? tokenTenant,
    managedByTenants: sub.managedByTenants ?? [],
  };
  if (tenant?.defaultDomain) e.tenantDefaultDomain = tenant.defaultDomain;
  if (tenant?.displayName) e.tenantDisplayName = tenant.displayName;
  return e;
}

function tenantLevelEntry(
  cloud: Cloud,
  user: ProfileUser,
  tenantId: string,
  tenant?: ArmTenant,
): SubscriptionEntry {
  const e: SubscriptionEntry = {
    id: tenantId,
    name: TENANT_LEVEL_ACCOUNT_NAME,
    state: "Enabled",
    user,
    isDefault: false,
    tenantId,
    environmentName: cloud.name,
  };
  if (tenant?.defaultDomain) e.tenantDefaultDomain = tenant.defaultDomain;
  if (tenant?.displayName) e.tenantDisplayName = tenant.displayName;
  return e;
}

function describeTenant(t: ArmTenant): string {
  return `${t.tenantId} '${t.displayName ?? t.defaultDomain ?? ""}'`;
}

/** Checks the request before any network traffic: bad input fails fast with one message. */
export function validateLoginRequest(req: LoginRequest): void {
  if (req.tenant !== undefined && !isValidTenant(req.tenant)) {
    throw new UsageError(`'${req.tenant}' is not a tenant id or domain.`, {
      hint: "Pass --tenant as a GUID (11111111-…) or a domain such as contoso.onmicrosoft.com.",
    });
  }
  if (req.method.kind === "service-principal" && !req.tenant) {
    throw new UsageError("A service principal sign-in needs --tenant.", {
      hint: "Run `azkeep login --service-principal -u <app id> --tenant <tenant id or domain> …`.",
    });
  }
}

/** Signs in with `req.method`, discovers subscriptions and saves everything. */
export async function login(ctx: Context, store: Store, req: LoginRequest): Promise<LoginResult> {
  const record = await collectSignIn(ctx, req);
  const added = await store.update((state) => applySignIn(state, record));
  return { subscriptions: added.map(withCloudName), user: record.user };
}

/**
 * The network half of `login`: signs in and discovers, saving nothing. `login` applies the
 * record to a store this process opens; in agent-only mode the caller hands it to the agent.
 */
export async function collectSignIn(ctx: Context, req: LoginRequest): Promise<SignInRecord> {
  validateLoginRequest(req);
  switch (req.method.kind) {
    case "service-principal":
      return (await servicePrincipalLogin(ctx, req, req.method)).record();
    case "identity":
      return (await managedIdentityLogin(ctx, req, req.method)).record();
    default:
      return (await userLogin(ctx, req)).record();
  }
}

function noSubscriptions(name: string, mfa: ArmTenant[]): AzkeepError {
  return new AzkeepError("not_found", `No subscriptions found for ${name}.`, {
    hint:
      mfa.length > 0
        ? `Some tenants need multi-factor authentication; sign in to one of them with \`azkeep login --tenant ${mfa[0]?.tenantId ?? "TENANT_ID"}\`, or use \`azkeep login --allow-no-subscriptions\` for tenant-level access.`
        : "Run the login command again with --allow-no-subscriptions to have tenant-level access.",
  });
}

async function userLogin(ctx: Context, req: LoginRequest): Promise<Collected> {
  const { cloud } = req;
  const clientId =
    req.method.kind === "refresh-token" ? req.method.clientId : (req.clientId ?? AZURE_CLI_CLIENT_ID);
  const tenant = req.tenant ?? ORGANIZATIONS;
  const arm = armScope(cloud);
  const scopes = req.scopes?.length ? req.scopes : [arm];
  const base = {
    cloud,
    tenant,
    clientId,
    scopes,
    ...(req.claims ? { claims: req.claims } : {}),
    ...(req.signal ? { signal: req.signal } : {}),
  };
  const flows = await import("./flows/user.js");
  let first: { token: TokenResult; username: string };
  const method = req.method;
  if (method.kind === "refresh-token") {
    const t = await acquireWithRefreshToken(ctx, {
      ...base,
      clientId: method.clientId,
      refreshToken: method.refreshToken,
    });
    first = { token: t, username: method.username };
    if (!t.refreshToken) t.refreshToken = method.refreshToken;
  } else if (method.kind === "password") {
    ctx.logger.warn(
      "Signing in with a user name and password (ROPC) is discouraged: it fails for accounts with multi-factor authentication, which Entra ID enforces. Use `azkeep login` (browser) or `azkeep login --use-device-code`.",
    );
    first = await flows.passwordSignIn(ctx, {
      ...base,
      username: method.username,
      password: method.password,
    });
  } else if (method.kind === "browser") {
    try {
      first = await flows.browserSignIn(ctx, {
        ...base,
        ...(method.port === undefined ? {} : { port: method.port }),
        ...(method.noBrowser ? { noBrowser: true } : {}),
        ...(method.timeoutMs === undefined ? {} : { timeoutMs: method.timeoutMs }),
      });
    } catch (e) {
      const { BrowserUnavailableError } = await import("./flows/interactive.js");
      if (!(e instanceof BrowserUnavailableError)) throw e;
      ctx.logger.info("No web browser is available. Falling back to the device code flow.");
      ctx.progress.message("No web browser is available; signing in with a device code instead.");
      first = await flows.deviceCodeSignIn(ctx, {
        ...base,
        ...(req.onDeviceCode ? { onPrompt: req.onDeviceCode } : {}),
      });
    }
  } else {
    first = await flows.deviceCodeSignIn(ctx, {
      ...base,
      ...(req.onDeviceCode ? { onPrompt: req.onDeviceCode } : {}),
    });
  }

  const { token, username } = first;
  let refreshToken = token.refreshToken as string;
  const homeTenantId = token.clientInfo?.utid ?? token.tenantId;
  const oid = typeof token.idTokenClaims?.oid === "string" ? token.idTokenClaims.oid : undefined;
  const homeAccountId = token.homeAccountId ?? `${oid ?? username}.${homeTenantId}`;
  const user: ProfileUser = { name: username, type: "user" };
  const tokens: Collected["tokens"] = [{ token, scopes, tenantLabel: token.tenantId }];

  const coversArm = (t: TokenResult) => scopes.includes(arm) || t.scope.split(" ").includes(arm);
  /** An ARM token for `tid` from the refresh token (MRRT: any tenant, any resource). */
  const armTokenFor = async (tid: string): Promise<TokenResult> => {
    const cached = tokens.find((t) => t.tenantLabel === tid && t.scopes.includes(arm));
    if (cached) return cached.token;
    const t = await acquireWithRefreshToken(ctx, {
      cloud,
      tenant: tid,
      clientId,
      refreshToken,
      scopes: [arm],
      ...(req.claims ? { claims: req.claims } : {}),
    });
    if (t.refreshToken) refreshToken = t.refreshToken;
    tokens.push({ token: t, scopes: [arm], tenantLabel: tid });
    return t;
  };
  if (coversArm(token) && req.tenant)
    tokens[0] = { token, scopes: [arm, ...scopes.filter((s) => s !== arm)], tenantLabel: token.tenantId };

  const entries: SubscriptionEntry[] = [];
  const seen = new Map<string, string>();
  const mfa: ArmTenant[] = [];
  const empty: ArmTenant[] = [];
  const addSubs = async (tenantInfo: ArmTenant, armToken: TokenResult) => {
    const subs = await listSubscriptions(ctx, cloud, armToken.accessToken, req.signal);
    if (subs.length === 0) {
      if (req.allowNoSubscriptions)
        entries.push(tenantLevelEntry(cloud, user, tenantInfo.tenantId, tenantInfo));
      else empty.push(tenantInfo);
      return;
    }
    for (const s of subs) {
      const prev = seen.get(s.subscriptionId);
      if (prev) {
        ctx.logger.warn(
          `Subscription ${s.subscriptionId} '${s.displayName}' can be accessed from tenants ${prev}(default) and ${tenantInfo.tenantId}. To select a specific tenant when accessing this subscription, use \`azkeep login --tenant TENANT_ID\`.`,
        );
        continue;
      }
      seen.set(s.subscriptionId, tenantInfo.tenantId);
      entries.push(entryFor(cloud, user, tenantInfo.tenantId, s, tenantInfo));
    }
  };

  if (req.tenant) {
    const tid = token.tenantId;
    const armToken = coversArm(token) ? token : await armTokenFor(tid);
    await addSubs({ tenantId: armToken.tenantId || tid }, armToken);
  } else {
    const orgToken = coversArm(token) ? token : await armTokenFor(ORGANIZATIONS);
    const tenants = await listTenants(ctx, cloud, orgToken.accessToken, req.signal);
    for (const t of tenants) {
      let armToken: TokenResult;
      try {
        armToken = await armTokenFor(t.tenantId);
      } catch (e) {
        if (
          e instanceof IdentityProviderError &&
          e.code === "auth_required" &&
          (e.aadsts === 50076 || e.aadsts === 50079 || e.error === "interaction_required")
        ) {
          mfa.push(t);
          continue;
        }
        if (e instanceof IdentityProviderError) {
          ctx.logger.warn(`Authentication failed against tenant ${describeTenant(t)}: ${e.message}`);
          ctx.logger.warn(
            `If you need to access subscriptions in this tenant, use \`azkeep login --tenant ${t.tenantId}\`.`,
          );
          continue;
        }
        throw e;
      }
      await addSubs(t, armToken);
    }
  }

  if (mfa.length) {
    ctx.logger.warn(
      "The following tenants require Multi-Factor Authentication (MFA). Use 'azkeep login --tenant TENANT_ID' to explicitly login to a tenant.",
    );
    for (const t of mfa) ctx.logger.warn(`${describeTenant(t)}: azkeep login --tenant ${t.tenantId}`);
  }
  if (empty.length) {
    ctx.logger.warn(
      "The following tenants don't contain accessible subscriptions. Use 'azkeep login --allow-no-subscriptions' to have tenant level access.",
    );
    for (const t of empty) ctx.logger.warn(describeTenant(t));
  }
  if (entries.length === 0) throw noSubscriptions(username, mfa);

  return {
    user,
    entries,
    tokens,
    record() {
      return recordOf(
        ctx,
        cloud,
        { user, entries, tokens },
        { homeAccountId, principal: username, clientId },
        (now) => ({
          kind: "refresh-token",
          entry: {
            homeAccountId,
            username,
            clientId,
            environment: environment(cloud),
            cloud: cloud.name,
            homeTenantId,
            secret: refreshToken,
            // The Azure CLI is in Microsoft's FOCI family 1 (its refresh token serves the family); other apps are not.
            ...(clientId === AZURE_CLI_CLIENT_ID ? { familyId: "1" } : {}),
            lastModified: now,
          },
        }),
      );
    },
  };
}

async function servicePrincipalLogin(
  ctx: Context,
  req: LoginRequest,
  method: Extract<LoginMethod, { kind: "service-principal" }>,
): Promise<Collected> {
  const { cloud } = req;
  const arm = armScope(cloud);
  const scopes = req.scopes?.length ? req.scopes : [arm];
  const token = await acquireForServicePrincipal(ctx, {
    cloud,
    tenant: req.tenant as string,
    clientId: method.clientId,
    credential: method.credential,
    scopes,
    ...(req.claims ? { claims: req.claims } : {}),
  });
  const tenantId = token.tenantId;
  const armToken = scopes.includes(arm)
    ? token
    : await acquireForServicePrincipal(ctx, {
        cloud,
        tenant: tenantId,
        clientId: method.clientId,
        credential: method.credential,
        scopes: [arm],
      });
  const user: ProfileUser = { name: method.clientId, type: "servicePrincipal" };
  const subs = await listSubscriptions(ctx, cloud, armToken.accessToken, req.signal);
  const entries = subs.map((s) => entryFor(cloud, user, tenantId, s));
  if (entries.length === 0) {
    if (!req.allowNoSubscriptions) throw noSubscriptions(method.clientId, []);
    entries.push(tenantLevelEntry(cloud, user, tenantId));
  }
  const tokens = [{ token, scopes, tenantLabel: tenantId }];
  if (armToken !== token) tokens.push({ token: armToken, scopes: [arm], tenantLabel: tenantId });
  return {
    user,
    entries,
    tokens,
    record() {
      return recordOf(
        ctx,
        cloud,
        { user, entries, tokens },
        { homeAccountId: null, principal: method.clientId, clientId: method.clientId, tenantId },
        () => ({
          kind: "service-principal",
          entry: { clientId: method.clientId, tenantId, cloud: cloud.name, credential: method.credential },
        }),
      );
    },
  };
}

async function managedIdentityLogin(
  ctx: Context,
  req: LoginRequest,
  method: Extract<LoginMethod, { kind: "identity" }>,
): Promise<Collected> {
  const { cloud } = req;
  const resource = cloud.endpoints.activeDirectoryResourceId;
  const token = await acquireForManagedIdentity(ctx, {
    resource,
    ...(method.clientId ? { clientId: method.clientId } : {}),
    ...(method.objectId ? { objectId: method.objectId } : {}),
    ...(method.resourceId ? { resourceId: method.resourceId } : {}),
  });
  const info = method.clientId
    ? `MSIClient-${method.clientId}`
    : method.objectId
      ? `MSIObject-${method.objectId}`
      : method.resourceId
        ? `MSIResource-${method.resourceId}`
        : "MSI";
  const user: ProfileUser = {
    name: info === "MSI" ? "systemAssignedIdentity" : "userAssignedIdentity",
    type: "servicePrincipal",
    assignedIdentityInfo: info,
  };
  const tenantId = token.tenantId;
  const subs = await listSubscriptions(ctx, cloud, token.accessToken, req.signal);
  const entries = subs.map((s) => entryFor(cloud, user, tenantId, s));
  if (entries.length === 0) {
    if (!req.allowNoSubscriptions) throw noSubscriptions(user.name, []);
    entries.push(tenantLevelEntry(cloud, user, tenantId));
  }
  const scopes = [resourceToScope(resource)];
  const tokens = [{ token, scopes, tenantLabel: tenantId }];
  return {
    user,
    entries,
    tokens,
    record() {
      return recordOf(
        ctx,
        cloud,
        { user, entries, tokens },
        {
          homeAccountId: null,
          principal: info,
          clientId: method.clientId ?? "managed-identity",
          tenantId,
        },
      );
    },
  };
}

/**
 * `account list --refresh`: runs discovery again for every identity signed in to `cloud`,
 * without a person (refresh tokens, stored service principal credentials, managed identity).
 */
export async function refreshAccounts(
  ctx: Context,
  store: Store,
  cloud: Cloud,
  signal?: AbortSignal,
): Promise<void> {
  const [profile, secrets] = await Promise.all([store.readProfile(), store.readSecrets()]);
  const seen = new Set<string>();
  const failures: AzkeepError[] = [];
  for (const e of profile.subscriptions) {
    if (e.environmentName !== cloud.name) continue;
    const id = `${e.user.type}|${e.user.name.toLowerCase()}|${e.user.assignedIdentityInfo ?? ""}`;
    if (seen.has(id)) continue;
    seen.add(id);
    const hadTenantLevel = profile.subscriptions.some(
      (x) => x.name === TENANT_LEVEL_ACCOUNT_NAME && x.user.name.toLowerCase() === e.user.name.toLowerCase(),
    );
    const common = {
      cloud,
      ...(hadTenantLevel ? { allowNoSubscriptions: true } : {}),
      ...(signal ? { signal } : {}),
    };
    try {
      if (e.user.type === "user") {
        const rt = secrets.refreshTokens
          .filter((r) => r.cloud === cloud.name && r.username.toLowerCase() === e.user.name.toLowerCase())
          .sort((a, b) => b.lastModified - a.lastModified)[0];
        if (!rt)
          throw new AzkeepError("auth_required", `User '${e.user.name}' has no sign-in in azkeep's store.`);
        await login(ctx, store, {
          ...common,
          method: {
            kind: "refresh-token",
            username: rt.username,
            refreshToken: rt.secret,
            clientId: rt.clientId,
          },
        });
      } else if (e.user.assignedIdentityInfo) {
        const m = /^MSI(Client|Object|Resource)-(.+)$/.exec(e.user.assignedIdentityInfo);
        const sel = m
          ? { [m[1] === "Client" ? "clientId" : m[1] === "Object" ? "objectId" : "resourceId"]: m[2] }
          : {};
        await login(ctx, store, { ...common, method: { kind: "identity", ...sel } });
      } else {
        const sp = secrets.servicePrincipals.find(
          (p) => p.cloud === cloud.name && p.clientId.toLowerCase() === e.user.name.toLowerCase(),
        );
        if (!sp)
          throw new AzkeepError(
            "auth_required",
            `Service principal '${e.user.name}' has no credential in azkeep's store.`,
          );
        await login(ctx, store, {
          ...common,
          tenant: sp.tenantId,
          method: { kind: "service-principal", clientId: sp.clientId, credential: sp.credential },
        });
      }
    } catch (err) {
      if (!(err instanceof AzkeepError) || err.code === "network") throw err;
      failures.push(err);
      ctx.logger.warn(
        `Could not refresh the subscriptions of ${e.user.name}: ${err.message}${err.hint ? ` ${err.hint}` : ""}`,
      );
    }
  }
  if (failures.length > 0 && failures.length === seen.size) {
    // Nothing was refreshed: a script must not read the old list as a fresh one (exit 0).
    const only = failures.length === 1 ? failures[0]! : undefined;
    throw new AzkeepError(
      only?.code ?? "auth_required",
      only
        ? `Could not refresh the subscriptions: ${only.message}`
        : `Could not refresh the subscriptions of any of the ${failures.length} signed-in identities (see the warnings above).`,
      {
        hint:
          only?.hint ??
          "Sign in again with `azkeep login` for each identity, then run `azkeep account list --refresh`.",
      },
    );
  }
  // Discovery moves the default to each identity in turn; put back the one the user chose.
  const before = profile.subscriptions.find((x) => x.isDefault);
  if (before) {
    await store.update((state) => {
      const again = state.profile.subscriptions.find(
        (x) =>
          x.id === before.id && x.environmentName === before.environmentName && sameUser(x.user, before.user),
      );
      if (again) setDefault(state.profile, again);
    });
  }
}
