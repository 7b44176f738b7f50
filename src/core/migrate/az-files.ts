/**
 * Readers for the files the Azure CLI keeps in its config folder (reference §1.2–§1.5):
 * `azureProfile.json` (with its UTF-8 byte-order mark), the MSAL unified token cache
 * `msal_token_cache.json`, `service_principal_entries.json` and the ADAL-era `accessTokens.json`.
 *
 * Every reader is pure (text in, typed data out) and strict: a file that is not what it should
 * be ends in one `bad_input` error naming the file. Error messages never quote the file's
 * content, since these files are full of tokens and secrets.
 */
import { AzkeepError } from "../errors.js";
import type { Profile, SubscriptionEntry } from "../profile/types.js";

/** The file names, as the Azure CLI writes them. */
export const AZ_FILES = {
  profile: "azureProfile.json",
  msalCache: "msal_token_cache.json",
  msalCacheEncrypted: "msal_token_cache.bin",
  servicePrincipals: "service_principal_entries.json",
  servicePrincipalsEncrypted: "service_principal_entries.bin",
  adalTokens: "accessTokens.json",
  httpCache: "msal_http_cache.bin",
} as const;

const NEXT_STEP =
  "Move the file aside (or repair it) and run the import again, or sign in with `azkeep login` instead.";

function malformed(path: string, what: string): AzkeepError {
  return new AzkeepError("bad_input", `${path} ${what}.`, { hint: NEXT_STEP, details: { path } });
}

/**
 * Parses JSON text (an optional UTF-8 BOM is skipped). A syntax error reports a line and
 * column only: `JSON.parse`'s own message quotes the text around the error, which may be a secret.
 */
