/**
 * Entra ID v2.0 endpoints: discovery documents, JWKS, instance discovery, user realm, the
 * token endpoint (every grant the Azure CLI, MSAL and azure-identity use) and the device
 * code endpoint. Flows through HTML pages live in `authorize.ts`.
 */
import { createHash, createPublicKey, timingSafeEqual } from "node:crypto";
import {
  compactVerify,
  createLocalJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  type JWTPayload,
  type ProtectedHeaderParameters,
} from "jose";
import { E, EntraError } from "./errors.js";
import { formOf, header, type Req } from "./http.js";
import type { SeedApp, SeedTenant, SeedUser } from "./seed.js";
import { FEDERATED_AUDIENCE } from "./seed.js";
import {
  clientInfo,
  jwks,
  parseClaims,
  parseScope,
  resourceAppId,
  type SigningKey,
  type TokenIssuer,
} from "./tokens.js";
import type { Amr, World } from "./world.js";

export interface EntraContext {
  world: World;
  issuer: TokenIssuer;
  key: SigningKey;
  /** The plain-HTTP base URL, where a person can open the device code page. */
  plainUrl(): string;
}

/** The `{tenant}` path segment: one tenant, or one of the multi-tenant aliases. */
export type Target =
  { kind: "tenant"; tenant: SeedTenant; segment: string } | { kind: "multi"; segment: string };

const MULTI = new Set(["common", "organizations"]);

export function resolveTarget(world: World, segment: string): Target {
  const s = segment.toLowerCase();
  if (MULTI.has(s)) return { kind: "multi", segment: s };
  const tenant = world.tenant(s);
  if (!tenant) throw E.tenantNotFound(segment.slice(0, 100));
  return { kind: "tenant", tenant, segment };
}

export function targetName(t: Target): string {
  return t.kind === "tenant" ? t.tenant.id : t.segment;
}

/** `/{tenant}/v2.0/.well-known/openid-configuration`, as Entra publishes it. */
export function openidConfiguration(ctx: EntraContext, req: Req, target: Target, v2: boolean): unknown {
  const base = req.origin;
  const path = target.kind === "tenant" ? target.tenant.id : target.segment;
  const issuerTenant = target.kind === "tenant" ? target.tenant.id : "{tenantid}";
  const real = /^https:\/\/login\.microsoftonline\.com$/.test(base);
  const v = v2 ? "/v2.0" : "";
  const doc: Record<string, unknown> = {
    token_endpoint: `${base}/${path}/oauth2${v}/token`,
    token_endpoint_auth_methods_supported: ["client_secret_post", "private_key_jwt", "client_secret_basic"],
    jwks_uri: v2 ? `${base}/${path}/discovery/v2.0/keys` : `${base}/common/discovery/keys`,
    response_modes_supported: ["query", "fragment", "form_post"],
    subject_types_supported: ["pairwise"],
    id_token_signing_alg_values_supported: ["RS256"],
    response_types_supported: ["code", "id_token", "code id_token", "id_token token"],
    scopes_supported: ["openid", "profile", "email", "offline_access"],
    issuer: v2 ? `${base}/${issuerTenant}/v2.0` : `https://sts.windows.net/${issuerTenant}/`,
    request_uri_parameter_supported: false,
    userinfo_endpoint: real ? "https://graph.microsoft.com/oidc/userinfo" : `${base}/oidc/userinfo`,
    authorization_endpoint: `${base}/${path}/oauth2${v}/authorize`,
    device_authorization_endpoint: `${base}/${path}/oauth2${v}/devicecode`,
    http_logout_supported: true,
    frontchannel_logout_supported: true,
    end_session_endpoint: `${base}/${path}/oauth2${v}/logout`,
    claims_supported: [
      "sub",
      "iss",
      "cloud_instance_name",
      "cloud_instance_host_name",
      "cloud_graph_host_name",
      "msgraph_host",
      "aud",
      "exp",
      "iat",
      "auth_time",
      "acr",
      "nonce",
      "preferred_username",
      "name",
      "tid",
      "ver",
      "at_hash",
      "c_hash",
      "email",
    ],
    kerberos_endpoint: `${base}/${path}/kerberos`,
    tenant_region_scope: target.kind === "tenant" ? "NA" : null,
    cloud_instance_name: "microsoftonline.com",
    cloud_graph_host_name: "graph.windows.net",
    msgraph_host: "graph.microsoft.com",
    rbac_url: "https://pas.windows.net",
  };
  if (!v2) doc.microsoft_multi_refresh_token = true;
  if (target.kind === "tenant") doc.tenant_region_sub_scope = undefined;
  return doc;
}

