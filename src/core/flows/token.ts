/**
 * Token acquisition without a person: from a refresh token, for a service principal, for a
 * managed identity. These are the functions the token policy (`core/tokens`) calls; they make
 * exactly one request and never retry (the policy does), and they throw:
 *
 * - `IdentityProviderError` with the AADSTS code; `invalid_grant` / `interaction_required` get
 *   code `auth_required` and the exact `azkeep login …` command as hint;
 * - `NetworkError` with the HTTP status and `retryAfterMs` for no answer, 5xx, 429 or garbage.
 *
 * Why direct form POSTs and not openid-client here: Entra's token endpoint is at a fixed path,
 * so skipping discovery saves a round trip on every refresh (the hot path), and the raw AADSTS
 * error body is kept (see docs/signin.md).
 */
import { readFile } from "node:fs/promises";
import type { Cloud } from "../clouds.js";
import type { Context } from "../context.js";
import { AzkeepError, UsageError } from "../errors.js";
import { tokenEndpoint } from "../entra/authority.js";
import { claimsParameter } from "../entra/claims.js";
import { homeAccountId, parseClientInfo } from "../entra/client-info.js";
import { decodeJwtPayload, stringClaim } from "../entra/jwt.js";
import type { ServicePrincipalCredential } from "../store/types.js";
import { getJson, postForm } from "./http.js";

export interface TokenResult {
  accessToken: string;
  tokenType: string;
  /** Epoch seconds. */
  expiresOn: number;
  /** Epoch seconds: refresh early after this (Entra's `refresh_in`). */
  refreshOn?: number;
  /** Rotated refresh token: store it in place of the one used. */
  refreshToken?: string;
  /** Space-joined scopes as returned by the token endpoint. */
  scope: string;
  /** The tenant the access token was issued in (its `tid`), else the tenant asked. */
  tenantId: string;
  idTokenClaims?: Record<string, unknown>;
  /** `<uid>.<utid>` from `client_info`. */
  homeAccountId?: string;
  clientInfo?: { uid: string; utid: string };
}

/** OIDC scopes every user token request carries (MSAL adds them; they get the refresh and id tokens). */
export const OIDC_SCOPES = ["offline_access", "openid", "profile"] as const;

/** Adds the OIDC scopes to `scopes`, without duplicates, keeping the caller's order first. */
export function withOidcScopes(scopes: readonly string[]): string {
  const out = [...scopes];
  for (const s of OIDC_SCOPES) if (!out.includes(s)) out.push(s);
  return out.join(" ");
}

function quote(s: string): string {
  return /^[A-Za-z0-9._:/@+=-]+$/.test(s) ? s : `"${s.replace(/(["\\$`])/g, "\\$1")}"`;
}

/** The command that signs a user in again for `tenant` and `scopes` (what az's hint says). */
export function userLoginCommand(opts: {
  tenant?: string;
  scopes?: readonly string[];
  claims?: string;
}): string {
  let cmd = "azkeep login";
  if (opts.tenant && opts.tenant !== "organizations" && opts.tenant !== "common")
    cmd += ` --tenant ${quote(opts.tenant)}`;
  const scopes = (opts.scopes ?? []).filter((s) => !(OIDC_SCOPES as readonly string[]).includes(s));
  if (scopes.length) cmd += ` --scope ${scopes.map(quote).join(" ")}`;
  if (opts.claims) cmd += ` --claims-challenge ${quote(Buffer.from(opts.claims).toString("base64"))}`;
  return cmd;
}

/** The command that signs a service principal in again, naming the kind of credential. */
export function servicePrincipalLoginCommand(opts: {
  clientId: string;
  tenant: string;
  credential?: ServicePrincipalCredential["kind"];
}): string {
  let cmd = `azkeep login --service-principal -u ${quote(opts.clientId)} --tenant ${quote(opts.tenant)}`;
  if (opts.credential === "certificate") cmd += " --certificate <PEM file>";
  else if (opts.credential === "federated-file") cmd += " --federated-token-file <file>";
  else if (opts.credential === "federated-token") cmd += " --federated-token <token>";
  else if (opts.credential === "secret") cmd += " --password-stdin";
  return cmd;
}

