/**
 * The token policy's real dependencies: the sealed store and the cloud registry. Kept apart
 * from `policy.ts` so unit tests build theirs from fakes, and imported lazily by the commands.
 */
import { BUILTIN_CLOUDS, activeCloudName, type Cloud } from "../clouds.js";
import type { Context } from "../context.js";
import { cloudByName, loadCloudSettings, resolveActiveCloud } from "../profile/cloud-settings.js";
import { openStore } from "../store/index.js";
import type { Store } from "../store/types.js";
import type { PolicyDeps } from "./policy.js";

/** Built-in clouds answer without touching the disk; custom ones come from `config.json`. */
async function resolveCloud(ctx: Context, name: string, store: Store): Promise<Cloud> {
  const builtin = BUILTIN_CLOUDS.find((c) => c.name.toLowerCase() === name.toLowerCase());
  if (builtin) return builtin;
  return cloudByName(ctx, name, store);
}

export async function openTokenDeps(
  ctx: Context,
  signal?: AbortSignal,
  /** A store the caller already holds (the agent's); default: `openStore(ctx)`. */
  held?: Store,
): Promise<PolicyDeps & { activeCloud: () => Promise<string> }> {
  const store = held ?? (await openStore(ctx));
  return {
    store,
    resolveCloud: (name) => resolveCloud(ctx, name, store),
    // config.json, checked against the seal: one read shared with the profile's and secrets'.
    activeCloud: async () => activeCloudName(await loadCloudSettings(ctx, store)),
    ...(signal ? { signal } : {}),
  };
}

/** `rest`'s cloud: the active cloud (as az), whose default account `rest` uses. */
export async function cloudForRest(ctx: Context, store?: Store): Promise<Cloud> {
  return resolveActiveCloud(ctx, await loadCloudSettings(ctx, store));
}
