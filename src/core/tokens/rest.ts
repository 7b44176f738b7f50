/**
 * `azkeep rest`, as `az rest`: an HTTP request with a token for the right audience, so nobody
 * pastes a token into a curl command line (where every local user can read it in /proc).
 *
 * Which token: from `--resource` when given; otherwise from the URL — Azure Resource Manager
 * for the cloud's ARM host, Microsoft Graph for its Graph host, and no token at all for other
 * hosts (as az). Threat stopped: a token sent to a host that is not its audience can be
 * replayed by that host. So a token for a well-known audience (ARM, Graph, Key Vault, Storage,
 * … of the cloud) is only ever sent to that audience's hosts — also on redirects — even when
 * `--resource` names it; only a resource azkeep does not know (a custom API's App ID URI) is
 * trusted to the URL the user named next to it.
 */
import { readFile } from "node:fs/promises";
import { BUILTIN_CLOUDS, type Cloud } from "../clouds.js";
import type { Context } from "../context.js";
import { AzkeepError, NetworkError, UsageError } from "../errors.js";
import { cannotReach, isLoopbackHost, redirectStep, sameOrigin, withoutCredentials } from "../net.js";
import { findSubscription } from "../profile/accounts.js";
import { redact } from "../redact.js";
import { acquireToken, type PolicyDeps } from "./policy.js";

export const REST_METHODS = ["delete", "get", "head", "options", "patch", "post", "put"] as const;
export type RestMethod = (typeof REST_METHODS)[number];

export interface RestOptions {
  method?: RestMethod | undefined;
  url: string;
  /** A string, or `@file` to read it from a file. */
  body?: string | undefined;
  /** `key=value` items or JSON objects. */
  headers?: string[] | undefined;
  uriParameters?: string[] | undefined;
  /** The token's audience (a v1 resource). */
  resource?: string | undefined;
  skipAuthorizationHeader?: boolean | undefined;
  /** Hosts a token for a custom `--resource` may also go to (`--token-host`). */
  tokenHosts?: string[] | undefined;
  /** Skip the cached token (`--force-refresh`). */
  forceRefresh?: boolean | undefined;
  /** A generic OpenID sign-in's issuer: its token instead of Azure's (needs an absolute --url). */
  authority?: string | undefined;
  clientId?: string | undefined;
}

export interface RestResult {
  status: number;
  /** The parsed JSON body, when it is JSON. */
  json?: unknown;
  /** The raw body when it is not JSON. */
  text?: string;
}

function hostOf(u: string): string | undefined {
  try {
    return new URL(u).host.toLowerCase();
  } catch {
    return undefined;
  }
}

function trimResource(r: string): string {
  return r
    .trim()
    .replace(/\/\.default$/, "")
    .replace(/\/+$/, "")
    .toLowerCase();
}

/** Hosts a token for a well-known audience may go to: exact hosts and `.suffix` domains. */
export interface AudienceHosts {
  name: string;
  hosts: string[];
  suffixes: string[];
}

type Service =
  "arm" | "graph" | "aad-graph" | "keyvault" | "storage" | "batch" | "ossrdbms" | "media" | "data-lake";

/**
 * Microsoft's first-party application ids: `--resource 797f4846-…` is Azure Resource Manager
 * just as `https://management.azure.com/` is (Entra issues the same token), so it is bound to
 * the same hosts. Threat: a GUID slipping past a check that only knows URIs.
 */
export const WELL_KNOWN_APP_IDS: Readonly<Record<string, Service>> = {
  "797f4846-ba00-4fd7-ba43-dac1f8f63013": "arm",
  "00000003-0000-0000-c000-000000000000": "graph",
  "00000002-0000-0000-c000-000000000000": "aad-graph",
  "cfa8b339-82a2-471a-a3c9-0fc0be7a4093": "keyvault",
  "e406a681-f3d4-42a8-90b6-c2b029497af1": "storage",
  "ddbf3205-c6bd-46ae-8127-60eb93363864": "batch",
  "123cd850-d9df-40bd-94d5-c9f07b7fa203": "ossrdbms",
  "e9f49c6b-5ce5-44c8-925d-015017e9f7ad": "data-lake",
};