function num(v: unknown): number | undefined {
  const n = typeof v === "number" ? v : typeof v === "string" && v.trim() !== "" ? Number(v) : NaN;
  return Number.isFinite(n) ? n : undefined;
}

/** Turns a token endpoint answer into a TokenResult. */
export function tokenResultFrom(
  ctx: Context,
  body: Record<string, unknown>,
  fallback: { tenant: string; scopes: readonly string[]; url: string },
): TokenResult {
  const accessToken = body.access_token;
  if (typeof accessToken !== "string" || !accessToken) {
    throw new AzkeepError(
      "network",
      `The token endpoint ${new URL(fallback.url).host} answered without an access token.`,
      {
        hint: "Check that the cloud's endpoints point at an identity provider (`azkeep cloud show`).",
      },
    );
  }
  const nowSec = Math.floor(ctx.clock.now() / 1000);
  const expiresIn = num(body.expires_in) ?? 3600;
  const atClaims = decodeJwtPayload(accessToken);
  const idToken = typeof body.id_token === "string" ? body.id_token : undefined;
  const idTokenClaims = idToken ? decodeJwtPayload(idToken) : undefined;
  const clientInfo = parseClientInfo(body.client_info);
  const refreshIn = num(body.refresh_in);
  const result: TokenResult = {
    accessToken,
    tokenType: typeof body.token_type === "string" && body.token_type ? body.token_type : "Bearer",
    expiresOn: nowSec + Math.max(0, Math.floor(expiresIn)),
    scope: typeof body.scope === "string" && body.scope ? body.scope : fallback.scopes.join(" "),
    tenantId: stringClaim(atClaims, "tid") ?? stringClaim(idTokenClaims, "tid") ?? fallback.tenant,
  };
  if (refreshIn !== undefined) result.refreshOn = nowSec + Math.floor(refreshIn);
  if (typeof body.refresh_token === "string" && body.refresh_token) result.refreshToken = body.refresh_token;
  if (idTokenClaims) result.idTokenClaims = idTokenClaims;
  if (clientInfo) {
    result.clientInfo = clientInfo;
    result.homeAccountId = homeAccountId(clientInfo);
  }
  return result;
}

/**
 * Redeems a refresh token for `scopes` in `tenant` (any tenant the user belongs to: Entra
 * refresh tokens are multi-tenant and multi-resource). The answer may carry a rotated
 * refresh token in `refreshToken`.
 */
export async function acquireWithRefreshToken(
  ctx: Context,
  req: {
    cloud: Cloud;
    tenant: string;
    clientId: string;
    refreshToken: string;
    scopes: string[];
    claims?: string;
  },
): Promise<TokenResult> {
  const url = tokenEndpoint(req.cloud, req.tenant);
  const body = await postForm(
    ctx,
    url,
    {
      client_id: req.clientId,
      grant_type: "refresh_token",
      refresh_token: req.refreshToken,
      scope: withOidcScopes(req.scopes),
      client_info: "1",
      claims: claimsParameter(ctx.env, req.claims),
    },
    {
      login: userLoginCommand({
        tenant: req.tenant,
        scopes: req.scopes,
        ...(req.claims ? { claims: req.claims } : {}),
      }),
    },
  );
  return tokenResultFrom(ctx, body, { tenant: req.tenant, scopes: req.scopes, url });
}

const JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/** The client authentication parameters for a service principal's credential. */
export async function clientAuthentication(
  ctx: Context,
  clientId: string,
  credential: ServicePrincipalCredential,
  audience: string,
): Promise<Record<string, string>> {
  switch (credential.kind) {
    case "secret":
      return { client_secret: credential.secret };
    case "certificate": {
      const { loadCertificate, signClientAssertion } = await import("./certificate.js");
      const cert = loadCertificate(credential.certificatePem);
      const assertion = signClientAssertion(cert, {
        clientId,
        audience,
        nowSec: Math.floor(ctx.clock.now() / 1000),
        jti: ctx.random.uuid(),
        ...(credential.sendX5c ? { sendX5c: true } : {}),
      });
      return { client_assertion_type: JWT_BEARER, client_assertion: assertion };
    }
    case "federated-file":
      return {
        client_assertion_type: JWT_BEARER,
        client_assertion: await readFederatedTokenFile(credential.path),
      };
    case "federated-token":
      return { client_assertion_type: JWT_BEARER, client_assertion: credential.token.trim() };
  }
}

/** Reads a workload identity token file; it is re-read at every request because it rotates. */
export async function readFederatedTokenFile(path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new AzkeepError(
      "bad_input",
      `Cannot read the federated token file ${path}${code ? ` (${code})` : ""}.`,
      {
        cause: e,
        hint: "Check --federated-token-file or AZURE_FEDERATED_TOKEN_FILE.",
      },
    );
  }
  const token = text.trim();
  if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token)) {
    throw new AzkeepError("bad_input", `The federated token file ${path} does not hold a JWT.`, {
      hint: "The file must contain the token issued by your workload identity provider, and nothing else.",
    });
  }
  return token;
}

/** A client-credentials token for a service principal. */
export async function acquireForServicePrincipal(
  ctx: Context,
  req: {
    cloud: Cloud;
    tenant: string;
    clientId: string;
    credential: ServicePrincipalCredential;
    scopes: string[];
    claims?: string;
  },
): Promise<TokenResult> {
  const url = tokenEndpoint(req.cloud, req.tenant);
  const auth = await clientAuthentication(ctx, req.clientId, req.credential, url);
  const body = await postForm(
    ctx,
    url,
    {
      client_id: req.clientId,
      grant_type: "client_credentials",
      scope: req.scopes.join(" "),
      client_info: "1",
      claims: claimsParameter(ctx.env, req.claims),
      ...auth,
    },
    {
      login: servicePrincipalLoginCommand({
        clientId: req.clientId,
        tenant: req.tenant,
        credential: req.credential.kind,
      }),
    },
  );
  return tokenResultFrom(ctx, body, { tenant: req.tenant, scopes: req.scopes, url });
}

/** Where a managed identity token comes from in this environment. */
export type ManagedIdentitySource = "app-service" | "app-service-2017" | "cloud-shell" | "imds";

export function managedIdentitySource(env: Context["env"]): ManagedIdentitySource {
  if (env.IDENTITY_ENDPOINT && env.IDENTITY_HEADER) return "app-service";
  if (env.MSI_ENDPOINT && env.MSI_SECRET) return "app-service-2017";
  if (env.MSI_ENDPOINT) return "cloud-shell";
  return "imds";
}

/** IMDS's well-known address; `AZURE_POD_IDENTITY_AUTHORITY_HOST` overrides it, as in the Azure SDKs. */
const IMDS_HOST = "http://169.254.169.254";

/** Managed identity `expires_on`: epoch seconds, or App Service 2017's `MM/DD/YYYY HH:MM:SS +00:00`. */
function parseExpiresOn(v: unknown): number | undefined {
  const n = num(v);
  if (n !== undefined) return Math.floor(n);
  if (typeof v === "string") {
    const t = Date.parse(v);
    if (!Number.isNaN(t)) return Math.floor(t / 1000);
  }
  return undefined;
}

/**
 * A managed identity token for a v1 `resource`, from App Service (`IDENTITY_ENDPOINT` +
 * `IDENTITY_HEADER`, or the older `MSI_ENDPOINT` + `MSI_SECRET`), Cloud Shell (`MSI_ENDPOINT`)
 * or IMDS. At most one of `clientId`, `objectId`, `resourceId` picks a user-assigned identity.
 */
