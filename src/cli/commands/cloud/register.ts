import type { CommandRun } from "../../command.js";

export const run: CommandRun<Record<string, string | undefined>> = async (flags, io) => {
  const { registerCloud, cloudFromFlags } = await import("../../../core/profile/cloud-ops.js");
  const cloud = await cloudFromFlags(io.ctx, flags);
  await registerCloud(io.ctx, cloud);
  return {};
};
