import type { CommandRun } from "../../command.js";
import { openAccounts } from "./common.js";

export const run: CommandRun<Record<string, never>> = async (_flags, io) => {
  const { store } = await openAccounts(io.ctx);
  const { clearAccounts } = await import("../../../core/profile/ops.js");
  await clearAccounts(store);
  return {};
};
