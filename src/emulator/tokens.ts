/**
 * Tokens as Entra issues them: RS256 JWTs signed with the emulator's key (published in the
 * JWKS): made at start, or kept in a key file so that tokens outlive a restart. Access tokens are v1.0 tokens, as Azure Resource Manager and Microsoft Graph get:
 * `iss` = `https://sts.windows.net/{tid}/`, `aud` = the resource of the scope. ID tokens are
 * v2.0 with `aud` = client id and the `nonce` of the sign-in.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  randomBytes,
  type KeyObject,
} from "node:crypto";
import { chmod, link, mkdir, readFile, stat, unlink, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { promisify } from "node:util";
import { SignJWT, jwtVerify, type JWTPayload } from "jose";
import { E } from "./errors.js";
import type { SeedTenant } from "./seed.js";
import type { World } from "./world.js";

export interface SigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  kid: string;
  jwk: Record<string, unknown>;
}

export async function createSigningKey(): Promise<SigningKey> {
  const { privateKey } = await promisify(generateKeyPair)("rsa", { modulusLength: 2048 });
  return signingKeyOf(privateKey);
}

function signingKeyOf(privateKey: KeyObject): SigningKey {
  const publicKey = createPublicKey(privateKey);
  const pub = publicKey.export({ format: "jwk" });
  const der = publicKey.export({ format: "der", type: "spki" });
  const kid = createHash("sha1").update(der).digest("base64url");
  return {
    privateKey,
    publicKey,
    kid,
    jwk: { kty: "RSA", use: "sig", kid, x5t: kid, n: pub.n, e: pub.e },
  };
}

/** The signing key file cannot be used (damaged, not an RSA key). */
export class SigningKeyFileError extends Error {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`The emulator's signing key file ${file} is damaged (${reason}).`);
    this.name = "SigningKeyFileError";
  }
}

/**
 * The signing key kept in `file` (PKCS#8 PEM, 0600), made and written there on first use, so a
 * restarted emulator accepts the tokens it issued before (clients cache them for an hour).
 * Two emulators starting at once end up with one key (link, not overwrite). A damaged file is
 * an error naming it: the emulator never silently replaces a key clients trust.
 */
