/**
 * `get-access-token` with the Azure CLI's rules and output (reference §2.4, §5.1): the shape
 * Terraform, Pulumi, the Azure SDKs and scripts parse. Shared by `azkeep account
 * get-access-token` and the `az` shim.
 */
import type { ResourceType } from "../clouds.js";
import type { Context } from "../context.js";
import { UsageError } from "../errors.js";
import { acquireToken, type PolicyDeps } from "./policy.js";
import { checkSubscriptionOrTenant, toAzShape, type AzAccessToken } from "./az-shape.js";
import { formatExpiresOn } from "./time.js";

export { toAzShape, type AzAccessToken } from "./az-shape.js";

export interface GetAccessTokenOptions {
  resource?: string | undefined;
  resourceType?: ResourceType | undefined;
  /** v2 scopes (used as they are; `resource` is then ignored, as az does). */
  scope?: string[] | undefined;
  subscription?: string | undefined;
  tenant?: string | undefined;
  /** A claims challenge (JSON or base64 JSON) from a resource: skips the cache. */
  claimsChallenge?: string | undefined;
  /** Skip the cache and replace the cached token (`--force-refresh`, azkeep only). */
  forceRefresh?: boolean | undefined;
  /** A generic OpenID sign-in's issuer (`login --authority`): its token instead of Azure's. */
  authority?: string | undefined;
  /** With `authority`: which client's sign-in, when there are several. */
  clientId?: string | undefined;
}

export async function getAccessToken(
  ctx: Context,
  deps: PolicyDeps,
  options: GetAccessTokenOptions,
): Promise<AzAccessToken> {
  checkSubscriptionOrTenant(options.subscription, options.tenant);
  const scopes = (options.scope ?? []).flatMap((s) => s.split(/\s+/)).filter(Boolean);
  if (options.clientId && !options.authority)
    throw new UsageError("--client-id goes with --authority (a generic OpenID sign-in).", {
      hint: "Run `azkeep account get-access-token --authority ISSUER --client-id ID`, or leave out --client-id.",
    });
  if (options.authority) {
    const extra = (
      [
        ["--resource", options.resource],
        ["--resource-type", options.resourceType],
        ["--subscription", options.subscription],
        ["--tenant", options.tenant],
        ["--claims-challenge", options.claimsChallenge],
      ] as const
    ).find(([, v]) => v);
    if (extra) {
      throw new UsageError(`--authority cannot be combined with ${extra[0]}.`, {
        hint: "A generic OpenID sign-in has no Azure resources, subscriptions or tenants; give --scope for other scopes.",
      });
    }
    const { acquireOidcToken } = await import("./oidc-token.js");
    const t = await acquireOidcToken(ctx, deps.store, {
      issuer: options.authority,
      clientId: options.clientId,
      scopes,
      forceRefresh: options.forceRefresh,
      signal: deps.signal,
    });
    return {
      accessToken: t.accessToken,
      expiresOn: formatExpiresOn(t.expiresOn),
      expires_on: Math.floor(t.expiresOn),
      tenant: t.issuer,
      tokenType: t.tokenType,
    };
  }
  const r = await acquireToken(ctx, deps, {
    ...(scopes.length ? { scopes } : {}),
    ...(options.resource ? { resource: options.resource } : {}),
    ...(options.resourceType ? { resourceType: options.resourceType } : {}),
    ...(options.subscription ? { subscription: options.subscription } : {}),
    ...(options.tenant ? { tenant: options.tenant } : {}),
    ...(options.claimsChallenge ? { claims: options.claimsChallenge } : {}),
    ...(options.forceRefresh ? { forceRefresh: true } : {}),
  });
  return toAzShape(r, Boolean(options.tenant));
}
