/**
 * Where the active cloud and the custom clouds are kept: the `cloud` section of azkeep's
 * `config.json` (non-secret). It steers where credentials go, so the sealed store guards it:
 * reads are checked against the seal's mirror (an edit made outside azkeep is
 * `store_tampered`), and changes re-seal the mirror (`Store.readSettings` / `updateSettings`).
 */
import { activeCloudName, findCloud, type Cloud, type CloudSettings } from "../clouds.js";
import type { Context } from "../context.js";
import { AzkeepError } from "../errors.js";
import { readConfig, updateConfig } from "../config.js";
import { openStore } from "../store/index.js";
import type { Store } from "../store/types.js";

type WithCloud = { cloud?: CloudSettings };

/** The cloud settings, checked against the seal. Pass the command's store to open it once. */
export async function loadCloudSettings(ctx: Context, store?: Store): Promise<CloudSettings> {
  const s = store ?? (await openStore(ctx));
  const config = (s.readSettings ? await s.readSettings() : await readConfig(ctx)) as WithCloud;
  return config.cloud ?? {};
}

export async function updateCloudSettings<T>(
  ctx: Context,
  change: (s: CloudSettings) => T,
  store?: Store,
): Promise<T> {
  const s = store ?? (await openStore(ctx));
  const apply = (config: Record<string, unknown>): T => {
    const c = config as WithCloud;
    c.cloud ??= {};
    return change(c.cloud);
  };
  if (s.updateSettings) return s.updateSettings(apply);
  return updateConfig(ctx, (config) => apply(config as unknown as Record<string, unknown>));
}

/** The active cloud; an unknown name (a removed custom cloud) is an error with the fix. */
export function resolveActiveCloud(_ctx: Context, settings: CloudSettings): Cloud {
  const name = activeCloudName(settings);
  const cloud = findCloud(settings, name);
  if (!cloud) {
    throw new AzkeepError("not_found", `The active cloud '${name}' is not registered.`, {
      hint: "Run `azkeep cloud set --name AzureCloud` or register it again with `azkeep cloud register`.",
    });
  }
  return cloud;
}

/** Resolves any cloud by name (for the token policy's `resolveCloud`). */
export async function cloudByName(ctx: Context, name: string, store?: Store): Promise<Cloud> {
  const cloud = findCloud(await loadCloudSettings(ctx, store), name);
  if (!cloud) {
    throw new AzkeepError("not_found", `The cloud '${name}' is not registered.`, {
      hint: "Run `azkeep cloud list` to see the registered clouds.",
    });
  }
  return cloud;
}