const SERVICE_NAMES: Record<Service, string> = {
  arm: "Azure Resource Manager",
  graph: "Microsoft Graph",
  "aad-graph": "Azure AD Graph",
  keyvault: "Key Vault",
  storage: "Azure Storage",
  batch: "Azure Batch",
  ossrdbms: "Azure Database (OSS RDBMS)",
  media: "Azure Media Services",
  "data-lake": "Azure Data Lake",
};

const h = (u: string | undefined): string | undefined => (u ? hostOf(u) : undefined);
const defined = <T>(xs: (T | undefined)[]): T[] => xs.filter((x): x is T => x !== undefined && x !== "");

/** The hosts of `service` in `cloud`, or undefined when the cloud has no such endpoint. */
function serviceHosts(cloud: Cloud, service: Service): AudienceHosts | undefined {
  const e = cloud.endpoints;
  const name = SERVICE_NAMES[service];
  const one = (u: string | undefined, sub: boolean): AudienceHosts | undefined => {
    const host = h(u);
    return host ? { name, hosts: [host], suffixes: sub ? [`.${host}`] : [] } : undefined;
  };
  switch (service) {
    case "arm":
      return {
        name,
        hosts: [...new Set(defined([h(e.resourceManager), h(e.management), h(e.activeDirectoryResourceId)]))],
        suffixes: [],
      };
    case "graph":
      return one(e.microsoftGraphResourceId, false);
    case "aad-graph":
      return one(e.activeDirectoryGraphResourceId, false);
    case "keyvault": {
      const vault = cloud.suffixes.keyvaultDns?.replace(/^\./, "").toLowerCase();
      return vault ? { name, hosts: [vault], suffixes: [`.${vault}`] } : undefined;
    }
    case "storage": {
      const storage = cloud.suffixes.storageEndpoint?.replace(/^\./, "").toLowerCase();
      return storage ? { name, hosts: [], suffixes: [`.${storage}`] } : undefined;
    }
    case "batch":
      return one(e.batchResourceId, true);
    case "ossrdbms":
      return one(e.ossrdbmsResourceId, true);
    case "media":
      return one(e.mediaResourceId, true);
    case "data-lake":
      return one(e.activeDirectoryDataLakeResourceId, true);
  }
}

/** Which service of `cloud` an app-id URI names, if any. */
function serviceOfUri(cloud: Cloud, r: string): Service | undefined {
  const e = cloud.endpoints;
  const is = (u: string | undefined) => u !== undefined && u !== "" && trimResource(u) === r;
  if (is(e.activeDirectoryResourceId) || is(e.management) || is(e.resourceManager)) return "arm";
  if (is(e.microsoftGraphResourceId)) return "graph";
  if (is(e.activeDirectoryGraphResourceId)) return "aad-graph";
  const vault = cloud.suffixes.keyvaultDns?.replace(/^\./, "").toLowerCase();
  if (vault && r === `https://${vault}`) return "keyvault";
  if (cloud.suffixes.storageEndpoint && r === "https://storage.azure.com") return "storage";
  if (is(e.batchResourceId)) return "batch";
  if (is(e.ossrdbmsResourceId)) return "ossrdbms";
  if (is(e.mediaResourceId)) return "media";
  if (is(e.activeDirectoryDataLakeResourceId)) return "data-lake";
  return undefined;
}

/**
 * The hosts of a well-known audience — an app-id URI of a service of `cloud` or of a built-in
 * cloud, or a first-party application id (bound to `cloud`'s hosts) — or undefined for a
 * resource azkeep does not know.
 */
