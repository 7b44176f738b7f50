/** What the account commands share: the store and the active cloud, loaded lazily. */
import type { Context } from "../../../core/context.js";
import type { Store } from "../../../core/store/types.js";

export async function openAccounts(ctx: Context): Promise<{ store: Store; activeCloud: string }> {
  const [{ openStore }, { loadCloudSettings }, { activeCloudName }] = await Promise.all([
    import("../../../core/store/index.js"),
    import("../../../core/profile/cloud-settings.js"),
    import("../../../core/clouds.js"),
  ]);
  const store = await openStore(ctx);
  const settings = await loadCloudSettings(ctx, store);
  return { store, activeCloud: activeCloudName(settings) };
}

export { accountTable } from "../../output/account-table.js";
