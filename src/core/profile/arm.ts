/**
 * Azure Resource Manager discovery after sign-in: `GET /tenants` and `GET /subscriptions`
 * (api-version 2022-12-01, which adds `defaultDomain` / `displayName` to tenants), following
 * `nextLink`.
 */
import type { Cloud } from "../clouds.js";
import type { Context } from "../context.js";
import { AzkeepError, NetworkError } from "../errors.js";
import { parseRetryAfter } from "../flows/http.js";

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
      res = await ctx.fetch(next, {
        headers: {
          authorization: `Bearer ${accessToken}`,
          accept: "application/json",
          "x-ms-client-request-id": ctx.random.uuid(),
        },
        signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(60_000)]) : AbortSignal.timeout(60_000),
      });
    } catch (e) {
      if ((e as Error).name === "AbortError") throw e;
      throw new NetworkError(`Cannot reach Azure Resource Manager (${new URL(next).host}).`, {
        cause: e,
        hint: "Check the network connection, HTTPS_PROXY / NO_PROXY, and the cloud's endpoints (`azkeep cloud show`).",
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
    next = typeof nl === "string" && nl ? nl : undefined;
  }
  return items;
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