export function knownAudience(cloud: Cloud, resource: string): AudienceHosts | undefined {
  const r = trimResource(resource);
  const guid = r.replace(/^api:\/\//, "");
  const byId = WELL_KNOWN_APP_IDS[guid];
  if (byId) {
    return (
      serviceHosts(cloud, byId) ?? { name: SERVICE_NAMES[byId], hosts: [], suffixes: [] } // no such endpoint: no host
    );
  }
  for (const c of [cloud, ...BUILTIN_CLOUDS.filter((b) => b.name !== cloud.name)]) {
    const service = serviceOfUri(c, r);
    if (service) return serviceHosts(c, service);
  }
  return undefined;
}

export function hostAllowed(a: AudienceHosts, host: string): boolean {
  const bare = host.toLowerCase().replace(/:443$/, "");
  return (
    a.hosts.some((x) => x === host || x === bare) ||
    a.suffixes.some((s) => host.endsWith(s) || bare.endsWith(s))
  );
}

/** Plain http to a host that is not this machine: no token, ever. */
function cleartext(u: URL): boolean {
  return u.protocol === "http:" && !isLoopbackHost(u.hostname);
}

/**
 * Where a token for a resource azkeep does not know may go: the resource's own host and its
 * subdomains (`https://api.contoso.com` → `api.contoso.com`, `x.api.contoso.com`), plus the
 * hosts the user named with `--token-host`.
 */
function customHosts(resource: string, tokenHosts: readonly string[]): AudienceHosts {
  let host: string | undefined;
  try {
    const u = new URL(resource.trim());
    if (u.protocol === "https:" || u.protocol === "http:") host = u.host.toLowerCase();
  } catch {
    host = undefined;
  }
  return {
    name: resource,
    hosts: [...defined([host]), ...tokenHosts.map((t) => t.toLowerCase())],
    suffixes: host ? [`.${host}`] : [],
  };
}

/** az: a URL that does not start with a scheme is an ARM resource id under the cloud's ARM host. */
export function resolveUrl(url: string, cloud: Cloud, subscriptionId: () => string): string {
  let u = url.trim();
  if (u.includes("{subscriptionId}")) u = u.split("{subscriptionId}").join(subscriptionId());
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(u)) {
    u = `${cloud.endpoints.resourceManager.replace(/\/+$/, "")}/${u.replace(/^\/+/, "")}`;
  }
  let parsed: URL;
  try {
    parsed = new URL(u);
  } catch {
    throw new AzkeepError("bad_input", `--url is not a URL: ${redact(url)}`, {
      hint: "Give an absolute URL (https://…) or an ARM path such as /subscriptions/{subscriptionId}/resourcegroups?api-version=2022-09-01.",
    });
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") {
    throw new AzkeepError("bad_input", `--url must be http(s), not ${parsed.protocol}`);
  }
  return parsed.toString();
}

function refuse(what: string, host: string, why: string, hint: string): AzkeepError {
  return new AzkeepError("bad_input", `Refusing to send a token for ${what} to ${host}: ${why}.`, { hint });
}

function listHosts(a: AudienceHosts): string {
  return [...new Set([...a.hosts, ...a.suffixes.map((x) => `*${x}`)])].join(", ") || "no host";
}

/**
 * The audience to get a token for, or undefined to send none. Throws when the token would go
 * where it does not belong: a well-known audience to a host outside it, a custom resource to a
 * host outside its domain (unless named with `--token-host`), or anything over plain http to
 * a host that is not this machine.
 */