export function keysDocument(ctx: EntraContext, req: Req): unknown {
  return jwks(ctx.key, `${req.origin}/{tenantid}/v2.0`);
}

/** `/common/discovery/instance`: the request host is its own (only) alias, plus Microsoft's. */
export function instanceDiscovery(req: Req): unknown {
  const host = new URL(req.origin).host;
  let tenant = "common";
  const ae = req.query.get("authorization_endpoint");
  if (ae) {
    try {
      const seg = new URL(ae).pathname.split("/").filter(Boolean)[0];
      if (seg && /^[\w.-]{1,100}$/.test(seg)) tenant = seg;
    } catch {
      /* keep common */
    }
  }
  const metadata: Record<string, unknown>[] = [
    {
      preferred_network: "login.microsoftonline.com",
      preferred_cache: "login.windows.net",
      aliases: ["login.microsoftonline.com", "login.windows.net", "login.microsoft.com", "sts.windows.net"],
    },
    {
      preferred_network: "login.partner.microsoftonline.cn",
      preferred_cache: "login.partner.microsoftonline.cn",
      aliases: ["login.partner.microsoftonline.cn", "login.chinacloudapi.cn"],
    },
    {
      preferred_network: "login.microsoftonline.us",
      preferred_cache: "login.microsoftonline.us",
      aliases: ["login.microsoftonline.us", "login.usgovcloudapi.net"],
    },
  ];
  if (!metadata.some((m) => (m.aliases as string[]).includes(host)))
    metadata.push({ preferred_network: host, preferred_cache: host, aliases: [host] });
  return {
    tenant_discovery_endpoint: `${req.origin}/${tenant}/v2.0/.well-known/openid-configuration`,
    "api-version": req.query.get("api-version") ?? "1.1",
    metadata,
  };
}

/** `/common/userrealm/{user}`: managed for seeded domains, unknown otherwise (no federation here). */
export function userRealm(ctx: EntraContext, req: Req, user: string): unknown {
  const at = user.lastIndexOf("@");
  const domain = at === -1 ? "" : user.slice(at + 1).toLowerCase();
  const tenant = domain ? ctx.world.tenant(domain) : undefined;
  const v2 = (req.query.get("api-version") ?? "1.0") !== "1.0";
  if (v2) {
    return tenant
      ? {
          NameSpaceType: "Managed",
          Login: user,
          DomainName: domain,
          FederationBrandName: tenant.displayName,
          TenantBrandingInfo: null,
          cloud_instance_name: "microsoftonline.com",
        }
      : { NameSpaceType: "Unknown", Login: user, cloud_instance_name: "microsoftonline.com" };
  }
  return tenant
    ? {
        ver: "1.0",
        account_type: "Managed",
        domain_name: domain,
        cloud_instance_name: "microsoftonline.com",
        cloud_audience_urn: "urn:federation:MicrosoftOnline",
      }
    : { ver: "1.0", account_type: "Unknown", cloud_instance_name: "microsoftonline.com" };
}

// ---------------------------------------------------------------------------------------------
// client authentication

type ClientAuth = "none" | "secret" | "certificate" | "federated";

interface AuthenticatedClient {
  app: SeedApp;
  auth: ClientAuth;
}

function sameSecret(a: string, b: string): boolean {
  const ha = createHash("sha256").update(a).digest();
  const hb = createHash("sha256").update(b).digest();
  return timingSafeEqual(ha, hb);
}

function basicAuth(req: Req): { id: string; secret: string } | undefined {
  const h = header(req, "authorization");
  if (!h || !/^basic /i.test(h)) return undefined;
  const text = Buffer.from(h.slice(6).trim(), "base64").toString("utf8");
  const colon = text.indexOf(":");
  if (colon === -1) return undefined;
  try {
    return {
      id: decodeURIComponent(text.slice(0, colon).replace(/\+/g, " ")),
      secret: decodeURIComponent(text.slice(colon + 1).replace(/\+/g, " ")),
    };
  } catch {
    return undefined;
  }
}

const JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const SKEW = 300;

async function authenticateClient(
  ctx: EntraContext,
  req: Req,
  form: URLSearchParams,
  target: Target,
): Promise<AuthenticatedClient> {
  const basic = basicAuth(req);
  const clientId = form.get("client_id") ?? basic?.id;
  if (!clientId) throw E.missingParam("client_id");
  const app = ctx.world.app(clientId);
  const dirName = target.kind === "tenant" ? target.tenant.id : target.segment;
  if (!app) throw E.appNotFound(clientId.slice(0, 100), dirName);
  if (target.kind === "tenant" && !ctx.world.appUsableIn(app, target.tenant.id))
    throw E.appNotFound(app.clientId, dirName);
  const secret = form.get("client_secret") ?? basic?.secret;
  const assertion = form.get("client_assertion");
  if (app.publicClient) {
    if (secret || assertion) throw E.publicClientWithSecret();
    return { app, auth: "none" };
  }
  if (secret) {
    const match = (app.secrets ?? []).find((s) => sameSecret(s.value, secret));
    if (!match) throw E.badSecret(app.clientId);
    if (match.expiresAt && Date.parse(match.expiresAt) <= ctx.world.now())
      throw E.secretExpired(app.clientId);
    return { app, auth: "secret" };
  }
  if (assertion) {
    if (form.get("client_assertion_type") !== JWT_BEARER) throw E.missingParam("client_assertion_type");
    return { app, auth: await verifyAssertion(ctx, req, app, assertion, target) };
  }
  throw E.credentialRequired();
}

function assertionAudiences(req: Req, target: Target): Set<string> {
  const segments = new Set<string>([target.segment]);
  if (target.kind === "tenant") {
    segments.add(target.tenant.id);
    segments.add(target.tenant.domain);
  }
  const out = new Set<string>();
  for (const origin of [req.origin, "https://login.microsoftonline.com"])
    for (const s of segments)
      for (const p of ["/oauth2/v2.0/token", "/oauth2/token", "/oauth2/v2.0/token/"])
        out.add(`${origin}/${s}${p}`);
  return out;
}

function audList(p: JWTPayload): string[] {
  return typeof p.aud === "string"
    ? [p.aud]
    : Array.isArray(p.aud)
      ? p.aud.filter((a) => typeof a === "string")
      : [];
}

function checkTimes(ctx: EntraContext, p: JWTPayload): void {
  const now = ctx.world.nowSeconds();
  const exp = typeof p.exp === "number" ? p.exp : undefined;
  const nbf = typeof p.nbf === "number" ? p.nbf : undefined;
  if (exp === undefined || now > exp + SKEW || (nbf !== undefined && nbf > now + SKEW))
    throw E.assertionTime(now, nbf, exp);
}

