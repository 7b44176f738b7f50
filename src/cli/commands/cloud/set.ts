import type { CommandRun } from "../../command.js";

export const run: CommandRun<{ name: string }> = async (flags, io) => {
  const [{ switchCloud }, { openStore }] = await Promise.all([
    import("../../../core/profile/cloud-ops.js"),
    import("../../../core/store/index.js"),
  ]);
  await switchCloud(io.ctx, await openStore(io.ctx), flags.name);
  return {};
};