export function chooseAudience(
  url: string,
  cloud: Cloud,
  resource: string | undefined,
  tokenHosts: readonly string[] = [],
): { resource: string; audience: AudienceHosts } | undefined {
  const u = new URL(url);
  const host = u.host.toLowerCase();
  if (resource) {
    const a = knownAudience(cloud, resource);
    if (a) {
      if (!hostAllowed(a, host)) {
        throw refuse(
          a.name,
          host,
          "that host is not part of the token's audience",
          `A token for ${a.name} is only sent to ${listHosts(a)}${tokenHosts.length ? " (--token-host is for custom resources only)" : ""}. Check --url and --resource.`,
        );
      }
    }
    const audience = a ?? customHosts(resource, tokenHosts);
    if (!a && !hostAllowed(audience, host)) {
      throw refuse(
        resource,
        host,
        "that host is not in the resource's domain",
        `Check --url and --resource. If ${host} really serves this API, name it: --token-host ${host}.`,
      );
    }
    if (cleartext(u)) {
      throw refuse(
        audience.name,
        host,
        "the URL is plain http",
        "Use https:// (plain http is allowed only to this machine: localhost, 127.0.0.1, ::1).",
      );
    }
    return { resource, audience };
  }
  const e = cloud.endpoints;
  let chosen: string | undefined;
  if (host === hostOf(e.resourceManager)) chosen = e.activeDirectoryResourceId;
  else if (e.microsoftGraphResourceId && host === hostOf(e.microsoftGraphResourceId))
    chosen = e.microsoftGraphResourceId;
  if (!chosen) return undefined;
  const audience = knownAudience(cloud, chosen)!;
  if (cleartext(u)) {
    throw refuse(
      audience.name,
      host,
      "the URL is plain http",
      "Use https:// (plain http is allowed only to this machine: localhost, 127.0.0.1, ::1).",
    );
  }
  return { resource: chosen, audience };
}

/** Whether the token chosen for `audience` may be sent to `url` (each hop of a redirect). */
export function tokenAllowed(audience: AudienceHosts, url: string): boolean {
  const u = new URL(url);
  return !cleartext(u) && hostAllowed(audience, u.host.toLowerCase());
}

/** `key=value` items and JSON objects, merged (az's `--headers` / `--uri-parameters`). */
export function parseKeyValues(items: readonly string[] | undefined, flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items ?? []) {
    const t = item.trim();
    if (t.startsWith("{")) {
      let v: unknown;
      try {
        v = JSON.parse(t);
      } catch {
        throw new UsageError(`${flag}: not valid JSON: ${redact(t)}`, {
          hint: `Give ${flag} as key=value pairs or as one JSON object.`,
        });
      }
      if (!v || typeof v !== "object" || Array.isArray(v))
        throw new UsageError(`${flag}: the JSON must be an object.`, {
          hint: `Give ${flag} as key=value pairs or as one JSON object.`,
        });
      for (const [k, val] of Object.entries(v as Record<string, unknown>))
        out[k] = typeof val === "string" ? val : JSON.stringify(val);
      continue;
    }
    const eq = t.indexOf("=");
    if (eq <= 0) {
      throw new UsageError(`${flag}: '${redact(t)}' is not key=value.`, {
        hint: `Give ${flag} as key=value pairs or as one JSON object.`,
      });
    }
    out[t.slice(0, eq)] = t.slice(eq + 1);
  }
  return out;
}

async function readBody(body: string | undefined): Promise<string | undefined> {
  if (body === undefined) return undefined;
  if (!body.startsWith("@")) return body;
  const path = body.slice(1);
  try {
    return await readFile(path, "utf8");
  } catch (e) {
    throw new AzkeepError("bad_input", `Cannot read the body file ${path}.`, { cause: e });
  }
}

const MAX_REDIRECTS = 5;

/** The claims of a CAE challenge (`WWW-Authenticate: Bearer …, error="insufficient_claims", claims="…"`). */
export function claimsChallenge(wwwAuthenticate: string | null): string | undefined {
  if (!wwwAuthenticate || !/error\s*=\s*"?insufficient_claims"?/i.test(wwwAuthenticate)) return undefined;
  const m = /claims\s*=\s*"([^"]+)"/i.exec(wwwAuthenticate);
  return m?.[1];
}

/** The ARM error code of a JSON body (`{"error":{"code":…}}`), if any. */
function armErrorCode(json: unknown): string | undefined {
  const c = (json as { error?: { code?: unknown } } | undefined)?.error?.code;
  return typeof c === "string" ? c : undefined;
}

interface Sent {
  res: Response;
  /** The URL that answered (after redirects). */
  url: string;
  /** Whether azkeep's token went with the request that answered. */
  tokenSent: boolean;
}

