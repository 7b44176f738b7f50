/**
 * Where the active cloud and the custom clouds are kept: the `cloud` section of azkeep's
 * `config.json` (non-secret; read and changed through `core/config.ts`, under its lock).
 */
import { activeCloudName, findCloud, type Cloud, type CloudSettings } from "../clouds.js";
import type { Context } from "../context.js";
import { AzkeepError } from "../errors.js";
import { readConfig, updateConfig } from "../config.js";

type WithCloud = { cloud?: CloudSettings };

export async function loadCloudSettings(ctx: Context): Promise<CloudSettings> {
  const config = (await readConfig(ctx)) as WithCloud;
  return config.cloud ?? {};
}

export async function updateCloudSettings<T>(ctx: Context, change: (s: CloudSettings) => T): Promise<T> {
  return updateConfig(ctx, (config) => {
    const c = config as WithCloud;
    c.cloud ??= {};
    return change(c.cloud);
  });
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
export async function cloudByName(ctx: Context, name: string): Promise<Cloud> {
  const cloud = findCloud(await loadCloudSettings(ctx), name);
  if (!cloud) {
    throw new AzkeepError("not_found", `The cloud '${name}' is not registered.`, {
      hint: "Run `azkeep cloud list` to see the registered clouds.",
    });
  }
  return cloud;
}
