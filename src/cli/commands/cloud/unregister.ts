import type { CommandRun } from "../../command.js";

export const run: CommandRun<{ name: string }> = async (flags, io) => {
  const { unregisterCloud } = await import("../../../core/profile/cloud-ops.js");
  await unregisterCloud(io.ctx, flags.name);
  return {};
};
