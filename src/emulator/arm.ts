/**
 * The slice of Azure Resource Manager that sign-in uses: `/tenants`, `/subscriptions`,
 * `/subscriptions/{id}` and resource groups (list, get, create, update, delete). Every call
 * verifies the bearer token (signature, audience, expiry, tenant) and answers failures as ARM
 * does: 401 with `WWW-Authenticate`, including a continuous access evaluation (CAE) claims
 * challenge when the control API asked for one.
 */
import type { JWTPayload } from "jose";
import { errors as joseErrors } from "jose";
import { header, type Req } from "./http.js";
import type { SeedResourceGroup, SeedSubscription } from "./seed.js";
import { ARM_AUDIENCES, ARM_AUDIENCES_BY_CLOUD, type ArmCloud, type TokenIssuer } from "./tokens.js";

/** The cloud whose ARM a request reached by name (through the proxy), or undefined (loopback). */
export function armCloudOf(origin: string): ArmCloud | undefined {
  let host: string;
  try {
    host = new URL(origin).hostname.toLowerCase();
  } catch {
    return undefined;
  }
  if (host === "management.azure.com" || host === "management.core.windows.net") return "AzureCloud";
  if (host === "management.chinacloudapi.cn" || host === "management.core.chinacloudapi.cn")
    return "AzureChinaCloud";
  if (host === "management.usgovcloudapi.net" || host === "management.core.usgovcloudapi.net")
    return "AzureUSGovernment";
  return undefined;
}

/** As each cloud's ARM: its own audiences; on the emulator's own address, every cloud's. */
function allowedAudiences(origin: string): readonly string[] {
  const cloud = armCloudOf(origin);
  return cloud ? ARM_AUDIENCES_BY_CLOUD[cloud] : ARM_AUDIENCES;
}
import type { Principal, World } from "./world.js";

export class ArmError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export interface ArmContext {
  world: World;
  issuer: TokenIssuer;
}

export interface ArmResponse {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

const API_VERSION = /^\d{4}-\d{2}-\d{2}(-preview|-beta|-privatepreview)?$/;

function apiVersion(req: Req): string {
  const v = req.query.get("api-version");
  if (v === null || v === "")
    throw new ArmError(
      400,
      "MissingApiVersionParameter",
      "The api-version query parameter (?api-version=) is required for all requests.",
    );
  if (!API_VERSION.test(v))
    throw new ArmError(
      400,
      "InvalidApiVersionParameter",
      `The api-version '${v.slice(0, 50)}' is invalid. The supported versions are '2022-12-01,2021-01-01,2020-01-01,2019-11-01,2019-06-01,2016-06-01'.`,
    );
  return v.slice(0, 10);
}

function challenge(params: Record<string, string>): Record<string, string> {
  const parts = Object.entries(params).map(([k, v]) => `${k}="${v}"`);
  return { "WWW-Authenticate": `Bearer ${parts.join(", ")}` };
}

function unauthorized(code: string, message: string, authUri = "https://login.windows.net/"): ArmError {
  return new ArmError(
    401,
    code,
    message,
    challenge({
      authorization_uri: authUri,
      error: "invalid_token",
      error_description: message.replace(/"/g, "'"),
    }),
  );
}

function armTime(ms: number): string {
  const d = new Date(ms);
  const h = d.getUTCHours();
  const h12 = h % 12 === 0 ? 12 : h % 12;
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getUTCMonth() + 1}/${d.getUTCDate()}/${d.getUTCFullYear()} ${h12}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} ${h < 12 ? "AM" : "PM"}`;
}

interface Caller {
  principal: Principal;
  tenantId: string;
  payload: JWTPayload;
}

/** Verifies the bearer token; throws a 401 `ArmError` naming what is wrong. */
export async function authenticate(ctx: ArmContext, req: Req): Promise<Caller> {
  const auth = header(req, "authorization");
  if (!auth)
    throw unauthorized(
      "AuthenticationFailed",
      "Authentication failed. The 'Authorization' header is missing.",
    );
  const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
  if (!m)
    throw unauthorized(
      "AuthenticationFailed",
      "Authentication failed. The 'Authorization' header is provided in an invalid format.",
    );
  let payload: JWTPayload;
  try {
    payload = await ctx.issuer.verify(m[1]!);
  } catch (e) {
    if (e instanceof joseErrors.JWTExpired) {
      const exp = typeof e.payload.exp === "number" ? e.payload.exp * 1000 : 0;
      throw unauthorized(
        "ExpiredAuthenticationToken",
        `The access token expiry UTC time '${armTime(exp)}' is earlier than current UTC time '${armTime(ctx.world.now())}'.`,
      );
    }
    throw unauthorized("InvalidAuthenticationToken", "The access token is invalid.");
  }
  const aud = typeof payload.aud === "string" ? payload.aud : "";
  const audiences = allowedAudiences(req.origin);
  if (!audiences.includes(aud))
    throw unauthorized(
      "InvalidAuthenticationTokenAudience",
      `The access token has been obtained for wrong audience or resource '${aud.slice(0, 200)}'. It should exactly match with one of the allowed audiences '${audiences.join("','")}'.`,
    );
  const tid = typeof payload.tid === "string" ? payload.tid : "";
  if (!ctx.world.tenantsById.has(tid) || payload.iss !== `https://sts.windows.net/${tid}/`)
    throw unauthorized(
      "InvalidAuthenticationTokenTenant",
      `The access token is from the wrong issuer '${String(payload.iss)}'.`,
    );
  const oid = typeof payload.oid === "string" ? payload.oid : "";
  const principal = ctx.world.principalsByOid.get(oid);
  if (!principal) throw unauthorized("InvalidAuthenticationToken", "The access token is invalid.");
  checkClaimsChallenge(ctx.world, principal, tid, payload);
  return { principal, tenantId: tid, payload };
}