async function verifyAssertion(
  ctx: EntraContext,
  req: Req,
  app: SeedApp,
  assertion: string,
  target: Target,
): Promise<ClientAuth> {
  let head: ProtectedHeaderParameters;
  let claims: JWTPayload;
  try {
    head = decodeProtectedHeader(assertion);
    claims = decodeJwt(assertion);
  } catch {
    throw E.assertionMalformed();
  }
  const x5t = typeof head.x5t === "string" ? head.x5t : undefined;
  const x5tS256 = typeof head["x5t#S256"] === "string" ? head["x5t#S256"] : undefined;
  if (x5t !== undefined || x5tS256 !== undefined) {
    // Compare bytes: MSAL Python sends the thumbprint padded ("…="), others unpadded; Entra accepts both.
    const norm = (s: string) => Buffer.from(s, "base64url").toString("hex");
    const cert = (ctx.world.certs.get(app.clientId) ?? []).find(
      (c) =>
        (x5t !== undefined && norm(c.x5t) === norm(x5t)) ||
        (x5tS256 !== undefined && norm(c.x5tS256) === norm(x5tS256)),
    );
    const shown = Buffer.from((x5t ?? x5tS256)!, "base64url")
      .toString("hex")
      .toUpperCase();
    if (!cert) throw E.assertionKeyNotFound(shown.slice(0, 128), app.clientId);
    try {
      await compactVerify(assertion, createPublicKey(cert.pem), {
        algorithms: ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"],
      });
    } catch {
      throw E.assertionSignature("The signature does not match the certificate's key.");
    }
    if (claims.iss !== app.clientId || claims.sub !== app.clientId) throw E.assertionSubject();
    const accepted = assertionAudiences(req, target);
    const auds = audList(claims);
    if (!auds.some((a) => accepted.has(a))) throw E.assertionAudience(auds.join(", ").slice(0, 300));
    checkTimes(ctx, claims);
    return "certificate";
  }
  // A federated (workload identity) token: issued by a trusted issuer, matched to a federated credential.
  const iss = typeof claims.iss === "string" ? claims.iss : "";
  const creds = (app.federatedCredentials ?? []).filter((c) => c.issuer === iss);
  if (creds.length === 0) throw E.federatedIssuer(iss.slice(0, 300));
  const issuer = (ctx.world.seed.federatedIssuers ?? []).find((i) => i.issuer === iss);
  if (!issuer) throw E.federatedSignature(iss);
  try {
    await compactVerify(assertion, createLocalJWKSet(issuer.jwks), {
      algorithms: ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384"],
    });
  } catch {
    throw E.federatedSignature(iss);
  }
  const sub = typeof claims.sub === "string" ? claims.sub : "";
  const bySubject = creds.filter((c) => c.subject === sub);
  if (bySubject.length === 0) throw E.federatedSubject(sub.slice(0, 300));
  const auds = audList(claims);
  if (!bySubject.some((c) => (c.audiences ?? [FEDERATED_AUDIENCE]).some((a) => auds.includes(a))))
    throw E.federatedAudience(auds.join(", ").slice(0, 300));
  checkTimes(ctx, claims);
  return "federated";
}

// ---------------------------------------------------------------------------------------------
// the token endpoint

const DEVICE_CODE_GRANTS = new Set(["urn:ietf:params:oauth:grant-type:device_code", "device_code"]);

export interface TokenResult {
  body: Record<string, unknown>;
  grantType: string;
  clientId: string;
}

export async function tokenEndpoint(ctx: EntraContext, req: Req, target: Target): Promise<TokenResult> {
  if (req.method !== "POST") throw E.postOnly(req.method);
  const form = formOf(req);
  const grant = form.get("grant_type");
  if (!grant) throw E.missingParam("grant_type");
  const client = await authenticateClient(ctx, req, form, target);
  const result = (body: Record<string, unknown>): TokenResult => ({
    body,
    grantType: grant,
    clientId: client.app.clientId,
  });
  switch (grant) {
    case "client_credentials":
      return result(await clientCredentials(ctx, form, target, client));
    case "password":
      return result(await passwordGrant(ctx, req, form, target, client));
    case "refresh_token":
      return result(await refreshGrant(ctx, req, form, target, client));
    case "authorization_code":
      return result(await authorizationCodeGrant(ctx, req, form, target, client));
    default:
      if (DEVICE_CODE_GRANTS.has(grant)) return result(await deviceCodeGrant(ctx, req, form, target, client));
      throw E.unsupportedGrant(grant.slice(0, 100));
  }
}

async function clientCredentials(
  ctx: EntraContext,
  form: URLSearchParams,
  target: Target,
  client: AuthenticatedClient,
): Promise<Record<string, unknown>> {
  if (client.auth === "none") throw E.credentialRequired();
  if (target.kind !== "tenant") throw E.noTenant();
  const scopeParam = form.get("scope");
  const scope = parseScope(ctx.world, scopeParam, target.tenant.id);
  if (!scope.isDefault) throw E.clientCredentialsScope((scopeParam ?? "").slice(0, 200));
  const norm = (r: string) => r.toLowerCase().replace(/\/+$/, "");
  const roles = Object.entries(client.app.appRoles ?? {}).find(
    ([r]) => norm(r) === norm(scope.resource),
  )?.[1];
  const { cp1 } = parseClaims(form.get("claims"));
  const at = await ctx.issuer.appAccessToken({
    tenantId: target.tenant.id,
    clientId: client.app.clientId,
    oid: ctx.world.appObjectId(client.app),
    resource: scope.resource,
    roles,
    appidacr: client.auth === "secret" ? "1" : "2",
    cp1,
  });
  return {
    token_type: "Bearer",
    expires_in: at.expiresIn,
    ext_expires_in: at.expiresIn,
    access_token: at.token,
  };
}

