import type { CommandRun } from "../../command.js";
import { AzkeepError } from "../../../core/errors.js";

export const run: CommandRun<{ name?: string }> = async (flags, io) => {
  const [{ loadCloudSettings }, { findCloud, activeCloudName, cloudView }] = await Promise.all([
    import("../../../core/profile/cloud-settings.js"),
    import("../../../core/clouds.js"),
  ]);
  const settings = await loadCloudSettings(io.ctx);
  const active = activeCloudName(settings);
  const name = flags.name ?? active;
  const cloud = findCloud(settings, name);
  if (!cloud) {
    throw new AzkeepError("not_found", `The cloud '${name}' is not registered.`, {
      hint: "Run `azkeep cloud list` to see the registered clouds.",
    });
  }
  return { value: cloudView(cloud, cloud.name === active) };
};
