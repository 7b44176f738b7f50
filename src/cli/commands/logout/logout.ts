import type { CommandRun } from "../../command.js";
import { openAccounts } from "../account/common.js";

export const run: CommandRun<{ username?: string }> = async (flags, io) => {
  // Through the agent when it runs (agent-only mode: only then); it writes the sealed store.
  const { withAgent } = await import("../../../agent/attach.js");
  const via = await withAgent(io.ctx, (a) =>
    a.write({ kind: "signout", ...(flags.username ? { usernames: [flags.username] } : {}) }),
  );
  if (via.via === "agent") return {};
  const { store, activeCloud } = await openAccounts(io.ctx);
  const { logout } = await import("../../../core/profile/ops.js");
  await logout(io.ctx, store, { activeCloud, ...(flags.username ? { username: flags.username } : {}) });
  return {};
};