export async function loadOrCreateSigningKey(file: string): Promise<SigningKey> {
  const read = async (): Promise<SigningKey | undefined> => {
    let pem: string;
    try {
      pem = await readFile(file, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw e;
    }
    // Another user must never read the key: tighten a file someone loosened.
    if (((await stat(file)).mode & 0o077) !== 0) await chmod(file, 0o600);
    try {
      const key = createPrivateKey(pem);
      if (key.asymmetricKeyType !== "rsa") throw new Error("not an RSA key");
      return signingKeyOf(key);
    } catch (e) {
      throw new SigningKeyFileError(file, (e as Error).message);
    }
  };
  const existing = await read();
  if (existing) return existing;
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const { privateKey } = await promisify(generateKeyPair)("rsa", { modulusLength: 2048 });
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  await writeFile(tmp, privateKey.export({ format: "pem", type: "pkcs8" }), { mode: 0o600, flag: "wx" });
  try {
    await link(tmp, file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
  const key = await read();
  if (!key) throw new Error(`The emulator's signing key could not be written to ${file}.`);
  return key;
}

export function jwks(key: SigningKey, issuer: string): { keys: Record<string, unknown>[] } {
  return { keys: [{ ...key.jwk, issuer }] };
}

/** Microsoft resources accepted in scopes (trailing slash and case ignored), across clouds. */
const WELL_KNOWN_RESOURCES = [
  "https://management.core.windows.net",
  "https://management.azure.com",
  "https://graph.microsoft.com",
  "https://graph.windows.net",
  "https://vault.azure.net",
  "https://storage.azure.com",
  "https://database.windows.net",
  "https://ossrdbms-aad.database.windows.net",
  "https://batch.core.windows.net",
  "https://rest.media.azure.net",
  "https://datalake.azure.net",
  "https://servicebus.azure.net",
  "https://eventhubs.azure.net",
  "https://cognitiveservices.azure.com",
  "https://monitor.azure.com",
  "https://api.loganalytics.io",
  "https://management.core.chinacloudapi.cn",
  "https://management.chinacloudapi.cn",
  "https://microsoftgraph.chinacloudapi.cn",
  "https://graph.chinacloudapi.cn",
  "https://vault.azure.cn",
  "https://batch.chinacloudapi.cn",
  "https://ossrdbms-aad.database.chinacloudapi.cn",
  "https://rest.media.chinacloudapi.cn",
  "https://management.core.usgovcloudapi.net",
  "https://management.usgovcloudapi.net",
  "https://graph.microsoft.us",
  "https://vault.usgovcloudapi.net",
  "https://batch.core.usgovcloudapi.net",
  "https://ossrdbms-aad.database.usgovcloudapi.net",
  "https://rest.media.usgovcloudapi.net",
  // first-party application ids: ARM, Microsoft Graph, Key Vault, Azure Storage
  "797f4846-ba00-4fd7-ba43-dac1f8f63013",
  "00000003-0000-0000-c000-000000000000",
  "cfa8b339-82a2-471a-a3c9-0fc0be7a4093",
  "e406a681-f3d4-42a8-90b6-c2b029497af1",
];

/** Audiences ARM accepts. */
/** ARM's own audiences in each cloud (with and without the trailing slash, and ARM's app id). */
export const ARM_AUDIENCES_BY_CLOUD = {
  AzureCloud: [
    "https://management.core.windows.net/",
    "https://management.core.windows.net",
    "https://management.azure.com/",
    "https://management.azure.com",
    "797f4846-ba00-4fd7-ba43-dac1f8f63013",
  ],
  AzureChinaCloud: [
    "https://management.core.chinacloudapi.cn/",
    "https://management.core.chinacloudapi.cn",
    "https://management.chinacloudapi.cn/",
    "https://management.chinacloudapi.cn",
    "797f4846-ba00-4fd7-ba43-dac1f8f63013",
  ],
  AzureUSGovernment: [
    "https://management.core.usgovcloudapi.net/",
    "https://management.core.usgovcloudapi.net",
    "https://management.usgovcloudapi.net/",
    "https://management.usgovcloudapi.net",
    "797f4846-ba00-4fd7-ba43-dac1f8f63013",
  ],
} as const;

export type ArmCloud = keyof typeof ARM_AUDIENCES_BY_CLOUD;

/** Every cloud's ARM audiences: what the emulator's ARM accepts on its own (loopback) address. */
export const ARM_AUDIENCES: readonly string[] = [...new Set(Object.values(ARM_AUDIENCES_BY_CLOUD).flat())];

const GRAPH = "https://graph.microsoft.com";
const OIDC_SCOPES = new Set(["openid", "profile", "offline_access", "email"]);
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]{1,512}$/;

function normResource(r: string): string {
  return r.toLowerCase().replace(/\/+$/, "");
}

export interface ParsedScope {
  /** The resource as requested (the `aud` of the access token), e.g. `https://management.core.windows.net/`. */
  resource: string;
  /** Delegated permissions (`scp`). */
  permissions: string[];
  isDefault: boolean;
  oidc: string[];
  /** The `scope` the token response echoes. */
  responseScope: string;
}

/** Splits a v2 `scope` parameter into its one resource, its permissions and the OIDC scopes. */
export function parseScope(world: World, scope: string | null, tenantName: string): ParsedScope {
  if (scope === null || scope.trim() === "") throw E.scopeMissing();
  const parts = scope.split(/[\s+]+/).filter((s) => s.length > 0);
  if (parts.length > 64) throw E.invalidScope(scope.slice(0, 200));
  const oidc: string[] = [];
  let resource: string | undefined;
  const perms: string[] = [];
  let isDefault = false;
  for (const p of parts) {
    if (!SCOPE_TOKEN.test(p)) throw E.invalidScope(p.slice(0, 200));
    if (OIDC_SCOPES.has(p.toLowerCase())) {
      oidc.push(p.toLowerCase());
      continue;
    }
    let res: string;
    let perm: string;
    const slash = p.lastIndexOf("/");
    if (slash === -1) {
      // A bare permission (User.Read) is Microsoft Graph's, as in Entra.
      res = GRAPH;
      perm = p;
    } else {
      res = p.slice(0, slash);
      perm = p.slice(slash + 1);
    }
    if (res === "" || perm === "") throw E.invalidScope(p);
    if (resource !== undefined && normResource(resource) !== normResource(res))
      throw E.multipleResources(scope);
    resource = res;
    if (perm === ".default") isDefault = true;
    else perms.push(perm);
  }
  if (resource === undefined) {
    // Only OpenID scopes: Entra issues a Microsoft Graph token for the user's profile.
    return {
      resource: "00000003-0000-0000-c000-000000000000",
      permissions: oidc.filter((s) => s !== "offline_access"),
      isDefault: false,
      oidc,
      responseScope: oidc.filter((s) => s !== "offline_access").join(" ") || "openid",
    };
  }
  if (isDefault && perms.length > 0) throw E.invalidScope(scope);
  if (!knownResource(world, resource)) throw E.resourceNotFound(resource, tenantName);
  let permissions = perms;
  let responseScope: string;
  if (isDefault) {
    permissions = normResource(resource) === normResource(GRAPH) ? ["User.Read"] : ["user_impersonation"];
    responseScope = [...permissions.map((s) => `${resource}/${s}`), `${resource}/.default`].join(" ");
  } else {
    responseScope = permissions
      .map((s) => (resource === GRAPH && !scope.includes(GRAPH) ? s : `${resource}/${s}`))
      .join(" ");
  }
  return { resource, permissions, isDefault, oidc, responseScope };
}

export function knownResource(world: World, resource: string): boolean {
  const r = normResource(resource);
  if (WELL_KNOWN_RESOURCES.includes(r)) return true;
  if (/^https:\/\/[a-z0-9-]+\.vault\.(azure\.net|azure\.cn|usgovcloudapi\.net)$/.test(r)) return true;
  for (const extra of world.seed.resources ?? []) if (normResource(extra) === r) return true;
  for (const a of world.seed.apps) {
    if (a.clientId === r || `api://${a.clientId}` === r) return true;
    for (const u of a.identifierUris ?? []) if (normResource(u) === r) return true;
  }
  return false;
}

/** The application id of a resource, for error messages that name it (ARM for management). */
export function resourceAppId(resource: string): string {
  const r = normResource(resource);
  if (r.includes("management.")) return "797f4846-ba00-4fd7-ba43-dac1f8f63013";
  if (r.includes("graph.")) return "00000003-0000-0000-c000-000000000000";
  return resource;
}

/** Claims requested through the `claims` parameter (JSON); xms_cc CP1 → the token carries it. */
export function parseClaims(claims: string | null | undefined): { cp1: boolean; raw: string | undefined } {
  if (claims === null || claims === undefined || claims === "") return { cp1: false, raw: undefined };
  let parsed: unknown;
  try {
    parsed = JSON.parse(claims);
  } catch {
    throw E.claimsMalformed();
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw E.claimsMalformed();
  const at = (parsed as Record<string, unknown>).access_token;
  let cp1 = false;
  if (typeof at === "object" && at !== null) {
    const cc = (at as Record<string, unknown>).xms_cc;
    if (typeof cc === "object" && cc !== null) {
      const values = (cc as Record<string, unknown>).values;
      cp1 = Array.isArray(values) && values.includes("CP1");
    }
  }
  return { cp1, raw: claims };
}

export class TokenIssuer {
  constructor(
    private readonly world: World,
    private readonly key: SigningKey,
  ) {}

  private async sign(payload: JWTPayload): Promise<string> {
    return new SignJWT(payload)
      .setProtectedHeader({ alg: "RS256", typ: "JWT", kid: this.key.kid, x5t: this.key.kid })
      .sign(this.key.privateKey);
  }

  private times(lifetime: number): { iat: number; nbf: number; exp: number } {
    const iat = this.world.nowSeconds();
    return { iat, nbf: iat, exp: iat + lifetime };
  }

  private uti(): string {
    const uti = this.world.randomToken(16);
    this.world.issued.set(uti, this.world.now());
    if (this.world.issued.size > 200_000) {
      const first = this.world.issued.keys().next().value;
      if (first !== undefined) this.world.issued.delete(first);
    }
    return uti;
  }

  /** A delegated (user) access token, v1.0 format. */
  async userAccessToken(o: {
    upn: string;
    displayName: string;
    oid: string;
    homeTenant: string;
    tenant: SeedTenant;
    clientId: string;
    publicClient: boolean;
    resource: string;
    permissions: string[];
    amr: string[];
    authTime: number;
    cp1: boolean;
  }): Promise<{ token: string; expiresIn: number }> {
    const lifetime = this.world.lifetimes.accessToken;
    const t = this.times(lifetime);
    const names = o.displayName.split(" ");
    const payload: JWTPayload = {
      aud: o.resource,
      iss: `https://sts.windows.net/${o.tenant.id}/`,
      ...t,
      acr: "1",
      aio: this.world.randomToken(24),
      amr: o.amr,
      appid: o.clientId,
      appidacr: o.publicClient ? "0" : "1",
      auth_time: o.authTime,
      family_name: names.slice(1).join(" ") || names[0],
      given_name: names[0],
      idtyp: "user",
      ipaddr: "127.0.0.1",
      name: o.displayName,
      oid: o.oid,
      puid: createHash("sha1").update(o.oid).digest("hex").slice(0, 16).toUpperCase(),
      rh: `0.${this.world.randomToken(18)}.`,
      scp: o.permissions.join(" "),
      sub: createHash("sha256").update(`${o.oid}|${o.resource}`).digest("base64url").slice(0, 43),
      tid: o.tenant.id,
      unique_name: o.upn,
      upn: o.upn,
      uti: this.uti(),
      ver: "1.0",
    };
    if (o.homeTenant !== o.tenant.id) payload.idp = `https://sts.windows.net/${o.homeTenant}/`;
    if (o.cp1) payload.xms_cc = ["CP1"];
    return { token: await this.sign(payload), expiresIn: lifetime };
  }

  /** An app-only access token (service principal or managed identity), v1.0 format. */
  async appAccessToken(o: {
    tenantId: string;
    clientId: string;
    oid: string;
    resource: string;
    roles: string[] | undefined;
    appidacr: "1" | "2";
    cp1: boolean;
    lifetime?: number;
    miResourceId?: string;
  }): Promise<{ token: string; expiresIn: number; expiresOn: number; notBefore: number }> {
    const lifetime = o.lifetime ?? this.world.lifetimes.accessToken;
    const t = this.times(lifetime);
    const iss = `https://sts.windows.net/${o.tenantId}/`;
    const payload: JWTPayload = {
      aud: o.resource,
      iss,
      ...t,
      aio: this.world.randomToken(24),
      appid: o.clientId,
      appidacr: o.appidacr,
      idp: iss,
      idtyp: "app",
      oid: o.oid,
      rh: `0.${this.world.randomToken(18)}.`,
      sub: o.oid,
      tid: o.tenantId,
      uti: this.uti(),
      ver: "1.0",
    };
    if (o.roles && o.roles.length > 0) payload.roles = o.roles;
    if (o.cp1) payload.xms_cc = ["CP1"];
    if (o.miResourceId) payload.xms_mirid = o.miResourceId;
    return { token: await this.sign(payload), expiresIn: lifetime, expiresOn: t.exp, notBefore: t.nbf };
  }

  /** A v2.0 ID token. */
  async idToken(o: {
    origin: string;
    tenantId: string;
    clientId: string;
    oid: string;
    upn: string;
    displayName: string;
    homeTenant: string;
    homeOid: string;
    nonce: string | undefined;
    authTime: number;
    amr: string[];
  }): Promise<string> {
    const t = this.times(this.world.lifetimes.idToken);
    const payload: JWTPayload = {
      aud: o.clientId,
      iss: `${o.origin}/${o.tenantId}/v2.0`,
      ...t,
      auth_time: o.authTime,
      name: o.displayName,
      oid: o.oid,
      preferred_username: o.upn,
      rh: `0.${this.world.randomToken(18)}.`,
      sub: createHash("sha256").update(`${o.oid}|${o.clientId}`).digest("base64url").slice(0, 43),
      tid: o.tenantId,
      uti: this.world.randomToken(16),
      ver: "2.0",
      amr: o.amr,
    };
    if (o.nonce !== undefined) payload.nonce = o.nonce;
    if (o.homeTenant !== o.tenantId) payload.idp = `https://sts.windows.net/${o.homeTenant}/`;
    return this.sign(payload);
  }

  /** Verifies one of our own tokens: signature, expiry and not-before against the emulator's clock. */
  async verify(token: string): Promise<JWTPayload> {
    const { payload } = await jwtVerify(token, this.key.publicKey, {
      algorithms: ["RS256"],
      currentDate: new Date(this.world.now()),
      clockTolerance: 0,
    });
    return payload;
  }
}

/** `client_info`: base64url of `{uid, utid}` (the home account), as Entra returns it. */
export function clientInfo(homeOid: string, homeTenant: string): string {
  return Buffer.from(JSON.stringify({ uid: homeOid, utid: homeTenant })).toString("base64url");
}