function findUserForSignIn(ctx: EntraContext, username: string, target: Target): SeedUser {
  const user = ctx.world.user(username);
  if (!user || !username.includes("@")) {
    const name =
      target.kind === "tenant" ? target.tenant.domain : (username.split("@")[1] ?? "organizations");
    throw E.userNotFound(name.slice(0, 100));
  }
  return user;
}

/** The tenant a user flow lands in: the one named, or the user's home for common/organizations. */
export function userTenant(ctx: EntraContext, user: SeedUser, target: Target): SeedTenant {
  if (target.kind === "tenant") return target.tenant;
  return ctx.world.tenantsById.get(user.homeTenant)!;
}

async function passwordGrant(
  ctx: EntraContext,
  req: Req,
  form: URLSearchParams,
  target: Target,
  client: AuthenticatedClient,
): Promise<Record<string, unknown>> {
  const username = form.get("username");
  if (!username) throw E.missingParam("username");
  const password = form.get("password");
  if (password === null) throw E.missingParam("password");
  const user = findUserForSignIn(ctx, username, target);
  if (!sameSecret(user.password, password)) throw E.badPassword();
  const now = ctx.world.nowSeconds();
  return issueUserGrant(ctx, req, {
    user,
    tenant: userTenant(ctx, user, target),
    app: client.app,
    scope: form.get("scope"),
    amr: ["pwd"],
    authTime: now,
    nonce: undefined,
    wantClientInfo: form.get("client_info") === "1",
    claims: form.get("claims"),
    requireConsent: true,
  });
}

async function refreshGrant(
  ctx: EntraContext,
  req: Req,
  form: URLSearchParams,
  target: Target,
  client: AuthenticatedClient,
): Promise<Record<string, unknown>> {
  const rt = form.get("refresh_token");
  if (!rt) throw E.missingParam("refresh_token");
  const w = ctx.world;
  const rec = w.refreshTokens.get(rt);
  if (!rec) throw E.grantMalformed();
  const sameClient = rec.clientId === client.app.clientId;
  const sameFamily = rec.familyId !== undefined && client.app.familyId === rec.familyId;
  if (!sameClient && !sameFamily) throw E.grantOtherClient("refresh token");
  const validFrom = w.tokensValidFrom.get(rec.userUpn.toLowerCase());
  if (validFrom !== undefined && rec.issuedAt < validFrom) throw E.refreshRevoked(rec.issuedAt, validFrom);
  const now = w.now();
  if (now >= rec.expiresAt) throw E.refreshExpired(rec.issuedAt, Math.max(0, (now - rec.issuedAt) / 1000));
  const user = w.user(rec.userUpn)!;
  return issueUserGrant(ctx, req, {
    user,
    tenant: userTenant(ctx, user, target),
    app: client.app,
    scope: form.get("scope"),
    amr: rec.amr,
    authTime: rec.authTime,
    nonce: undefined,
    wantClientInfo: form.get("client_info") === "1",
    claims: form.get("claims"),
    requireConsent: false,
  });
}

