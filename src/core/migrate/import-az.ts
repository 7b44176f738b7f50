/**
 * `azkeep import az`: moves an Azure CLI sign-in into the sealed store — accounts and
 * subscriptions from `azureProfile.json`, refresh tokens and still-valid access tokens from
 * `msal_token_cache.json` (and the ADAL-era `accessTokens.json`), service principal secrets and
 * certificates from `service_principal_entries.json`.
 *
 * Everything is read and checked first, then written with one `Store.update`, so a malformed
 * file means nothing is imported. With `shred`, the plaintext originals are overwritten and
 * deleted, but only after every imported refresh token and service principal has been used
 * successfully against the identity provider: until then they are the user's only working
 * copy, and we must not destroy a sign-in we cannot prove works.
 */
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { BUILTIN_CLOUDS, DEFAULT_CLOUD, resourceToScope, type Cloud } from "../clouds.js";
import type { Context } from "../context.js";
import { AzkeepError } from "../errors.js";
import { decodeJwtPayload, stringClaim } from "../entra/jwt.js";
import type { Profile, SubscriptionEntry } from "../profile/types.js";
import { redact } from "../redact.js";
import { grantedAccessToken } from "../tokens/cache.js";
import type {
  AccessTokenEntry,
  RefreshTokenEntry,
  Secrets,
  ServicePrincipalEntry,
  Store,
  StoreState,
} from "../store/types.js";
import {
  AZ_FILES,
  parseAdalAccessTokens,
  parseAzureProfile,
  parseMsalCache,
  parseServicePrincipalEntries,
  type AzServicePrincipal,
} from "./az-files.js";
import { azureCliConfigDir } from "./paths.js";
import { shredFile } from "./shred.js";

export { azureCliConfigDir };

/** Access tokens with less than this left are not worth importing (az's own reuse margin). */
const AT_MIN_REMAINING_SEC = 300;

export interface ImportOptions {
  /** The Azure CLI's config folder; default `AZURE_CONFIG_DIR`, else `~/.azure`. */
  configDir?: string;
  /** Overwrite and delete the plaintext originals once the imported sign-ins are proven to work. */
  shred?: boolean;
  /** How `shred` proves the imported credentials work; default: a token request to the IdP. */
  verifier?: ImportVerifier;
}

/**
 * Proves an imported credential works by using it at the identity provider. Resolves on
 * success; throws (an `AzkeepError`, ideally) on failure. Implementations may store what the
 * request returned (a rotated refresh token, a fresh access token).
 */
export interface ImportVerifier {
  refreshToken(entry: RefreshTokenEntry): Promise<void>;
  servicePrincipal(entry: ServicePrincipalEntry): Promise<void>;
}

export type ImportFileStatus = "imported" | "absent" | "encrypted, not importable" | "ignored";

export interface ImportSummary {
  /** The Azure CLI folder read. */
  configDir: string;
  /** azkeep's store written. */
  store: string;
  files: { file: string; path: string; status: ImportFileStatus }[];
  subscriptions: {
    id: string;
    name: string;
    user: string;
    type: string;
    tenantId: string;
    cloud: string;
  }[];
  /** The store's default subscription after the import. */
  defaultSubscription: { id: string; name: string; changed: boolean } | null;
  refreshTokens: { username: string; homeAccountId: string; cloud: string; source: string }[];
  accessTokens: number;
  servicePrincipals: {
    clientId: string;
    tenantId: string;
    credential: string;
    source: string;
    certificateFile?: string;
  }[];
  skipped: { item: string; reason: string }[];
  shred?: ShredReport;
}

export interface ShredReport {
  /** True when the plaintext originals were overwritten and deleted. */
  done: boolean;
  verified: { principal: string; type: "user" | "servicePrincipal"; ok: boolean; error?: string }[];
  shredded: string[];
  kept: string[];
  /** Why the files were kept (when `done` is false). */
  reason?: string;
  note: string;
  /**
   * Certificate PEM files the service principal entries named. They still hold private keys in
   * plain text but are not deleted (other tools may use them); the store has its own copy.
   */
  certificateFiles?: string[];
}

