/**
 * The token policy's real dependencies: the sealed store and the cloud registry. Kept apart
 * from `policy.ts` so unit tests build theirs from fakes, and imported lazily by the commands.
 */
import { BUILTIN_CLOUDS, activeCloudName, type Cloud } from "../clouds.js";
import type { Context } from "../context.js";
import { cloudByName, loadCloudSettings, resolveActiveCloud } from "../profile/cloud-settings.js";
import { openStore } from "../store/index.js";
import type { PolicyDeps } from "./policy.js";

/** Built-in clouds answer without touching the disk; custom ones come from `config.json`. */
async function resolveCloud(ctx: Context, name: string): Promise<Cloud> {
  const builtin = BUILTIN_CLOUDS.find((c) => c.name.toLowerCase() === name.toLowerCase());
  if (builtin) return builtin;
  return cloudByName(ctx, name);
}

export async function openTokenDeps(
  ctx: Context,
  signal?: AbortSignal,
): Promise<PolicyDeps & { activeCloud: () => Promise<string> }> {
  const store = await openStore(ctx);
  return {
    store,
    resolveCloud: (name) => resolveCloud(ctx, name),
    // config.json: a small file the store reads anyway (it names the store's key).
    activeCloud: async () => activeCloudName(await loadCloudSettings(ctx)),
    ...(signal ? { signal } : {}),
  };
}

/** `rest`'s cloud: the active cloud (as az), whose default account `rest` uses. */
export async function cloudForRest(ctx: Context): Promise<Cloud> {
  return resolveActiveCloud(ctx, await loadCloudSettings(ctx));
}
