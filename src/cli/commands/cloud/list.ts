import type { CommandRun } from "../../command.js";

export const run: CommandRun<Record<string, never>> = async (_flags, io) => {
  const [{ loadCloudSettings }, { allClouds, activeCloudName, cloudView }] = await Promise.all([
    import("../../../core/profile/cloud-settings.js"),
    import("../../../core/clouds.js"),
  ]);
  const settings = await loadCloudSettings(io.ctx);
  const active = activeCloudName(settings);
  return {
    value: allClouds(settings).map((c) => cloudView(c, c.name === active)),
    table: (v) =>
      (v as Record<string, unknown>[]).map((c) => ({
        IsActive: c.isActive,
        Name: c.name,
        Profile: c.profile,
      })),
  };
};