/** Sends the request; throws for HTTP ≥ 400 with az's message shape `Reason(body)`. */
export async function rest(
  ctx: Context,
  deps: PolicyDeps & { cloud: Cloud },
  options: RestOptions,
): Promise<RestResult> {
  const { cloud, store } = deps;
  // `cloud`'s default account: the subscription of `{subscriptionId}`, and the token's identity.
  const tokenDeps: PolicyDeps = { ...deps, activeCloud: () => cloud.name };
  let profile: Awaited<ReturnType<typeof store.readProfile>> | undefined;
  const defaultSubscription = async () => {
    profile ??= await store.readProfile();
    return findSubscription(profile, cloud.name).id;
  };
  if (options.authority) {
    if (options.resource)
      throw new UsageError("--authority cannot be combined with --resource.", {
        hint: "--authority uses the token of that OpenID sign-in; leave out --resource.",
      });
    if (!/^https?:\/\//i.test(options.url.trim()) || options.url.includes("{subscriptionId}"))
      throw new UsageError(
        "--authority needs an absolute --url (https://…): there is no ARM endpoint to resolve a path against.",
        {
          hint: "Give the full URL of the API, e.g. --url https://api.example.com/v1/me.",
        },
      );
  } else if (options.clientId) {
    throw new UsageError("--client-id goes with --authority (a generic OpenID sign-in).");
  }
  const subId = options.url.includes("{subscriptionId}") ? await defaultSubscription() : "";
  let firstUrl = resolveUrl(options.url, cloud, () => subId);
  if (options.uriParameters?.length) {
    const u = new URL(firstUrl);
    for (const [k, v] of Object.entries(parseKeyValues(options.uriParameters, "--uri-parameters")))
      u.searchParams.set(k, v);
    firstUrl = u.toString();
  }
  const headers = parseKeyValues(options.headers, "--headers");
  const lower = new Set(Object.keys(headers).map((k) => k.toLowerCase()));
  const body = await readBody(options.body);
  if (body !== undefined && !lower.has("content-type")) headers["Content-Type"] = "application/json";
  const method = (options.method ?? "get").toUpperCase();

  let choice: ReturnType<typeof chooseAudience>;
  let token:
    Pick<Awaited<ReturnType<typeof acquireToken>>, "accessToken" | "tokenType" | "source"> | undefined;
  if (options.authority && !options.skipAuthorizationHeader && !lower.has("authorization")) {
    // A generic OpenID sign-in's token: its audience is whatever the provider says, so it goes
    // only to the host the user named in --url (and --token-host), never over plain http.
    const u = new URL(firstUrl);
    const audience: AudienceHosts = {
      name: `the OpenID provider ${options.authority}`,
      hosts: [u.host.toLowerCase(), ...(options.tokenHosts ?? []).map((t) => t.toLowerCase())],
      suffixes: [],
    };
    if (cleartext(u)) {
      throw refuse(
        audience.name,
        u.host,
        "the URL is plain http",
        "Use https:// (plain http is allowed only to this machine: localhost, 127.0.0.1, ::1).",
      );
    }
    const { acquireOidcToken } = await import("./oidc-token.js");
    const t = await acquireOidcToken(ctx, store, {
      issuer: options.authority,
      clientId: options.clientId,
      forceRefresh: options.forceRefresh,
      signal: deps.signal,
    });
    token = { accessToken: t.accessToken, tokenType: t.tokenType, source: "network" };
    choice = { resource: options.authority, audience };
  } else if (!options.skipAuthorizationHeader && !lower.has("authorization")) {
    choice = chooseAudience(firstUrl, cloud, options.resource, options.tokenHosts ?? []);
    if (choice) {
      token = await acquireToken(ctx, tokenDeps, {
        resource: choice.resource,
        ...(options.forceRefresh ? { forceRefresh: true } : {}),
      });
    } else {
      ctx.logger.warn(
        "Can't derive appropriate Azure AD resource from --url to acquire an access token. If access token is required, use --resource to specify the resource",
      );
    }
  }

  const send = async (): Promise<Sent> => {
    const authorization = token ? `${token.tokenType || "Bearer"} ${token.accessToken}` : undefined;
    let url = firstUrl;
    let m = method;
    let withBody = body !== undefined && m !== "GET" && m !== "HEAD";
    // The user's own headers; credentials among them (an Authorization given with --headers)
    // stay on the origin the user named.
    let h: Record<string, string> = { ...headers };
    for (let hop = 0; ; hop++) {
      const hopHeaders: Record<string, string> = { ...h };
      // Threat: a redirect carrying the token to another host. Only the audience's hosts (or,
      // for a custom resource, its domain and --token-host) get it, never over plain http.
      const tokenSent = Boolean(authorization && choice && tokenAllowed(choice.audience, url));
      if (tokenSent) hopHeaders.Authorization = authorization!;
      ctx.logger.debug(`${m} ${url}`);
      let res: Response;
      try {
        res = await ctx.fetch(url, {
          method: m,
          headers: hopHeaders,
          ...(withBody && body !== undefined ? { body } : {}),
          redirect: "manual",
        });
      } catch (e) {
        throw new NetworkError(cannotReach(hostOf(url) ?? url, e), {
          cause: e,
          hint: "Check the URL and the network (HTTPS_PROXY, NODE_EXTRA_CA_CERTS).",
        });
      }
      ctx.logger.debug(`${m} ${url} → ${res.status}`);
      const location = res.headers.get("location");
      if ([301, 302, 303, 307, 308].includes(res.status) && location && hop < MAX_REDIRECTS) {
        await res.body?.cancel().catch(() => {});
        let step: ReturnType<typeof redirectStep>;
        try {
          step = redirectStep(new URL(url), location, res.status, m, withBody);
        } catch (e) {
          const why = (e as { cause?: { message?: string } }).cause?.message ?? "refused";
          throw new NetworkError(`${hostOf(url)} answered HTTP ${res.status}: azkeep ${why}.`, {
            status: res.status,
            hint: "Nothing was sent to the redirect's target. Check --url, or send the request to the target yourself.",
          });
        }
        if (!sameOrigin(new URL(url), step.url)) h = withoutCredentials(h);
        if (!step.keepBody) {
          withBody = false;
          for (const k of Object.keys(h)) if (k.toLowerCase() === "content-type") delete h[k];
        }
        m = step.method;
        url = step.url.toString();
        continue;
      }
      return { res, url, tokenSent };
    }
  };

  let sent = await send();
  if (sent.res.status === 401 && sent.tokenSent && token && !options.authority) {
    // Once: a CAE claims challenge, or a cached token the resource no longer takes (revoked,
    // or the clock moved): get a new token and send the request again, as az and the SDKs do.
    const challenge = claimsChallenge(sent.res.headers.get("www-authenticate"));
    let code: string | undefined;
    if (!challenge && token.source !== "network") {
      const peek = await sent.res
        .clone()
        .text()
        .catch(() => "");
      try {
        code = armErrorCode(JSON.parse(peek));
      } catch {
        code = undefined;
      }
    }
    if (challenge || code === "InvalidAuthenticationToken" || code === "ExpiredAuthenticationToken") {
      ctx.logger.debug(
        challenge
          ? "rest: the resource sent a claims challenge; getting a new token and retrying once"
          : `rest: ${code} for a cached token; refreshing it and retrying once`,
      );
      await sent.res.body?.cancel().catch(() => {});
      token = await acquireToken(ctx, tokenDeps, {
        resource: choice!.resource,
        ...(challenge ? { claims: challenge } : { forceRefresh: true }),
      });
      sent = await send();
    }
  }
  const res = sent.res;
  const text = await res.text();
  let json: unknown;
  let isJson = false;
  if (text.trim()) {
    try {
      json = JSON.parse(text);
      isJson = true;
    } catch {
      isJson = false;
    }
  }
  if (res.status >= 400) {
    const reason = res.statusText || `HTTP ${res.status}`;
    throw new AzkeepError(res.status >= 500 ? "network" : "bad_input", `${reason}(${redact(text.trim())})`, {
      details: { status: res.status },
    });
  }
  const out: RestResult = { status: res.status };
  if (isJson) out.json = json;
  else if (text) out.text = text;
  return out;
}
