import type { CommandRun } from "../../command.js";
import { UsageError } from "../../../core/errors.js";
import { openAccounts } from "./common.js";

export const run: CommandRun<{ subscription?: string; name?: string; username?: string }> = async (
  flags,
  io,
) => {
  const subscription = flags.subscription ?? flags.name;
  if (!subscription) {
    throw new UsageError("the following arguments are required: --subscription/-s", {
      hint: "Run `azkeep account set --subscription <id or name>`.",
    });
  }
  const { store, activeCloud } = await openAccounts(io.ctx);
  const { setAccount } = await import("../../../core/profile/ops.js");
  await setAccount(store, {
    subscription,
    activeCloud,
    ...(flags.username ? { username: flags.username } : {}),
  });
  return {};
};
