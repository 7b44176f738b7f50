import type { CommandRun } from "../../command.js";
import { openAccounts } from "./common.js";

export const run: CommandRun<{ subscription?: string; name?: string }> = async (flags, io) => {
  const { store, activeCloud } = await openAccounts(io.ctx);
  const { showAccount } = await import("../../../core/profile/ops.js");
  const profile = await store.readProfile();
  const subscription = flags.subscription ?? flags.name;
  return {
    value: showAccount(profile.subscriptions, { activeCloud, ...(subscription ? { subscription } : {}) }),
  };
};
