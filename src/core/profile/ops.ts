/**
 * `account list | show | set | clear` and `logout`, over the Store, with az's semantics and
 * messages (reference §2.2–2.3). Logout and clear remove tokens and secrets from the sealed
 * store, not only profile entries.
 */
import type { Context } from "../context.js";
import { AuthenticationRequiredError, AzkeepError } from "../errors.js";
import type { Store } from "../store/types.js";
import {
  defaultEntry,
  findSubscription,
  lookupSubscription,
  removeUser,
  setDefault,
  withCloudName,
} from "./accounts.js";
import type { SubscriptionEntry } from "./types.js";

export function listAccounts(
  ctx: Context,
  subscriptions: SubscriptionEntry[],
  opts: { all?: boolean; activeCloud: string },
): Record<string, unknown>[] {
  if (subscriptions.length === 0) {
    ctx.logger.warn('Please run "azkeep login" to access your accounts.');
    return [];
  }
  if (opts.all) return subscriptions.map(withCloudName);
  const inCloud = subscriptions.filter((e) => e.environmentName === opts.activeCloud);
  const enabled = inCloud.filter((e) => e.state === "Enabled");
  if (enabled.length < inCloud.length) {
    ctx.logger.warn(
      "A few accounts are skipped as they don't have 'Enabled' state. Use '--all' to display them.",
    );
  }
  return enabled.map(withCloudName);
}

/** az `account show`: the stored entry as it is (with `environmentName`). */
export function showAccount(
  subscriptions: SubscriptionEntry[],
  opts: { subscription?: string; activeCloud: string },
): SubscriptionEntry {
  return findSubscription({ subscriptions }, opts.activeCloud, opts.subscription);
}

/** az `account set -s X`: id or name, case-insensitive, in the active cloud. */
export async function setAccount(
  store: Store,
  opts: { subscription: string; activeCloud: string; username?: string },
): Promise<SubscriptionEntry> {
  return store.update((state) => {
    if (state.profile.subscriptions.length === 0) {
      throw new AuthenticationRequiredError("Please run 'azkeep login' to setup account.", {
        hint: "Run `azkeep login` to sign in.",
      });
    }
    const entry = lookupSubscription(state.profile, opts.activeCloud, opts.subscription, opts.username);
    if (!entry) {
      throw new AzkeepError(
        "not_found",
        `The subscription of '${opts.subscription.toLowerCase()}' doesn't exist in cloud '${opts.activeCloud}'.`,
        {
          hint: "Run `azkeep account list --all` to see your subscriptions, or `azkeep login` to sign in to another tenant.",
        },
      );
    }
    setDefault(state.profile, entry);
    return entry;
  });
}

/** az `account clear`: every account, token and secret goes. */
export async function clearAccounts(store: Store): Promise<void> {
  await store.update((state) => {
    state.profile.subscriptions = [];
    state.secrets.refreshTokens = [];
    state.secrets.accessTokens = [];
    state.secrets.servicePrincipals = [];
  });
}

/**
 * az `logout [--username X]`: X defaults to the current account's user. Removes the profile
 * entries (case-insensitive name), the user's refresh and access tokens, and a service
 * principal's stored credential and tokens. Does not choose a new default (as az).
 */
export async function logout(
  ctx: Context,
  store: Store,
  opts: { username?: string; activeCloud: string },
): Promise<{ username: string; removedAccounts: number; removedSecrets: number }> {
  return store.update((state) => {
    let username = opts.username;
    if (!username) {
      const current = defaultEntry(state.profile, opts.activeCloud);
      if (!current) {
        throw new AzkeepError("not_found", "There are no active accounts.", {
          hint: "Run `azkeep account list --all` to see who is signed in, then `azkeep logout --username <name>`.",
        });
      }
      username = current.user.name;
    }
    const key = username.toLowerCase();
    const removed = removeUser(state.profile, username);
    const infos = new Set(removed.map((e) => e.user.assignedIdentityInfo).filter(Boolean));
    const s = state.secrets;
    const before = s.refreshTokens.length + s.accessTokens.length + s.servicePrincipals.length;
    s.refreshTokens = s.refreshTokens.filter((r) => r.username.toLowerCase() !== key);
    s.servicePrincipals = s.servicePrincipals.filter((p) => p.clientId.toLowerCase() !== key);
    s.accessTokens = s.accessTokens.filter(
      (a) => a.principal.toLowerCase() !== key && !infos.has(a.principal),
    );
    const removedSecrets =
      before - (s.refreshTokens.length + s.accessTokens.length + s.servicePrincipals.length);
    if (removed.length === 0 && removedSecrets === 0) {
      ctx.logger.warn(`No account of '${username}' was found; nothing was removed.`);
    }
    return { username, removedAccounts: removed.length, removedSecrets };
  });
}
