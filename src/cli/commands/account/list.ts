import type { CommandRun } from "../../command.js";
import { accountTable, openAccounts } from "./common.js";

export const run: CommandRun<{ all?: boolean; refresh?: boolean }> = async (flags, io) => {
  const { store, activeCloud } = await openAccounts(io.ctx);
  if (flags.refresh) {
    const [{ refreshAccounts }, { loadCloudSettings, resolveActiveCloud }] = await Promise.all([
      import("../../../core/signin.js"),
      import("../../../core/profile/cloud-settings.js"),
    ]);
    const cloud = resolveActiveCloud(io.ctx, await loadCloudSettings(io.ctx, store));
    await refreshAccounts(io.ctx, store, cloud, io.signal);
  }
  const { listAccounts } = await import("../../../core/profile/ops.js");
  const profile = await store.readProfile();
  return {
    value: listAccounts(io.ctx, profile.subscriptions, { activeCloud, ...(flags.all ? { all: true } : {}) }),
    table: accountTable,
  };
};