function checkClaimsChallenge(world: World, principal: Principal, tid: string, payload: JWTPayload): void {
  const issuedAt = typeof payload.uti === "string" ? (world.issued.get(payload.uti) ?? 0) : 0;
  const names = new Set(world.principalNames(principal).map((n) => n.toLowerCase()));
  for (const c of world.claimsChallenges) {
    if (c.principal !== undefined && !names.has(c.principal.toLowerCase())) continue;
    if (c.tenant !== undefined && c.tenant !== tid) continue;
    if (issuedAt >= c.since) continue;
    const claims = Buffer.from(
      JSON.stringify({
        access_token: { nbf: { essential: true, value: String(Math.ceil(c.since / 1000)) } },
      }),
    ).toString("base64");
    const message =
      "Continuous access evaluation resulted in challenge with result: InteractionRequired and code: TokenIssuedBeforeRevocationTimestamp";
    throw new ArmError(401, "InvalidAuthenticationToken", message, {
      "WWW-Authenticate": `Bearer authorization_uri="https://login.windows.net/", error="insufficient_claims", error_description="${message}", claims="${claims}"`,
    });
  }
}

function tenantUri(tid: string): string {
  return `https://login.windows.net/${tid}`;
}

/** Checks that the caller may act on the subscription from the token's tenant. */
function subscriptionFor(ctx: ArmContext, caller: Caller, id: string, action: string): SeedSubscription {
  const sub = ctx.world.subscription(id);
  if (!sub)
    throw new ArmError(
      404,
      "SubscriptionNotFound",
      `The subscription '${id.slice(0, 100)}' could not be found.`,
    );
  const tenants = [sub.tenant, ...(sub.managedByTenants ?? [])];
  if (!tenants.includes(caller.tenantId)) {
    const message = `The access token is from the wrong issuer 'https://sts.windows.net/${caller.tenantId}/'. It must match the tenant 'https://sts.windows.net/${sub.tenant}/' associated with this subscription. Please use the authority (URL) '${tenantUri(sub.tenant)}' to get the token. Note, if the subscription is transferred to another tenant there is no impact to the services, but information about new tenant could take time to propagate (up to an hour). If you just transferred your subscription and see this error message, please try back later.`;
    throw new ArmError(
      401,
      "InvalidAuthenticationTokenTenant",
      message,
      challenge({
        authorization_uri: tenantUri(sub.tenant),
        error: "invalid_token",
        error_description: "The access token is from the wrong issuer.",
      }),
    );
  }
  if (!ctx.world.canSee(caller.principal, sub)) {
    const name = caller.principal.kind === "user" ? caller.principal.user.upn : String(caller.payload.appid);
    throw new ArmError(
      403,
      "AuthorizationFailed",
      `The client '${name}' with object id '${String(caller.payload.oid)}' does not have authorization to perform action '${action}' over scope '/subscriptions/${sub.id}' or the scope is invalid. If access was recently granted, please refresh your credentials.`,
    );
  }
  return sub;
}

function subscriptionJson(sub: SeedSubscription, version: string): Record<string, unknown> {
  const out: Record<string, unknown> = {
    id: `/subscriptions/${sub.id}`,
    authorizationSource: "RoleBased",
    subscriptionId: sub.id,
    displayName: sub.displayName,
    state: sub.state ?? "Enabled",
    subscriptionPolicies: {
      locationPlacementId: "Public_2014-09-01",
      quotaId: "PayAsYouGo_2014-09-01",
      spendingLimit: "Off",
    },
  };
  if (version >= "2019-06-01") {
    out.managedByTenants = (sub.managedByTenants ?? []).map((tenantId) => ({ tenantId }));
    out.tenantId = sub.tenant;
  }
  if (version >= "2022-12-01") out.tags = {};
  return out;
}

