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
import type { Cloud } from "../clouds.js";
import type { Context } from "../context.js";
import { AzkeepError, NetworkError } from "../errors.js";
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

/**
 * The hosts of a well-known audience of `cloud`, or undefined for a resource azkeep does not
 * know (then the user's explicit `--resource` is trusted).
 */
export function knownAudience(cloud: Cloud, resource: string): AudienceHosts | undefined {
  const r = trimResource(resource);
  const e = cloud.endpoints;
  const h = (u: string | undefined) => (u ? hostOf(u) : undefined);
  const defined = (xs: (string | undefined)[]) => xs.filter((x): x is string => Boolean(x));
  const arm = defined([e.activeDirectoryResourceId, e.management, e.resourceManager]).map(trimResource);
  if (arm.includes(r)) {
    return {
      name: "Azure Resource Manager",
      hosts: defined([h(e.resourceManager), h(e.management), h(e.activeDirectoryResourceId)]),
      suffixes: [],
    };
  }
  if (e.microsoftGraphResourceId && trimResource(e.microsoftGraphResourceId) === r)
    return { name: "Microsoft Graph", hosts: defined([h(e.microsoftGraphResourceId)]), suffixes: [] };
  if (e.activeDirectoryGraphResourceId && trimResource(e.activeDirectoryGraphResourceId) === r)
    return { name: "Azure AD Graph", hosts: defined([h(e.activeDirectoryGraphResourceId)]), suffixes: [] };
  const vault = cloud.suffixes.keyvaultDns?.replace(/^\./, "");
  if (vault && r === `https://${vault}`)
    return { name: "Key Vault", hosts: [vault], suffixes: [`.${vault}`] };
  const storage = cloud.suffixes.storageEndpoint;
  if (storage && r === "https://storage.azure.com")
    return { name: "Azure Storage", hosts: [], suffixes: [`.${storage}`] };
  for (const v of defined([
    e.batchResourceId,
    e.ossrdbmsResourceId,
    e.mediaResourceId,
    e.activeDirectoryDataLakeResourceId,
  ])) {
    if (trimResource(v) === r) {
      const host = h(v)!;
      return { name: host, hosts: [host], suffixes: [`.${host}`] };
    }
  }
  return undefined;
}

export function hostAllowed(a: AudienceHosts, host: string): boolean {
  return a.hosts.includes(host) || a.suffixes.some((s) => host.endsWith(s));
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

/**
 * The audience to get a token for, or undefined to send none. Throws when `--resource` names a
 * well-known audience that `url`'s host does not belong to.
 */
export function chooseAudience(
  url: string,
  cloud: Cloud,
  resource: string | undefined,
): { resource: string; audience: AudienceHosts | undefined } | undefined {
  const host = hostOf(url)!;
  if (resource) {
    const a = knownAudience(cloud, resource);
    if (a && !hostAllowed(a, host)) {
      throw new AzkeepError(
        "bad_input",
        `Refusing to send a token for ${a.name} to ${host}: that host is not part of the token's audience.`,
        {
          hint: `A token for ${a.name} is only sent to ${[...new Set([...a.hosts, ...a.suffixes.map((s) => `*${s}`)])].join(", ")}. Check --url and --resource.`,
        },
      );
    }
    return { resource, audience: a };
  }
  const e = cloud.endpoints;
  if (host === hostOf(e.resourceManager)) {
    return {
      resource: e.activeDirectoryResourceId,
      audience: knownAudience(cloud, e.activeDirectoryResourceId),
    };
  }
  if (e.microsoftGraphResourceId && host === hostOf(e.microsoftGraphResourceId)) {
    return {
      resource: e.microsoftGraphResourceId,
      audience: knownAudience(cloud, e.microsoftGraphResourceId),
    };
  }
  return undefined;
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
        throw new AzkeepError("bad_input", `${flag}: not valid JSON: ${redact(t)}`, {
          hint: `Give ${flag} as key=value pairs or as one JSON object.`,
        });
      }
      if (!v || typeof v !== "object" || Array.isArray(v))
        throw new AzkeepError("bad_input", `${flag}: the JSON must be an object.`);
      for (const [k, val] of Object.entries(v as Record<string, unknown>))
        out[k] = typeof val === "string" ? val : JSON.stringify(val);
      continue;
    }
    const eq = t.indexOf("=");
    if (eq <= 0) {
      throw new AzkeepError("bad_input", `${flag}: '${redact(t)}' is not key=value.`, {
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
  const subId = options.url.includes("{subscriptionId}") ? await defaultSubscription() : "";
  let url = resolveUrl(options.url, cloud, () => subId);
  if (options.uriParameters?.length) {
    const u = new URL(url);
    for (const [k, v] of Object.entries(parseKeyValues(options.uriParameters, "--uri-parameters")))
      u.searchParams.set(k, v);
    url = u.toString();
  }
  const headers = parseKeyValues(options.headers, "--headers");
  const lower = new Set(Object.keys(headers).map((k) => k.toLowerCase()));
  const body = await readBody(options.body);
  if (body !== undefined && !lower.has("content-type")) headers["Content-Type"] = "application/json";

  let audience: AudienceHosts | undefined;
  let authorization: string | undefined;
  if (!options.skipAuthorizationHeader && !lower.has("authorization")) {
    const choice = chooseAudience(url, cloud, options.resource);
    if (choice) {
      const t = await acquireToken(ctx, tokenDeps, { resource: choice.resource });
      authorization = `${t.tokenType || "Bearer"} ${t.accessToken}`;
      audience = choice.audience;
    } else {
      ctx.logger.warn(
        "Can't derive appropriate Azure AD resource from --url to acquire an access token. If access token is required, use --resource to specify the resource",
      );
    }
  }

  const method = (options.method ?? "get").toUpperCase();
  let res: Response | undefined;
  for (let hop = 0; ; hop++) {
    const h: Record<string, string> = { ...headers };
    // Threat: a redirect carrying the token to another host. Keep it only within the audience
    // (or, for an explicitly named custom resource, the host the user named).
    if (authorization) {
      const host = hostOf(url)!;
      const first = hop === 0;
      if (first || (audience ? hostAllowed(audience, host) : false)) h.Authorization = authorization;
    }
    ctx.logger.debug(`${method} ${url}`);
    try {
      res = await ctx.fetch(url, {
        method,
        headers: h,
        ...(body !== undefined && method !== "GET" && method !== "HEAD" ? { body } : {}),
        redirect: "manual",
      });
    } catch (e) {
      throw new NetworkError(
        `Cannot reach ${hostOf(url)}: ${(e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message}.`,
        {
          cause: e,
          hint: "Check the URL and the network (HTTPS_PROXY, NODE_EXTRA_CA_CERTS).",
        },
      );
    }
    ctx.logger.debug(`${method} ${url} → ${res.status}`);
    const location = res.headers.get("location");
    if (res.status >= 300 && res.status < 400 && location && hop < MAX_REDIRECTS) {
      url = new URL(location, url).toString();
      await res.body?.cancel();
      continue;
    }
    break;
  }
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