export async function acquireForManagedIdentity(
  ctx: Context,
  req: { resource: string; clientId?: string; objectId?: string; resourceId?: string },
): Promise<TokenResult> {
  const picked = [req.clientId, req.objectId, req.resourceId].filter(Boolean).length;
  if (picked > 1) {
    throw new UsageError("Give only one of --client-id, --object-id and --resource-id.");
  }
  const env = ctx.env;
  const source = managedIdentitySource(env);
  const login = `azkeep login --identity${
    req.clientId
      ? ` --client-id ${req.clientId}`
      : req.objectId
        ? ` --object-id ${req.objectId}`
        : req.resourceId
          ? ` --resource-id ${quote(req.resourceId)}`
          : ""
  }`;
  let body: Record<string, unknown>;
  let url: string;
  if (source === "app-service") {
    const u = new URL(env.IDENTITY_ENDPOINT as string);
    u.searchParams.set("api-version", "2019-08-01");
    u.searchParams.set("resource", req.resource);
    if (req.clientId) u.searchParams.set("client_id", req.clientId);
    if (req.objectId) u.searchParams.set("principal_id", req.objectId);
    if (req.resourceId) u.searchParams.set("mi_res_id", req.resourceId);
    url = u.toString();
    body = await getJson(ctx, url, {
      login,
      headers: { "X-IDENTITY-HEADER": env.IDENTITY_HEADER as string },
    });
  } else if (source === "app-service-2017") {
    const u = new URL(env.MSI_ENDPOINT as string);
    u.searchParams.set("api-version", "2017-09-01");
    u.searchParams.set("resource", req.resource);
    if (req.clientId) u.searchParams.set("clientid", req.clientId);
    if (req.objectId || req.resourceId)
      throw new UsageError(
        "This App Service endpoint (MSI_ENDPOINT) only selects an identity by --client-id.",
      );
    url = u.toString();
    body = await getJson(ctx, url, { login, headers: { secret: env.MSI_SECRET as string } });
  } else if (source === "cloud-shell") {
    url = env.MSI_ENDPOINT as string;
    if (req.objectId || req.resourceId)
      throw new UsageError("Cloud Shell's identity endpoint only selects an identity by --client-id.");
    body = await postForm(
      ctx,
      url,
      { resource: req.resource, ...(req.clientId ? { client_id: req.clientId } : {}) },
      { login, headers: { Metadata: "true" } },
    );
  } else {
    const base = (env.AZURE_POD_IDENTITY_AUTHORITY_HOST || IMDS_HOST).replace(/\/+$/, "");
    const u = new URL(`${base}/metadata/identity/oauth2/token`);
    u.searchParams.set("api-version", "2018-02-01");
    u.searchParams.set("resource", req.resource);
    if (req.clientId) u.searchParams.set("client_id", req.clientId);
    if (req.objectId) u.searchParams.set("object_id", req.objectId);
    if (req.resourceId) u.searchParams.set("msi_res_id", req.resourceId);
    url = u.toString();
    body = await getJson(ctx, url, { login, headers: { Metadata: "true" }, timeoutMs: 10_000 });
  }
  const result = tokenResultFrom(ctx, body, { tenant: "", scopes: [`${req.resource}/.default`], url });
  const expiresOn = parseExpiresOn(body.expires_on);
  if (expiresOn !== undefined) result.expiresOn = expiresOn;
  if (typeof body.resource === "string" && !(typeof body.scope === "string"))
    result.scope = `${body.resource}/.default`;
  if (!result.tenantId) {
    throw new AzkeepError(
      "network",
      "The managed identity endpoint answered with a token that names no tenant.",
      {
        hint: "Check IDENTITY_ENDPOINT / MSI_ENDPOINT, or that this machine has a managed identity.",
      },
    );
  }
  return result;
}