/** What was read and understood, before anything is written. */
export interface ImportPlan {
  configDir: string;
  files: ImportSummary["files"];
  profile: Profile | undefined;
  refreshTokens: (RefreshTokenEntry & { source: string })[];
  accessTokens: AccessTokenEntry[];
  servicePrincipals: (ServicePrincipalEntry & { source: string; certificateFile?: string })[];
  skipped: { item: string; reason: string }[];
  /** The plaintext files holding secrets, which `shred` removes. */
  secretFiles: string[];
  /**
   * Credentials in those files that were not imported (unknown cloud, no username, …). While
   * there are any, `shred` keeps the files: shredding them would lose those sign-ins.
   */
  notImported: string[];
}

async function readIfExists(path: string): Promise<{ text: string; mtimeSec: number } | undefined> {
  try {
    const [text, st] = await Promise.all([readFile(path, "utf8"), stat(path)]);
    return { text, mtimeSec: Math.floor(st.mtimeMs / 1000) };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    throw new AzkeepError("bad_input", `Cannot read ${path} (${code ?? "unknown error"}).`, {
      cause: e,
      hint: "Check the file's owner and permissions, then run the import again.",
    });
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

function builtinCloud(name: string): Cloud | undefined {
  return BUILTIN_CLOUDS.find((c) => c.name.toLowerCase() === name.toLowerCase());
}

function cloudByHost(host: string): Cloud | undefined {
  return BUILTIN_CLOUDS.find(
    (c) => new URL(c.endpoints.activeDirectory).host.toLowerCase() === host.toLowerCase(),
  );
}

/**
 * The cloud of a principal: the profile's `environmentName` for its subscriptions (what az
 * itself goes by), else the cloud whose authority host the cache entry names.
 */
function resolveCloud(
  profile: Profile | undefined,
  principal: string,
  environmentHost: string | undefined,
): Cloud | string {
  const sub = profile?.subscriptions.find((s) => s.user.name.toLowerCase() === principal.toLowerCase());
  if (sub) {
    return builtinCloud(sub.environmentName) ?? `its cloud '${sub.environmentName}' is not a built-in cloud`;
  }
  if (environmentHost === undefined) return builtinCloud(DEFAULT_CLOUD) as Cloud;
  return cloudByHost(environmentHost) ?? `its authority host '${environmentHost}' is not a built-in cloud's`;
}

function secondsNow(ctx: Context): number {
  return Math.floor(ctx.clock.now() / 1000);
}

async function readCertificate(
  sp: AzServicePrincipal & { credential: { kind: "certificate" } },
  source: string,
): Promise<string> {
  const path = sp.credential.path;
  let pem: string;
  try {
    pem = await readFile(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new AzkeepError(
      "bad_input",
      `Cannot read the certificate ${path} that ${source} names for service principal ${sp.clientId} (${code ?? "unknown error"}).`,
      {
        cause: e,
        hint: `Restore the file, or sign that service principal out of the Azure CLI (\`az logout --username ${sp.clientId}\`), then run the import again.`,
      },
    );
  }
  const { loadCertificate } = await import("../flows/certificate.js");
  loadCertificate(pem, `The certificate ${path} (service principal ${sp.clientId})`);
  return pem;
}

/**
 * Reads and checks the Azure CLI's files in `configDir` without writing anything. Throws one
 * `bad_input` error naming the file when a file is malformed or encrypted, and `not_found`
 * when there is no Azure CLI sign-in to import.
 */
export async function planImport(ctx: Context, configDir: string): Promise<ImportPlan> {
  const path = (name: string) => join(configDir, name);
  const adalPath = path(AZ_FILES.adalTokens);
  const [profileFile, msalFile, spFile, adalFile] = await Promise.all([
    readIfExists(path(AZ_FILES.profile)),
    readIfExists(path(AZ_FILES.msalCache)),
    readIfExists(path(AZ_FILES.servicePrincipals)),
    readIfExists(adalPath),
  ]);
  const [msalBin, spBin] = await Promise.all([
    exists(path(AZ_FILES.msalCacheEncrypted)),
    exists(path(AZ_FILES.servicePrincipalsEncrypted)),
  ]);

  // Encrypted caches (Windows DPAPI, or core.encrypt_token_cache on macOS/Linux) cannot be read here.
  const encryptedOnly = [
    ...(msalBin && !msalFile ? [path(AZ_FILES.msalCacheEncrypted)] : []),
    ...(spBin && !spFile ? [path(AZ_FILES.servicePrincipalsEncrypted)] : []),
  ];
  if (encryptedOnly.length > 0) {
    throw new AzkeepError(
      "bad_input",
      `${encryptedOnly.join(" and ")} ${encryptedOnly.length > 1 ? "are" : "is"} encrypted by the Azure CLI ` +
        "(DPAPI on Windows, or core.encrypt_token_cache), so azkeep cannot import it here.",
      {
        hint: "Sign in with `azkeep login` instead (the encrypted cache is not plaintext, so it is not at risk).",
        details: { files: encryptedOnly },
      },
    );
  }
  if (!profileFile && !msalFile && !spFile && !adalFile) {
    throw new AzkeepError("not_found", `No Azure CLI sign-in found in ${configDir}.`, {
      hint: "Pass the Azure CLI's folder with --config-dir (or set AZURE_CONFIG_DIR), or sign in with `azkeep login`.",
    });
  }

  const now = secondsNow(ctx);
  const files: ImportSummary["files"] = [];
  const note = (file: string, present: boolean) =>
    files.push({ file, path: path(file), status: present ? "imported" : "absent" });
  note(AZ_FILES.profile, Boolean(profileFile));
  note(AZ_FILES.msalCache, Boolean(msalFile));
  note(AZ_FILES.servicePrincipals, Boolean(spFile));
  files.push({ file: AZ_FILES.adalTokens, path: adalPath, status: adalFile ? "imported" : "absent" });
  if (msalBin)
    files.push({
      file: AZ_FILES.msalCacheEncrypted,
      path: path(AZ_FILES.msalCacheEncrypted),
      status: "ignored",
    });
  if (spBin)
    files.push({
      file: AZ_FILES.servicePrincipalsEncrypted,
      path: path(AZ_FILES.servicePrincipalsEncrypted),
      status: "ignored",
    });

  // Parse everything first: a malformed file throws here, before anything is written.
  const profile = profileFile ? parseAzureProfile(profileFile.text, path(AZ_FILES.profile)) : undefined;
  const msal = msalFile ? parseMsalCache(msalFile.text, path(AZ_FILES.msalCache)) : undefined;
  const sps = spFile ? parseServicePrincipalEntries(spFile.text, path(AZ_FILES.servicePrincipals)) : [];
  const adal = adalFile ? parseAdalAccessTokens(adalFile.text, adalPath) : undefined;

  const skipped: ImportPlan["skipped"] = [];
  const notImported: string[] = [];
  /** A credential left in the files: said in `skipped`, and it stops `shred`. */
  const leave = (item: string, reason: string) => {
    skipped.push({ item, reason });
    notImported.push(item);
  };
  const plan: ImportPlan = {
    configDir,
    files,
    profile: undefined,
    refreshTokens: [],
    accessTokens: [],
    servicePrincipals: [],
    skipped,
    notImported,
    secretFiles: [
      ...(msalFile ? [path(AZ_FILES.msalCache)] : []),
      ...(spFile ? [path(AZ_FILES.servicePrincipals)] : []),
      ...(adalFile ? [adalPath] : []),
    ],
  };

  if (profile) {
    const subscriptions: SubscriptionEntry[] = [];
    for (const s of profile.subscriptions) {
      if (builtinCloud(s.environmentName)) subscriptions.push(s);
      else
        skipped.push({
          item: `subscription ${s.id} (${s.user.name})`,
          reason: `its cloud '${s.environmentName}' is not a built-in cloud; azkeep imports AzureCloud, AzureChinaCloud and AzureUSGovernment`,
        });
    }
    plan.profile = { subscriptions };
  }

  // --- MSAL refresh and access tokens
  if (msal) {
    const source = AZ_FILES.msalCache;
    const usernameOf = (homeAccountId: string, environment: string) =>
      msal.accounts.find((a) => a.homeAccountId === homeAccountId && a.environment === environment)?.username;
    for (const rt of msal.refreshTokens) {
      const username = usernameOf(rt.homeAccountId, rt.environment);
      if (username === undefined || username === "") {
        leave(
          `refresh token of account ${rt.homeAccountId}`,
          `${source} has no Account entry for it, so its username is unknown`,
        );
        continue;
      }
      const cloud = resolveCloud(profile, username, rt.environment);
      if (typeof cloud === "string") {
        leave(`refresh token of ${username}`, cloud);
        continue;
      }
      const homeTenantId = rt.homeAccountId.split(".")[1];
      if (!homeTenantId) {
        leave(
          `refresh token of ${username}`,
          "its home account id is not '<object id>.<tenant id>' (ADFS accounts are not supported)",
        );
        continue;
      }
      const entry: RefreshTokenEntry & { source: string } = {
        homeAccountId: rt.homeAccountId,
        username,
        clientId: rt.clientId,
        environment: rt.environment,
        cloud: cloud.name,
        homeTenantId,
        secret: rt.secret,
        lastModified: rt.lastModified ?? (msalFile?.mtimeSec as number),
        source,
      };
      if (rt.familyId) entry.familyId = rt.familyId;
      const dup = plan.refreshTokens.findIndex((r) => sameRefreshToken(r, entry));
      if (dup < 0) plan.refreshTokens.push(entry);
      else if ((plan.refreshTokens[dup] as RefreshTokenEntry).lastModified < entry.lastModified)
        plan.refreshTokens[dup] = entry;
    }
    let expired = 0;
    for (const at of msal.accessTokens) {
      if (at.expiresOn - now < AT_MIN_REMAINING_SEC) {
        expired++;
        continue;
      }
      const principal = at.homeAccountId ? usernameOf(at.homeAccountId, at.environment) : at.clientId;
      if (!principal) continue; // an orphan user token: its refresh token was skipped above, with the reason
      const cloud = resolveCloud(profile, principal, at.environment);
      if (typeof cloud === "string") continue; // its account was skipped with the reason
      const entry: AccessTokenEntry = {
        homeAccountId: at.homeAccountId,
        principal,
        clientId: at.clientId,
        environment: at.environment,
        cloud: cloud.name,
        tenantId: at.realm,
        target: at.target,
        secret: at.secret,
        tokenType: at.tokenType,
        expiresOn: at.expiresOn,
        cachedAt: at.cachedAt ?? now,
      };
      if (at.refreshOn !== undefined) entry.refreshOn = at.refreshOn;
      plan.accessTokens.push(entry);
    }
    if (expired > 0)
      skipped.push({
        item: `${expired} access token${expired > 1 ? "s" : ""} from ${source}`,
        reason: "expired or about to expire (azkeep gets a new one from the refresh token when needed)",
      });
  }

  // --- service principals: service_principal_entries.json, then ADAL-era entries it lacks
  const spSources: [AzServicePrincipal, string][] = [
    ...sps.map((s): [AzServicePrincipal, string] => [s, AZ_FILES.servicePrincipals]),
    ...(adal?.servicePrincipals ?? []).map((s): [AzServicePrincipal, string] => [s, AZ_FILES.adalTokens]),
  ];
  for (const [sp, source] of spSources) {
    if (plan.servicePrincipals.some((p) => p.clientId === sp.clientId && p.tenantId === sp.tenantId))
      continue;
    const cloud = resolveCloud(profile, sp.clientId, undefined);
    if (typeof cloud === "string") {
      leave(`service principal ${sp.clientId}`, cloud);
      continue;
    }
    const base = { clientId: sp.clientId, tenantId: sp.tenantId, cloud: cloud.name, source };
    if (sp.credential.kind === "certificate") {
      const certificatePem = await readCertificate(
        sp as AzServicePrincipal & { credential: { kind: "certificate" } },
        join(configDir, source),
      );
      plan.servicePrincipals.push({
        ...base,
        credential: {
          kind: "certificate",
          certificatePem,
          ...(sp.credential.sendX5c ? { sendX5c: true } : {}),
        },
        certificateFile: sp.credential.path,
      });
    } else if (sp.credential.kind === "secret") {
      plan.servicePrincipals.push({ ...base, credential: { kind: "secret", secret: sp.credential.secret } });
    } else {
      plan.servicePrincipals.push({
        ...base,
        credential: { kind: "federated-token", token: sp.credential.token },
      });
    }
  }

  // --- ADAL-era user tokens: only for accounts the MSAL cache does not already have
  if (adal) {
    const source = AZ_FILES.adalTokens;
    for (const u of adal.users) {
      const claims = decodeJwtPayload(u.accessToken);
      const oid = u.oid ?? stringClaim(claims, "oid");
      let authorityUrl: URL | undefined;
      try {
        authorityUrl = new URL(u.authority);
      } catch {
        authorityUrl = undefined;
      }
      const authorityTenant = authorityUrl?.pathname.split("/").filter(Boolean)[0];
      const tid =
        stringClaim(claims, "tid") ??
        (authorityTenant && /^[0-9a-f-]{36}$/i.test(authorityTenant) ? authorityTenant : undefined);
      const environment = authorityUrl?.host.toLowerCase();
      const item = `ADAL token of ${u.userId}`;
      if (!oid || !tid || !environment) {
        if (u.refreshToken)
          leave(
            item,
            `${source} does not say the account's object id and tenant; sign in with \`azkeep login\``,
          );
        continue;
      }
      const homeAccountId = `${oid}.${tid}`;
      const cloud = resolveCloud(profile, u.userId, environment);
      if (typeof cloud === "string") {
        if (u.refreshToken) leave(item, cloud);
        else skipped.push({ item, reason: cloud });
        continue;
      }
      if (u.refreshToken) {
        const newer = plan.refreshTokens.find(
          (r) =>
            r.source !== source &&
            (r.homeAccountId === homeAccountId || r.username.toLowerCase() === u.userId.toLowerCase()),
        );
        if (newer) {
          skipped.push({ item, reason: `superseded by the refresh token in ${newer.source}` });
        } else {
          const entry: RefreshTokenEntry & { source: string } = {
            homeAccountId,
            username: u.userId,
            clientId: u.clientId,
            environment,
            cloud: cloud.name,
            homeTenantId: tid,
            secret: u.refreshToken,
            lastModified: u.expiresOn ?? (adalFile?.mtimeSec as number),
            source,
          };
          const dup = plan.refreshTokens.findIndex((r) => sameRefreshToken(r, entry));
          if (dup < 0) plan.refreshTokens.push(entry);
          else if ((plan.refreshTokens[dup] as RefreshTokenEntry).lastModified < entry.lastModified)
            plan.refreshTokens[dup] = entry;
        }
      }
      if (u.expiresOn !== undefined && u.expiresOn - now >= AT_MIN_REMAINING_SEC && u.resource) {
        plan.accessTokens.push({
          homeAccountId,
          principal: u.userId,
          clientId: u.clientId,
          environment,
          cloud: cloud.name,
          tenantId: tid,
          target: resourceToScope(u.resource),
          secret: u.accessToken,
          tokenType: "Bearer",
          expiresOn: u.expiresOn,
          cachedAt: now,
        });
      }
    }
  }

  // Accounts the profile lists with no credential to go with them: say so now, not at first use.
  for (const s of plan.profile?.subscriptions ?? []) {
    if (s.user.assignedIdentityInfo) continue; // managed identities need no stored credential
    const has =
      s.user.type === "user"
        ? plan.refreshTokens.some((r) => r.username.toLowerCase() === s.user.name.toLowerCase())
        : plan.servicePrincipals.some((p) => p.clientId === s.user.name);
    const item = `credential of ${s.user.name}`;
    if (!has && !skipped.some((x) => x.item === item))
      skipped.push({
        item,
        reason:
          s.user.type === "user"
            ? "no refresh token for this user in the Azure CLI's cache; run `azkeep login` to use its subscriptions"
            : "no secret or certificate for this service principal in the Azure CLI's cache; sign it in with `azkeep login --service-principal`",
      });
  }
  return plan;
}

function sameRefreshToken(a: RefreshTokenEntry, b: RefreshTokenEntry): boolean {
  return a.homeAccountId === b.homeAccountId && a.environment === b.environment && a.clientId === b.clientId;
}

function sameAccessToken(a: AccessTokenEntry, b: AccessTokenEntry): boolean {
  return (
    a.homeAccountId === b.homeAccountId &&
    a.principal === b.principal &&
    a.clientId === b.clientId &&
    a.environment === b.environment &&
    a.tenantId === b.tenantId &&
    a.target === b.target
  );
}

function strip<T extends { source: string; certificateFile?: string }>(
  e: T,
): Omit<T, "source" | "certificateFile"> {
  const { source: _source, certificateFile: _file, ...rest } = e;
  return rest;
}

/**
 * Merges the plan into the store's state, as az merges a login: subscriptions are keyed by id
 * (an imported one replaces the stored one), credentials by their principal. The store's own
 * default subscription is kept; the Azure CLI's becomes the default only when there is none.
 */
export function mergeIntoState(state: StoreState, plan: ImportPlan): { defaultChanged: boolean } {
  const previousDefault = state.profile.subscriptions.find((s) => s.isDefault)?.id;
  const imported = plan.profile?.subscriptions ?? [];
  if (imported.length > 0) {
    const ids = new Set(imported.map((s) => s.id));
    state.profile.subscriptions = [
      ...state.profile.subscriptions.filter((s) => !ids.has(s.id)),
      ...imported.map((s) => structuredClone(s)),
    ];
  }
  let defaultId = previousDefault;
  if (defaultId === undefined || !state.profile.subscriptions.some((s) => s.id === defaultId)) {
    defaultId =
      imported.find((s) => s.isDefault)?.id ??
      imported.find((s) => s.state === "Enabled")?.id ??
      imported[0]?.id ??
      state.profile.subscriptions[0]?.id;
  }
  for (const s of state.profile.subscriptions) s.isDefault = s.id === defaultId;

  const secrets: Secrets = state.secrets;
  for (const rt of plan.refreshTokens) {
    const clean = strip(rt);
    secrets.refreshTokens = [...secrets.refreshTokens.filter((r) => !sameRefreshToken(r, clean)), clean];
  }
  for (const at of plan.accessTokens) {
    secrets.accessTokens = [...secrets.accessTokens.filter((a) => !sameAccessToken(a, at)), at];
  }
  for (const sp of plan.servicePrincipals) {
    const clean = strip(sp);
    secrets.servicePrincipals = [
      ...secrets.servicePrincipals.filter((p) => !(p.clientId === sp.clientId && p.tenantId === sp.tenantId)),
      clean,
    ];
  }
  return { defaultChanged: defaultId !== previousDefault };
}

function summarize(
  plan: ImportPlan,
  state: StoreState,
  defaultChanged: boolean,
  store: Store,
): ImportSummary {
  const def = state.profile.subscriptions.find((s) => s.isDefault);
  return {
    configDir: plan.configDir,
    store: store.configDir,
    files: plan.files,
    subscriptions: (plan.profile?.subscriptions ?? []).map((s) => ({
      id: s.id,
      name: s.name,
      user: s.user.name,
      type: s.user.type,
      tenantId: s.tenantId,
      cloud: s.environmentName,
    })),
    defaultSubscription: def ? { id: def.id, name: def.name, changed: defaultChanged } : null,
    refreshTokens: plan.refreshTokens.map((r) => ({
      username: r.username,
      homeAccountId: r.homeAccountId,
      cloud: r.cloud,
      source: r.source,
    })),
    accessTokens: plan.accessTokens.length,
    servicePrincipals: plan.servicePrincipals.map((p) => ({
      clientId: p.clientId,
      tenantId: p.tenantId,
      credential: p.credential.kind,
      source: p.source,
      ...(p.certificateFile ? { certificateFile: p.certificateFile } : {}),
    })),
    skipped: plan.skipped,
  };
}

/** The tenant to prove a user's refresh token in: a tenant az used for the user, else the home tenant. */
function verificationTenant(plan: ImportPlan, rt: RefreshTokenEntry): string {
  const subs = (plan.profile?.subscriptions ?? []).filter(
    (s) => s.user.type === "user" && s.user.name.toLowerCase() === rt.username.toLowerCase(),
  );
  return (subs.find((s) => s.isDefault) ?? subs[0])?.tenantId ?? rt.homeTenantId;
}

/**
 * The default verifier: one token request per credential to the cloud's identity provider
 * (a refresh-token grant for ARM, or a client-credentials grant), storing the rotated refresh
 * token and the new access token it returns.
 */
export function identityProviderVerifier(ctx: Context, store: Store, plan: ImportPlan): ImportVerifier {
  const cloudOf = (name: string): Cloud => {
    const c = builtinCloud(name);
    if (!c) throw new AzkeepError("internal", `Unknown cloud ${name}.`);
    return c;
  };
  const saveAccessToken = (state: StoreState, at: AccessTokenEntry) => {
    state.secrets.accessTokens = [...state.secrets.accessTokens.filter((a) => !sameAccessToken(a, at)), at];
  };
  return {
    async refreshToken(rt) {
      const { acquireWithRefreshToken } = await import("../flows/token.js");
      const cloud = cloudOf(rt.cloud);
      const tenant = verificationTenant(plan, rt);
      const scopes = [resourceToScope(cloud.endpoints.activeDirectoryResourceId)];
      const result = await acquireWithRefreshToken(ctx, {
        cloud,
        tenant,
        clientId: rt.clientId,
        refreshToken: rt.secret,
        scopes,
      });
      const now = secondsNow(ctx);
      await store.update((state) => {
        if (result.refreshToken) {
          const stored = state.secrets.refreshTokens.find((r) => sameRefreshToken(r, rt));
          if (stored) {
            stored.secret = result.refreshToken;
            stored.lastModified = now;
          }
        }
        const { homeAccountId, username: principal, clientId } = rt;
        const key = { homeAccountId, principal, clientId, cloud: rt.cloud, tenantId: result.tenantId };
        saveAccessToken(state, grantedAccessToken(key, cloud, result, scopes, now));
      });
    },
    async servicePrincipal(sp) {
      const { acquireForServicePrincipal } = await import("../flows/token.js");
      const cloud = cloudOf(sp.cloud);
      const scopes = [resourceToScope(cloud.endpoints.activeDirectoryResourceId)];
      const result = await acquireForServicePrincipal(ctx, {
        cloud,
        tenant: sp.tenantId,
        clientId: sp.clientId,
        credential: sp.credential,
        scopes,
      });
      const now = secondsNow(ctx);
      await store.update((state) => {
        const key = {
          homeAccountId: null,
          principal: sp.clientId,
          clientId: sp.clientId,
          cloud: sp.cloud,
          tenantId: result.tenantId,
        };
        saveAccessToken(state, grantedAccessToken(key, cloud, result, scopes, now));
      });
    },
  };
}

/** A one-line, secret-free description of why a verification failed. */
function failureText(e: unknown, secrets: readonly string[]): string {
  let text = e instanceof Error ? e.message : String(e);
  for (const s of secrets) if (s.length >= 4) text = text.split(s).join("[REDACTED]");
  return redact(text.split("\n")[0] ?? "").replace(/[.\s]+$/, "");
}

const SHRED_NOTE =
  "Each file was overwritten once with random bytes, synced to disk and deleted. On SSDs, " +
  "copy-on-write filesystems and in snapshots or backups, old copies can survive. " +
  "azureProfile.json was kept: it holds no secrets. The Azure CLI itself is now signed out; " +
  "`az login` would write a new plaintext cache.";

async function verifyAndShred(
  ctx: Context,
  plan: ImportPlan,
  verifier: ImportVerifier,
): Promise<ShredReport> {
  const report: ShredReport = {
    done: false,
    verified: [],
    shredded: [],
    kept: [...plan.secretFiles],
    note: SHRED_NOTE,
  };
  if (plan.secretFiles.length === 0) {
    report.reason = "there were no plaintext credential files to shred";
    report.note = "Nothing was shredded. azureProfile.json was kept: it holds no secrets.";
    return report;
  }
  if (plan.notImported.length > 0) {
    report.reason =
      `the files also hold credentials that were not imported (${plan.notImported.join("; ")}); ` +
      "shredding them would lose those sign-ins";
    report.note = "Nothing was shredded; see `skipped` for why each was left out.";
    return report;
  }
  if (plan.refreshTokens.length === 0 && plan.servicePrincipals.length === 0) {
    report.reason =
      "no refresh token or service principal was imported, so nothing could be proven to work against the identity provider";
    report.note = "Nothing was shredded.";
    return report;
  }
  const allSecrets = [
    ...plan.refreshTokens.map((r) => r.secret),
    ...plan.servicePrincipals.map((p) =>
      p.credential.kind === "secret"
        ? p.credential.secret
        : p.credential.kind === "federated-token"
          ? p.credential.token
          : "",
    ),
  ];
  for (const rt of plan.refreshTokens) {
    try {
      ctx.progress.status(
        `Checking the imported refresh token of ${rt.username} with the identity provider…`,
      );
      await verifier.refreshToken(strip(rt));
      report.verified.push({ principal: rt.username, type: "user", ok: true });
    } catch (e) {
      report.verified.push({
        principal: rt.username,
        type: "user",
        ok: false,
        error: failureText(e, allSecrets),
      });
    }
  }
  for (const sp of plan.servicePrincipals) {
    try {
      ctx.progress.status(
        `Checking the imported service principal ${sp.clientId} with the identity provider…`,
      );
      await verifier.servicePrincipal(strip(sp));
      report.verified.push({ principal: sp.clientId, type: "servicePrincipal", ok: true });
    } catch (e) {
      report.verified.push({
        principal: sp.clientId,
        type: "servicePrincipal",
        ok: false,
        error: failureText(e, allSecrets),
      });
    }
  }
  const failed = report.verified.filter((v) => !v.ok);
  if (failed.length > 0) {
    report.reason =
      "the imported credentials could not all be used at the identity provider: " +
      failed.map((f) => `${f.principal}: ${f.error ?? "failed"}`).join("; ");
    report.note = "Nothing was shredded; the Azure CLI's files are as they were.";
    return report;
  }
  for (const file of plan.secretFiles) {
    try {
      await shredFile(file, ctx.random);
      report.shredded.push(file);
      report.kept = report.kept.filter((k) => k !== file);
    } catch (e) {
      report.reason = `${file} could not be shredded: ${failureText(e, [])}`;
    }
  }
  report.done = report.kept.length === 0;
  const pems = [
    ...new Set(plan.servicePrincipals.flatMap((p) => (p.certificateFile ? [p.certificateFile] : []))),
  ];
  if (report.done && pems.length > 0) {
    report.certificateFiles = pems;
    report.note +=
      " The certificate files the service principals named still hold private keys in plain text and were not" +
      ` deleted (other tools may use them; the sealed store has its own copy): ${pems.join(", ")}.` +
      " Remove them with `shred -u FILE` when nothing else needs them.";
  }
  return report;
}

/**
 * Imports the Azure CLI's sign-in from `options.configDir` into `store`, and with
 * `options.shred` removes the plaintext originals once the imported credentials are proven to
 * work. Returns a summary without secrets. Throws `bad_input`/`not_found` before writing
 * anything when the files cannot be imported.
 */
export async function importFromAzureCli(
  ctx: Context,
  store: Store,
  options: ImportOptions = {},
): Promise<ImportSummary> {
  const configDir = azureCliConfigDir(ctx, options.configDir);
  const plan = await planImport(ctx, configDir);
  const { state, defaultChanged } = await store.update((s) => {
    const r = mergeIntoState(s, plan);
    return { state: structuredClone({ profile: s.profile, secrets: emptyLike(s.secrets) }), ...r };
  });
  const summary = summarize(plan, state, defaultChanged, store);
  if (options.shred) {
    summary.shred = await verifyAndShred(
      ctx,
      plan,
      options.verifier ?? identityProviderVerifier(ctx, store, plan),
    );
  }
  return summary;
}

/** The summary needs only the profile; never copy secrets out of the update. */
function emptyLike(s: Secrets): Secrets {
  return { version: s.version, refreshTokens: [], accessTokens: [], servicePrincipals: [] };
}