function rgJson(subId: string, rg: SeedResourceGroup): Record<string, unknown> {
  const out: Record<string, unknown> = {
    id: `/subscriptions/${subId}/resourceGroups/${rg.name}`,
    name: rg.name,
    type: "Microsoft.Resources/resourceGroups",
    location: rg.location,
  };
  if (rg.tags && Object.keys(rg.tags).length > 0) out.tags = rg.tags;
  out.properties = { provisioningState: "Succeeded" };
  return out;
}

const RG_NAME = /^[-\w._()]{1,90}$/u;

function parseJsonBody(req: Req): Record<string, unknown> {
  let v: unknown;
  try {
    v = req.body === "" ? {} : JSON.parse(req.body);
  } catch (e) {
    throw new ArmError(
      400,
      "InvalidRequestContent",
      `The request content was invalid and could not be deserialized: '${(e as Error).message.slice(0, 200)}'.`,
    );
  }
  if (typeof v !== "object" || v === null || Array.isArray(v))
    throw new ArmError(400, "InvalidRequestContent", "The request content must be a JSON object.");
  return v as Record<string, unknown>;
}

function parseTags(v: unknown): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "object" || Array.isArray(v))
    throw new ArmError(400, "InvalidRequestContent", "The 'tags' property must be an object of strings.");
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
    if (typeof val !== "string")
      throw new ArmError(
        400,
        "InvalidRequestContent",
        `The value of tag '${k.slice(0, 50)}' must be a string.`,
      );
    out[k] = val;
  }
  return out;
}

function requireWritable(sub: SeedSubscription): void {
  if ((sub.state ?? "Enabled") !== "Enabled" && sub.state !== "Warned")
    throw new ArmError(
      409,
      "ReadOnlyDisabledSubscription",
      `The subscription '${sub.id}' is disabled and therefore marked as read only. You cannot perform any write actions on this subscription until it is re-enabled.`,
    );
}

