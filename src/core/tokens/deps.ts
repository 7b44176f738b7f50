/**
 * The token policy's real dependencies: the sealed store and the cloud registry. Kept apart
 * from `policy.ts` so unit tests build theirs from fakes, and imported lazily by the commands.
 */
import { BUILTIN_CLOUDS, type Cloud } from "../clouds.js";
import type { Context } from "../context.js";
import { openStore } from "../store/index.js";
import type { PolicyDeps } from "./policy.js";

/** Built-in clouds answer without touching the disk; custom ones come from `clouds.json`. */
async function resolveCloud(ctx: Context, name: string): Promise<Cloud> {
  const builtin = BUILTIN_CLOUDS.find((c) => c.name.toLowerCase() === name.toLowerCase());
  if (builtin) return builtin;
  const { cloudByName } = await import("../profile/cloud-settings.js");
  return cloudByName(ctx, name);
}

export async function openTokenDeps(ctx: Context, signal?: AbortSignal): Promise<PolicyDeps> {
  const store = await openStore(ctx);
  return {
    store,
    resolveCloud: (name) => resolveCloud(ctx, name),
    ...(signal ? { signal } : {}),
  };
}

/** `rest`'s cloud: the default account's cloud, else the active cloud. */
export async function cloudForRest(ctx: Context, deps: PolicyDeps): Promise<Cloud> {
  const profile = await deps.store.readProfile();
  const def = profile.subscriptions.find((s) => s.isDefault);
  if (def) return resolveCloud(ctx, def.environmentName);
  const { loadCloudSettings, resolveActiveCloud } = await import("../profile/cloud-settings.js");
  return resolveActiveCloud(ctx, await loadCloudSettings(ctx));
}
