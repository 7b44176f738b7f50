import type { CommandRun } from "../../command.js";
import { openAccounts } from "../account/common.js";

export const run: CommandRun<{ username?: string }> = async (flags, io) => {
  const { store, activeCloud } = await openAccounts(io.ctx);
  const { logout } = await import("../../../core/profile/ops.js");
  await logout(io.ctx, store, { activeCloud, ...(flags.username ? { username: flags.username } : {}) });
  return {};
};