async function authorizationCodeGrant(
  ctx: EntraContext,
  req: Req,
  form: URLSearchParams,
  target: Target,
  client: AuthenticatedClient,
): Promise<Record<string, unknown>> {
  const code = form.get("code");
  if (!code) throw E.missingParam("code");
  const w = ctx.world;
  const rec = w.authCodes.get(code);
  if (!rec) throw E.grantMalformed();
  if (rec.clientId !== client.app.clientId) throw E.grantOtherClient("authorization code");
  if (rec.redeemed) throw E.codeRedeemed();
  if (w.now() >= rec.expiresAt) throw E.codeExpired();
  const redirectUri = form.get("redirect_uri");
  if (!redirectUri) throw E.missingParam("redirect_uri");
  if (redirectUri !== rec.redirectUri) throw E.redirectMismatch();
  if (rec.codeChallenge !== undefined) {
    const verifier = form.get("code_verifier");
    if (!verifier) throw E.pkceMismatch();
    const computed = createHash("sha256").update(verifier).digest("base64url");
    if (computed !== rec.codeChallenge) throw E.pkceMismatch();
  }
  rec.redeemed = true;
  const user = w.user(rec.userUpn)!;
  const tenant = target.kind === "tenant" ? target.tenant : w.tenantsById.get(rec.tenantId)!;
  return issueUserGrant(ctx, req, {
    user,
    tenant,
    app: client.app,
    scope: form.get("scope") ?? rec.scope,
    amr: rec.amr,
    authTime: rec.authTime,
    nonce: rec.nonce,
    wantClientInfo: form.get("client_info") === "1",
    claims: form.get("claims") ?? rec.claims ?? null,
    requireConsent: false,
  });
}

async function deviceCodeGrant(
  ctx: EntraContext,
  req: Req,
  form: URLSearchParams,
  target: Target,
  client: AuthenticatedClient,
): Promise<Record<string, unknown>> {
  const code = form.get("device_code") ?? form.get("code");
  if (!code) throw E.missingParam("device_code");
  const w = ctx.world;
  const rec = w.deviceCodes.get(code);
  if (!rec) throw E.deviceCodeInvalid();
  if (rec.clientId !== client.app.clientId) throw E.grantOtherClient("device code");
  if (rec.status === "pending" && w.now() >= rec.expiresAt) throw E.deviceCodeExpired();
  if (rec.status === "pending") throw E.authorizationPending();
  if (rec.status === "denied") throw E.deviceCodeDeclined();
  if (rec.status === "redeemed") throw E.deviceCodeInvalid();
  rec.status = "redeemed";
  const user = w.user(rec.userUpn!)!;
  return issueUserGrant(ctx, req, {
    user,
    tenant: userTenant(ctx, user, target),
    app: client.app,
    scope: form.get("scope") ?? rec.scope,
    amr: rec.amr ?? ["pwd"],
    authTime: w.nowSeconds(),
    nonce: undefined,
    wantClientInfo: form.get("client_info") === "1",
    claims: form.get("claims") ?? rec.claims ?? null,
    requireConsent: false,
  });
}

export interface UserGrant {
  user: SeedUser;
  tenant: SeedTenant;
  app: SeedApp;
  scope: string | null;
  amr: Amr;
  authTime: number;
  nonce: string | undefined;
  wantClientInfo: boolean;
  claims: string | null;
  /** ROPC checks consent here; interactive flows asked for it on the consent page. */
  requireConsent: boolean;
}

