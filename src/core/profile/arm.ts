/**
 * Azure Resource Manager discovery after sign-in: `GET /tenants` and `GET /subscriptions`
 * (api-version 2022-12-01, which adds `defaultDomain` / `displayName` to tenants), following
 * `nextLink`.
 */
import type { Cloud } from "../clouds.js";
import type { Context } from "../context.js";
import { AzkeepError, NetworkError } from "../errors.js";
import { parseRetryAfter } from "../flows/http.js";
import { cannotReach, describeFetchFailure } from "../net.js";

export const ARM_API_VERSION = "2022-12-01";

export interface ArmTenant {
  tenantId: string;
  displayName?: string;
  defaultDomain?: string;
}

export interface ArmSubscription {
  subscriptionId: string;
  displayName: string;
  state: string;
  tenantId?: string;
  managedByTenants?: { tenantId: string }[];
}

function armUrl(cloud: Cloud, path: string): string {
  const base = cloud.endpoints.resourceManager.replace(/\/+$/, "");
  return `${base}${path}?api-version=${ARM_API_VERSION}`;
}

async function armList(
  ctx: Context,
  url: string,
  accessToken: string,
  signal?: AbortSignal,
): Promise<unknown[]> {
  const items: unknown[] = [];
  let next: string | undefined = url;
  for (let page = 0; next && page < 100; page++) {
    ctx.logger.debug(`GET ${next}`);
    let res: Response;
    try {
      res = await armGet(ctx, next, accessToken, signal);
    } catch (e) {
      if (e instanceof AzkeepError) throw e;
      if ((e as Error).name === "AbortError") throw e;
      const { proxy } = describeFetchFailure(e);
      throw new NetworkError(cannotReach(`Azure Resource Manager (${new URL(next).host})`, e), {
        cause: e,
        hint: proxy
          ? `The proxy ${proxy} (HTTPS_PROXY / HTTP_PROXY) did not let the request through: check the proxy, its credentials, or NO_PROXY.`
          : "Check the network connection, HTTPS_PROXY / NO_PROXY, and the cloud's endpoints (`azkeep cloud show`).",
      });
    }
    ctx.logger.debug(`GET ${next} → ${res.status}`);
    const text = await res.text().catch(() => "");
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    if (!res.ok) {
      const retryAfterMs = parseRetryAfter(res.headers.get("retry-after"), ctx.clock.now());
      const msg = (body as { error?: { message?: string } } | undefined)?.error?.message;
      throw new NetworkError(`Azure Resource Manager answered HTTP ${res.status}${msg ? `: ${msg}` : ""}.`, {
        status: res.status,
        ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
      });
    }
    const value = (body as { value?: unknown } | undefined)?.value;
    if (!Array.isArray(value)) {
      throw new AzkeepError(
        "network",
        `Azure Resource Manager answered ${new URL(next).pathname} with something that is not a list.`,
        {
          hint: "Check the cloud's resource manager endpoint (`azkeep cloud show`).",
        },
      );
    }
    items.push(...(value as unknown[]));
    const nl = (body as { nextLink?: unknown }).nextLink;
    next = typeof nl === "string" && nl ? sameEndpoint(url, nl) : undefined;
  }
  return items;
}

/**
 * One GET with the ARM token. Redirects are followed only on the same endpoint (scheme, host,
 * port); a redirect elsewhere is refused before anything is sent there: the token must not
 * follow it, and ARM discovery has no business off its endpoint.
 */
async function armGet(
  ctx: Context,
  url: string,
  accessToken: string,
  signal?: AbortSignal,
): Promise<Response> {
  let current = url;
  for (let hop = 0; ; hop++) {
    const res = await ctx.fetch(current, {
      headers: {
        authorization: `Bearer ${accessToken}`,
        accept: "application/json",
        "x-ms-client-request-id": ctx.random.uuid(),
      },
      signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(60_000)]) : AbortSignal.timeout(60_000),
      redirect: "manual",
    });
    const location = res.headers.get("location");
    if (![301, 302, 303, 307, 308].includes(res.status) || !location) return res;
    await res.body?.cancel().catch(() => {});
    const target = new URL(location, current);
    if (target.origin !== new URL(url).origin || hop >= 5) {
      throw new AzkeepError(
        "network",
        `Azure Resource Manager (${new URL(url).host}) redirected to ${target.protocol}//${target.host}; azkeep does not follow it with the token.`,
        {
          hint: "Check the cloud's resource manager endpoint (`azkeep cloud show`) and any proxy in between; then run the command again.",
        },
      );
    }
    ctx.logger.debug(`GET ${current} → ${res.status} ${target.toString()}`);
    current = target.toString();
  }
}

/**
 * A `nextLink` is followed only on the endpoint that issued the list (same scheme, host and
 * port): the request carries the ARM token. Threat: a server, or an edited endpoint, naming
 * another host in `nextLink` to collect the token.
 */
function sameEndpoint(first: string, nextLink: string): string {
  const base = new URL(first);
  let u: URL;
  try {
    u = new URL(nextLink, base);
  } catch {
    throw new AzkeepError("network", "Azure Resource Manager answered a nextLink that is not a URL.", {
      hint: "Check the cloud's resource manager endpoint (`azkeep cloud show`).",
    });
  }
  if (u.origin !== base.origin) {
    throw new AzkeepError(
      "network",
      `Azure Resource Manager (${base.host}) answered a nextLink on another endpoint (${u.protocol}//${u.host}); azkeep does not send the token there.`,
      {
        hint: "Check the cloud's resource manager endpoint (`azkeep cloud show`) and any proxy in between; then run the command again.",
      },
    );
  }
  return u.toString();
}

const str = (v: unknown): string | undefined => (typeof v === "string" && v ? v : undefined);

export async function listTenants(
  ctx: Context,
  cloud: Cloud,
  accessToken: string,
  signal?: AbortSignal,
): Promise<ArmTenant[]> {
  const raw = await armList(ctx, armUrl(cloud, "/tenants"), accessToken, signal);
  const out: ArmTenant[] = [];
  for (const t of raw as Record<string, unknown>[]) {
    const tenantId = str(t.tenantId);
    if (!tenantId) continue;
    const entry: ArmTenant = { tenantId };
    const dn = str(t.displayName);
    const dd = str(t.defaultDomain);
    if (dn) entry.displayName = dn;
    if (dd) entry.defaultDomain = dd;
    out.push(entry);
  }
  return out;
}

export async function listSubscriptions(
  ctx: Context,
  cloud: Cloud,
  accessToken: string,
  signal?: AbortSignal,
): Promise<ArmSubscription[]> {
  const raw = await armList(ctx, armUrl(cloud, "/subscriptions"), accessToken, signal);
  const out: ArmSubscription[] = [];
  for (const s of raw as Record<string, unknown>[]) {
    const id = str(s.subscriptionId) ?? str(s.id)?.split("/").pop();
    if (!id) continue;
    const entry: ArmSubscription = {
      subscriptionId: id,
      displayName: str(s.displayName) ?? id,
      state: str(s.state) ?? "Enabled",
    };
    const tid = str(s.tenantId);
    if (tid) entry.tenantId = tid;
    if (Array.isArray(s.managedByTenants)) {
      entry.managedByTenants = (s.managedByTenants as Record<string, unknown>[])
        .map((m) => str(m.tenantId))
        .filter((x): x is string => Boolean(x))
        .map((tenantId) => ({ tenantId }));
    }
    out.push(entry);
  }
  return out;
}
