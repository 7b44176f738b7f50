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
  // Through the agent when it runs (agent-only mode: only then); it writes the sealed store.
  const { withAgent } = await import("../../../agent/attach.js");
  const via = await withAgent(io.ctx, (a) =>
    a.write({ kind: "set-default", subscription, ...(flags.username ? { username: flags.username } : {}) }),
  );
  if (via.via === "agent") return {};
  const { store, activeCloud } = await openAccounts(io.ctx);
  const { setAccount } = await import("../../../core/profile/ops.js");
  await setAccount(store, {
    subscription,
    activeCloud,
    ...(flags.username ? { username: flags.username } : {}),
  });
  return {};
};