export function parseJsonFile(text: string, path: string): unknown {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  if (body.trim() === "") throw malformed(path, "is empty");
  try {
    return JSON.parse(body) as unknown;
  } catch (e) {
    const m = /position (\d+)/.exec(e instanceof Error ? e.message : "");
    let where = "";
    if (m?.[1] !== undefined) {
      const before = body.slice(0, Number(m[1]));
      const line = before.split("\n").length;
      const column = before.length - before.lastIndexOf("\n");
      where = ` (line ${line}, column ${column})`;
    }
    throw malformed(path, `is not valid JSON${where}`);
  }
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function str(o: Json, key: string): string | undefined {
  const v = o[key];
  return typeof v === "string" ? v : undefined;
}

/** Epoch seconds as MSAL writes them (strings), also accepting numbers. */
function epoch(o: Json, key: string): number | undefined {
  const v = o[key];
  const n = typeof v === "number" ? v : typeof v === "string" && /^\d+(\.\d+)?$/.test(v) ? Number(v) : NaN;
  return Number.isFinite(n) ? Math.floor(n) : undefined;
}

// ---------------------------------------------------------------------------------------------
// azureProfile.json

/** Reads `azureProfile.json`: `{subscriptions: [...], installationId?}`. */
export function parseAzureProfile(text: string, path: string): Profile {
  const doc = parseJsonFile(text, path);
  if (!isObject(doc)) throw malformed(path, "is not an Azure CLI profile (expected a JSON object)");
  // az resets a broken profile to `{}`: no subscriptions is a valid, empty profile.
  const raw = doc.subscriptions ?? [];
  if (!Array.isArray(raw))
    throw malformed(path, "is not an Azure CLI profile ('subscriptions' is not a list)");
  const subscriptions: SubscriptionEntry[] = raw.map((s, i) => {
    const where = `has a malformed subscription entry #${i + 1}`;
    if (!isObject(s)) throw malformed(path, where);
    const id = str(s, "id");
    const tenantId = str(s, "tenantId");
    const user = s.user;
    if (!id || !tenantId || !isObject(user)) throw malformed(path, `${where} (needs id, tenantId and user)`);
    const userName = str(user, "name");
    const userType = str(user, "type");
    if (!userName || (userType !== "user" && userType !== "servicePrincipal"))
      throw malformed(path, `${where} (user.name and user.type must be set)`);
    const entry: SubscriptionEntry = {
      id,
      name: str(s, "name") ?? id,
      state: str(s, "state") ?? "Enabled",
      user: { name: userName, type: userType },
      isDefault: s.isDefault === true,
      tenantId,
      environmentName: str(s, "environmentName") ?? "AzureCloud",
    };
    const info = str(user, "assignedIdentityInfo");
    if (info) entry.user.assignedIdentityInfo = info;
    const homeTenantId = str(s, "homeTenantId");
    if (homeTenantId) entry.homeTenantId = homeTenantId;
    const domain = str(s, "tenantDefaultDomain");
    if (domain) entry.tenantDefaultDomain = domain;
    const display = str(s, "tenantDisplayName");
    if (display) entry.tenantDisplayName = display;
    if (s.managedByTenants === null) entry.managedByTenants = null;
    else if (Array.isArray(s.managedByTenants))
      entry.managedByTenants = s.managedByTenants
        .filter(isObject)
        .map((t) => str(t, "tenantId"))
        .filter((t): t is string => t !== undefined)
        .map((tenantId) => ({ tenantId }));
    return entry;
  });
  const profile: Profile = { subscriptions };
  const installationId = str(doc, "installationId");
  if (installationId) profile.installationId = installationId;
  return profile;
}

// ---------------------------------------------------------------------------------------------
// msal_token_cache.json (MSAL unified cache schema, reference §1.4)

export interface MsalRefreshToken {
  homeAccountId: string;
  environment: string;
  clientId: string;
  target: string;
  secret: string;
  familyId?: string;
  lastModified?: number;
}

export interface MsalAccessToken {
  /** `null` for service principals (no `client_info`). */
  homeAccountId: string | null;
  environment: string;
  clientId: string;
  realm: string;
  target: string;
  secret: string;
  tokenType: string;
  expiresOn: number;
  cachedAt?: number;
  refreshOn?: number;
}

export interface MsalAccount {
  homeAccountId: string;
  environment: string;
  realm: string;
  username: string;
  localAccountId?: string;
  authorityType?: string;
}

export interface MsalCache {
  refreshTokens: MsalRefreshToken[];
  accessTokens: MsalAccessToken[];
  accounts: MsalAccount[];
}

function section(doc: Json, name: string, path: string): Json[] {
  const s = doc[name];
  if (s === undefined || s === null) return [];
  if (!isObject(s)) throw malformed(path, `is not an MSAL token cache (section '${name}' is not an object)`);
  return Object.values(s).map((v) => {
    if (!isObject(v))
      throw malformed(path, `is not an MSAL token cache (an entry in '${name}' is not an object)`);
    return v;
  });
}

/** Reads an MSAL unified token cache. Entries of unknown sections are ignored. */
export function parseMsalCache(text: string, path: string): MsalCache {
  const doc = parseJsonFile(text, path);
  if (!isObject(doc)) throw malformed(path, "is not an MSAL token cache (expected a JSON object)");
  const refreshTokens = section(doc, "RefreshToken", path).map((e, i): MsalRefreshToken => {
    const homeAccountId = str(e, "home_account_id");
    const environment = str(e, "environment");
    const clientId = str(e, "client_id");
    const secret = str(e, "secret");
    if (!homeAccountId || !environment || !clientId || !secret)
      throw malformed(
        path,
        `has a malformed refresh token #${i + 1} (needs home_account_id, environment, client_id, secret)`,
      );
    const rt: MsalRefreshToken = {
      homeAccountId,
      environment,
      clientId,
      target: str(e, "target") ?? "",
      secret,
    };
    const familyId = str(e, "family_id");
    if (familyId) rt.familyId = familyId;
    const lm = epoch(e, "last_modification_time");
    if (lm !== undefined) rt.lastModified = lm;
    return rt;
  });
  const accessTokens = section(doc, "AccessToken", path).map((e, i): MsalAccessToken => {
    const environment = str(e, "environment");
    const clientId = str(e, "client_id");
    const realm = str(e, "realm");
    const secret = str(e, "secret");
    const expiresOn = epoch(e, "expires_on");
    if (!environment || !clientId || !realm || !secret || expiresOn === undefined)
      throw malformed(
        path,
        `has a malformed access token #${i + 1} (needs environment, client_id, realm, secret, expires_on)`,
      );
    const at: MsalAccessToken = {
      homeAccountId: str(e, "home_account_id") || null,
      environment,
      clientId,
      realm,
      target: str(e, "target") ?? "",
      secret,
      tokenType: str(e, "token_type") ?? "Bearer",
      expiresOn,
    };
    const cachedAt = epoch(e, "cached_at");
    if (cachedAt !== undefined) at.cachedAt = cachedAt;
    const refreshOn = epoch(e, "refresh_on");
    if (refreshOn !== undefined) at.refreshOn = refreshOn;
    return at;
  });
  const accounts = section(doc, "Account", path).map((e, i): MsalAccount => {
    const homeAccountId = str(e, "home_account_id");
    const environment = str(e, "environment");
    const username = str(e, "username");
    if (!homeAccountId || !environment || username === undefined)
      throw malformed(
        path,
        `has a malformed account #${i + 1} (needs home_account_id, environment, username)`,
      );
    const a: MsalAccount = { homeAccountId, environment, realm: str(e, "realm") ?? "", username };
    const oid = str(e, "local_account_id");
    if (oid) a.localAccountId = oid;
    const type = str(e, "authority_type");
    if (type) a.authorityType = type;
    return a;
  });
  return { refreshTokens, accessTokens, accounts };
}

// ---------------------------------------------------------------------------------------------
// service_principal_entries.json (reference §1.5)

export type AzSpCredential =
  | { kind: "secret"; secret: string }
  | { kind: "certificate"; path: string; sendX5c: boolean }
  | { kind: "federated-token"; token: string };

export interface AzServicePrincipal {
  clientId: string;
  tenantId: string;
  credential: AzSpCredential;
}

/**
 * Reads one service principal entry. The 2.40+ keys (`client_id`, `tenant`, `client_secret`,
 * `certificate`, `use_cert_sn_issuer`, `client_assertion`) and the early MSAL-era and ADAL keys
 * (`servicePrincipalId`, `servicePrincipalTenant`, `accessToken`, `certificateFile`,
 * `useCertSNIssuerAuth`) are both accepted. Returns undefined for entries that are not
 * service principals (ADAL user tokens).
 */
function servicePrincipalFrom(e: Json, path: string, where: string): AzServicePrincipal | undefined {
  const clientId = str(e, "client_id") ?? str(e, "servicePrincipalId");
  const tenantId = str(e, "tenant") ?? str(e, "servicePrincipalTenant");
  if (!clientId && !tenantId) return undefined;
  if (!clientId || !tenantId) throw malformed(path, `${where} (needs the client id and tenant)`);
  const secret =
    str(e, "client_secret") ?? (str(e, "servicePrincipalId") ? str(e, "accessToken") : undefined);
  const certificate = str(e, "certificate") ?? str(e, "certificateFile");
  const assertion = str(e, "client_assertion");
  let credential: AzSpCredential;
  if (secret) credential = { kind: "secret", secret };
  else if (certificate)
    credential = {
      kind: "certificate",
      path: certificate,
      sendX5c: e.use_cert_sn_issuer === true || e.useCertSNIssuerAuth === true,
    };
  else if (assertion) credential = { kind: "federated-token", token: assertion };
  else throw malformed(path, `${where} (no client secret, certificate or client assertion)`);
  return { clientId, tenantId, credential };
}

/** Reads `service_principal_entries.json`: a JSON array of entries. */
export function parseServicePrincipalEntries(text: string, path: string): AzServicePrincipal[] {
  const doc = parseJsonFile(text, path);
  if (!Array.isArray(doc)) throw malformed(path, "is not a list of service principal entries");
  const out: AzServicePrincipal[] = [];
  doc.forEach((e, i) => {
    const where = `has a malformed service principal entry #${i + 1}`;
    if (!isObject(e)) throw malformed(path, where);
    const sp = servicePrincipalFrom(e, path, where);
    if (!sp) throw malformed(path, `${where} (needs the client id and tenant)`);
    out.push(sp);
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// accessTokens.json (ADAL era, reference §1.3)

export interface AdalUserToken {
  /** The username (UPN). */
  userId: string;
  clientId: string;
  /** `https://login.microsoftonline.com/<tenant>`. */
  authority: string;
  resource: string;
  accessToken: string;
  refreshToken?: string;
  /** Epoch seconds; ADAL wrote a local naive time. */
  expiresOn?: number;
  oid?: string;
}

export interface AdalTokens {
  users: AdalUserToken[];
  servicePrincipals: AzServicePrincipal[];
}

/** `%Y-%m-%d %H:%M:%S.%f` in local time (as ADAL wrote it) → epoch seconds. */
export function parseAdalExpiresOn(s: string): number | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?$/.exec(s.trim());
  if (!m) return undefined;
  const [, y, mo, d, h, mi, se] = m.map(Number) as [number, number, number, number, number, number, number];
  const t = new Date(y, mo - 1, d, h, mi, se).getTime();
  return Number.isFinite(t) ? Math.floor(t / 1000) : undefined;
}

/** Reads the ADAL-era `accessTokens.json`: one array of user tokens and service principals. */
export function parseAdalAccessTokens(text: string, path: string): AdalTokens {
  const doc = parseJsonFile(text, path);
  if (!Array.isArray(doc)) throw malformed(path, "is not an ADAL token cache (expected a JSON list)");
  const users: AdalUserToken[] = [];
  const servicePrincipals: AzServicePrincipal[] = [];
  doc.forEach((e, i) => {
    const where = `has a malformed entry #${i + 1}`;
    if (!isObject(e)) throw malformed(path, where);
    const sp = servicePrincipalFrom(e, path, where);
    if (sp) {
      servicePrincipals.push(sp);
      return;
    }
    const userId = str(e, "userId");
    const clientId = str(e, "_clientId");
    const authority = str(e, "_authority");
    const accessToken = str(e, "accessToken");
    if (!userId || !clientId || !authority || !accessToken)
      throw malformed(path, `${where} (needs userId, _clientId, _authority and accessToken)`);
    const u: AdalUserToken = {
      userId,
      clientId,
      authority,
      resource: str(e, "resource") ?? "",
      accessToken,
    };
    const rt = str(e, "refreshToken");
    if (rt) u.refreshToken = rt;
    const exp = str(e, "expiresOn");
    const expiresOn = exp ? parseAdalExpiresOn(exp) : undefined;
    if (expiresOn !== undefined) u.expiresOn = expiresOn;
    const oid = str(e, "oid");
    if (oid) u.oid = oid;
    users.push(u);
  });
  return { users, servicePrincipals };
}