/** Checks membership, MFA and consent, then issues access, refresh and ID tokens for a user. */
export async function issueUserGrant(
  ctx: EntraContext,
  req: Req,
  g: UserGrant,
): Promise<Record<string, unknown>> {
  const w = ctx.world;
  const oid = w.userOid(g.user, g.tenant.id);
  if (oid === undefined) throw E.userNotInTenant(g.user.upn, g.tenant.id);
  const scope = parseScope(w, g.scope, g.tenant.id);
  const { cp1 } = parseClaims(g.claims);
  if (w.mfaRequired(g.user, g.tenant.id) && !g.amr.includes("mfa"))
    throw E.mfaRequired(resourceAppId(scope.resource));
  if (
    g.requireConsent &&
    !g.app.preConsented &&
    !w.consents.has(`${g.user.upn.toLowerCase()}|${g.app.clientId}`)
  )
    throw E.consentRequired(g.app.clientId);
  const displayName = g.user.displayName ?? g.user.upn.split("@")[0]!;
  const at = await ctx.issuer.userAccessToken({
    upn: g.user.upn,
    displayName,
    oid,
    homeTenant: g.user.homeTenant,
    tenant: g.tenant,
    clientId: g.app.clientId,
    publicClient: g.app.publicClient === true,
    resource: scope.resource,
    permissions: scope.permissions,
    amr: g.amr,
    authTime: g.authTime,
    cp1,
  });
  const body: Record<string, unknown> = {
    token_type: "Bearer",
    scope: scope.responseScope,
    expires_in: at.expiresIn,
    ext_expires_in: at.expiresIn,
    access_token: at.token,
  };
  if (scope.oidc.includes("offline_access")) {
    const rt = `1.A${w.randomToken(96)}`;
    const now = w.now();
    w.refreshTokens.set(rt, {
      userUpn: g.user.upn,
      clientId: g.app.clientId,
      familyId: g.app.familyId,
      tenantId: g.tenant.id,
      amr: [...g.amr],
      authTime: g.authTime,
      issuedAt: now,
      expiresAt: now + w.lifetimes.refreshToken * 1000,
    });
    // A long benchmark would otherwise grow the map without bound: drop the oldest grants.
    if (w.refreshTokens.size > 100_000) {
      const oldest = w.refreshTokens.keys().next().value;
      if (oldest !== undefined) w.refreshTokens.delete(oldest);
    }
    body.refresh_token = rt;
    if (g.app.familyId) body.foci = g.app.familyId;
  }
  if (scope.oidc.includes("openid")) {
    body.id_token = await ctx.issuer.idToken({
      origin: req.origin,
      tenantId: g.tenant.id,
      clientId: g.app.clientId,
      oid,
      upn: g.user.upn,
      displayName,
      homeTenant: g.user.homeTenant,
      homeOid: g.user.objectId,
      nonce: g.nonce,
      authTime: g.authTime,
      amr: g.amr,
    });
  }
  if (g.wantClientInfo) body.client_info = clientInfo(g.user.objectId, g.user.homeTenant);
  return body;
}

// ---------------------------------------------------------------------------------------------
// device code

const USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ23456789";

export function newUserCode(w: World): string {
  for (;;) {
    const bytes = w.randomToken(16);
    let code = "";
    for (const ch of Buffer.from(bytes, "base64url")) {
      code += USER_CODE_ALPHABET[ch % USER_CODE_ALPHABET.length];
      if (code.length === 9) break;
    }
    if (![...w.deviceCodes.values()].some((d) => d.userCode === code)) return code;
  }
}

export function deviceCodeEndpoint(ctx: EntraContext, req: Req, target: Target): Record<string, unknown> {
  if (req.method !== "POST") throw E.postOnly(req.method);
  const form = formOf(req);
  const clientId = form.get("client_id");
  if (!clientId) throw E.missingParam("client_id");
  const w = ctx.world;
  const app = w.app(clientId);
  if (!app) throw E.appNotFound(clientId.slice(0, 100), targetName(target));
  if (target.kind === "tenant" && !w.appUsableIn(app, target.tenant.id))
    throw E.appNotFound(app.clientId, target.tenant.id);
  const scopeParam = form.get("scope");
  parseScope(w, scopeParam, targetName(target));
  const claims = form.get("claims");
  parseClaims(claims);
  // Old codes would pile up in a long-running emulator.
  const now = w.now();
  for (const [k, d] of w.deviceCodes) if (d.expiresAt + 3600_000 < now) w.deviceCodes.delete(k);
  if (w.deviceCodes.size > 10_000)
    throw new EntraError(90055, "temporarily_unavailable", "Too many pending device codes.", 429);
  const deviceCode = `DAQABIQEAAA${w.randomToken(96)}`;
  const userCode = newUserCode(w);
  const lifetime = w.lifetimes.deviceCode;
  w.deviceCodes.set(deviceCode, {
    deviceCode,
    userCode,
    clientId: app.clientId,
    tenantSegment: target.kind === "tenant" ? target.tenant.id : target.segment,
    scope: scopeParam!,
    claims: claims ?? undefined,
    createdAt: now,
    expiresAt: now + lifetime * 1000,
    status: "pending",
  });
  const verificationUri = `${ctx.plainUrl()}/devicelogin`;
  return {
    user_code: userCode,
    device_code: deviceCode,
    verification_uri: verificationUri,
    expires_in: lifetime,
    interval: w.lifetimes.deviceCodeInterval,
    message: `To sign in, use a web browser to open the page ${verificationUri} and enter the code ${userCode} to authenticate.`,
  };
}