/** Routes an ARM request; `segments` starts with `tenants` or `subscriptions`. */
export async function armRequest(ctx: ArmContext, req: Req, segments: string[]): Promise<ArmResponse> {
  const version = apiVersion(req);
  const caller = await authenticate(ctx, req);
  const w = ctx.world;
  const [first, subId, kind, rgName, ...rest] = segments.map((s, i) =>
    i === 1 || i === 3 ? s : s.toLowerCase(),
  );
  const method = req.method;
  const onlyGet = () => {
    if (method !== "GET")
      throw new ArmError(
        405,
        "MethodNotAllowed",
        `The HTTP method '${method.slice(0, 20)}' is not supported for this resource.`,
      );
  };

  if (first === "tenants" && segments.length === 1) {
    onlyGet();
    const ids = w.principalTenants(caller.principal);
    const value = ids.map((id) => {
      const t = w.tenantsById.get(id)!;
      const out: Record<string, unknown> = { id: `/tenants/${t.id}`, tenantId: t.id };
      if (version >= "2019-11-01") {
        Object.assign(out, {
          countryCode: t.countryCode ?? "US",
          displayName: t.displayName,
          domains: [t.domain, ...(t.domains ?? [])],
          tenantCategory: "Home",
        });
      }
      if (version >= "2020-01-01") Object.assign(out, { defaultDomain: t.domain, tenantType: "AAD" });
      return out;
    });
    return { status: 200, body: { value } };
  }

  if (first !== "subscriptions")
    throw new ArmError(404, "InvalidResourceType", "The resource type could not be found.");

  if (subId === undefined) {
    onlyGet();
    const value = w.seed.subscriptions
      .filter((s) => s.tenant === caller.tenantId || (s.managedByTenants ?? []).includes(caller.tenantId))
      .filter((s) => w.canSee(caller.principal, s))
      .map((s) => subscriptionJson(s, version));
    return { status: 200, body: { value, count: { type: "Total", value: value.length } } };
  }

  if (kind === undefined) {
    onlyGet();
    const sub = subscriptionFor(ctx, caller, subId, "Microsoft.Resources/subscriptions/read");
    return { status: 200, body: subscriptionJson(sub, version) };
  }

  if (kind === "operationresults" && rgName !== undefined && rest.length === 0) {
    onlyGet();
    subscriptionFor(ctx, caller, subId, "Microsoft.Resources/subscriptions/operationresults/read");
    return { status: 200 };
  }

  if (kind !== "resourcegroups" || rest.length > 0)
    throw new ArmError(
      404,
      "InvalidResourceType",
      `The resource type '${(kind ?? "").slice(0, 50)}' could not be found in the namespace 'Microsoft.Resources' for api version '${version}'.`,
    );

  if (rgName === undefined) {
    onlyGet();
    const sub = subscriptionFor(ctx, caller, subId, "Microsoft.Resources/subscriptions/resourceGroups/read");
    const groups = [...(w.resourceGroups.get(sub.id)?.values() ?? [])];
    return { status: 200, body: { value: groups.map((g) => rgJson(sub.id, g)) } };
  }

  const action =
    method === "DELETE"
      ? "Microsoft.Resources/subscriptions/resourceGroups/delete"
      : method === "GET" || method === "HEAD"
        ? "Microsoft.Resources/subscriptions/resourceGroups/read"
        : "Microsoft.Resources/subscriptions/resourceGroups/write";
  const sub = subscriptionFor(ctx, caller, subId, action);
  const groups = w.resourceGroups.get(sub.id)!;
  const key = rgName.toLowerCase();
  const existing = groups.get(key);
  const notFound = () =>
    new ArmError(404, "ResourceGroupNotFound", `Resource group '${rgName.slice(0, 90)}' could not be found.`);

  switch (method) {
    case "GET":
      if (!existing) throw notFound();
      return { status: 200, body: rgJson(sub.id, existing) };
    case "HEAD":
      return { status: existing ? 204 : 404 };
    case "PUT": {
      if (!RG_NAME.test(rgName) || rgName.endsWith("."))
        throw new ArmError(
          400,
          "InvalidResourceGroup",
          `The provided resource group name '${rgName.slice(0, 100)}' has these invalid characters or length. The name can only be a letter, digit, '-', '.', '(', ')' or '_', up to 90 characters, and cannot end with '.'.`,
        );
      requireWritable(sub);
      const body = parseJsonBody(req);
      const location = body.location;
      if (typeof location !== "string" || location.trim() === "")
        throw new ArmError(400, "LocationRequired", "The location property is required for this definition.");
      const tags = parseTags(body.tags);
      if (existing) {
        if (existing.location.toLowerCase() !== location.toLowerCase())
          throw new ArmError(
            409,
            "InvalidResourceGroupLocation",
            `Invalid resource group location '${location.slice(0, 50)}'. The Resource group already exists in location '${existing.location}'.`,
          );
        if (tags) existing.tags = tags;
        else delete existing.tags;
        return { status: 200, body: rgJson(sub.id, existing) };
      }
      if (groups.size >= 980)
        throw new ArmError(
          400,
          "ResourceGroupQuotaExceeded",
          "The subscription has reached its resource group quota.",
        );
      const rg: SeedResourceGroup = { name: rgName, location: location.toLowerCase().replace(/\s+/g, "") };
      if (tags) rg.tags = tags;
      groups.set(key, rg);
      return { status: 201, body: rgJson(sub.id, rg) };
    }
    case "PATCH": {
      requireWritable(sub);
      if (!existing) throw notFound();
      const body = parseJsonBody(req);
      const tags = parseTags(body.tags);
      if (tags) existing.tags = tags;
      return { status: 200, body: rgJson(sub.id, existing) };
    }
    case "DELETE": {
      if (!existing) throw notFound();
      requireWritable(sub);
      groups.delete(key);
      const op = w.randomToken(24);
      return {
        status: 202,
        headers: {
          Location: `${req.origin}/subscriptions/${sub.id}/operationresults/${op}?api-version=${encodeURIComponent(version)}`,
          "Retry-After": "0",
        },
      };
    }
    default:
      throw new ArmError(
        405,
        "MethodNotAllowed",
        `The HTTP method '${method.slice(0, 20)}' is not supported for this resource.`,
      );
  }
}

/** `/metadata/endpoints`: the cloud's endpoints, for `az cloud register` and SDK cloud discovery. */
const LOGIN_OF: Record<ArmCloud, string> = {
  AzureCloud: "https://login.microsoftonline.com/",
  AzureChinaCloud: "https://login.chinacloudapi.cn/",
  AzureUSGovernment: "https://login.microsoftonline.us/",
};

export function armMetadata(req: Req): unknown {
  const cloud = req.https ? armCloudOf(req.origin) : undefined;
  const login = cloud ? LOGIN_OF[cloud] : `${req.origin}/`;
  const audiences = ARM_AUDIENCES_BY_CLOUD[cloud ?? "AzureCloud"].filter((a) => a.endsWith("/"));
  return {
    galleryEndpoint: "https://gallery.azure.com/",
    graphEndpoint: "https://graph.windows.net/",
    portalEndpoint: "https://portal.azure.com/",
    authentication: { loginEndpoint: login, audiences },
  };
}
