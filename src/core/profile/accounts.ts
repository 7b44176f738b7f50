/**
 * The profile's rules, as az applies them (reference §1.2, §2.2–2.3), with one deliberate
 * change: entries are keyed by (subscription id, identity, cloud), not by subscription id alone.
 *
 * The side-by-side rule: a sign-in replaces only the entries of the same identity (user name
 * and type, case-insensitive) in the same cloud. Another identity's entries stay, even for the
 * same subscription, so signing in a service principal no longer erases a user's sign-in (az
 * silently does). The newest sign-in's entries come first, and when a subscription is named
 * that several identities can reach, the default identity wins, then the newest.
 */
import { AzkeepError } from "../errors.js";
import {
  TENANT_LEVEL_ACCOUNT_NAME,
  type Profile,
  type ProfileUser,
  type SubscriptionEntry,
} from "./types.js";

export function sameUser(a: ProfileUser, b: ProfileUser): boolean {
  return a.type === b.type && a.name.toLowerCase() === b.name.toLowerCase();
}

/**
 * Saves a sign-in's entries: drops the identity's old entries in that cloud, puts the new ones
 * first, and picks the default subscription as az does: the previous default if the new
 * sign-in still reaches it, else the first `Enabled`, else the first. One default in all.
 */
export function mergeSignIn(
  profile: Profile,
  cloud: string,
  user: ProfileUser,
  entries: SubscriptionEntry[],
): SubscriptionEntry[] {
  const inCloud = (e: SubscriptionEntry) => e.environmentName === cloud;
  const previousDefault = profile.subscriptions.find((e) => inCloud(e) && e.isDefault);
  const kept = profile.subscriptions.filter((e) => !(inCloud(e) && sameUser(e.user, user)));
  const added = entries.map((e) => ({ ...e, isDefault: false }));
  // az: the previous default stays if the new sign-in reaches it, else the new first Enabled.
  let chosen = previousDefault ? added.find((e) => e.id === previousDefault.id) : undefined;
  chosen ??= added.find((e) => e.state === "Enabled") ?? added[0];
  // az: exactly one default across all clouds after a sign-in.
  for (const e of kept) e.isDefault = false;
  if (chosen) chosen.isDefault = true;
  profile.subscriptions = [...added, ...kept];
  return added;
}

/** az's output shape for `login` and `account list`: `environmentName` renamed to `cloudName`. */
export function withCloudName(e: SubscriptionEntry): Record<string, unknown> {
  const { environmentName, ...rest } = e;
  return { cloudName: environmentName, ...rest };
}

export function defaultEntry(profile: Profile, cloud: string): SubscriptionEntry | undefined {
  return profile.subscriptions.find((e) => e.environmentName === cloud && e.isDefault);
}

/**
 * Finds a subscription by id or name, case-insensitively, in `cloud` (az's lookup). When
 * several identities reach it, `username` picks one; else the default identity, else the newest.
 */
export function findSubscription(
  profile: Profile,
  cloud: string,
  idOrName: string,
  username?: string,
): SubscriptionEntry {
  const key = idOrName.toLowerCase();
  const inCloud = profile.subscriptions.filter((e) => e.environmentName === cloud);
  let matches = inCloud.filter((e) => e.id.toLowerCase() === key);
  if (matches.length === 0) {
    matches = inCloud.filter((e) => e.name.toLowerCase() === key && e.name !== TENANT_LEVEL_ACCOUNT_NAME);
    const ids = new Set(matches.map((e) => e.id));
    if (ids.size > 1) {
      throw new AzkeepError(
        "usage",
        `Multiple subscriptions with the name '${idOrName}' found. Specify the subscription ID.`,
        {
          hint: "Run `azkeep account list -o table` to see the IDs.",
        },
      );
    }
  }
  if (username) matches = matches.filter((e) => e.user.name.toLowerCase() === username.toLowerCase());
  const current = defaultEntry(profile, cloud);
  const pick = (current && matches.find((e) => sameUser(e.user, current.user))) ?? matches[0];
  if (!pick) {
    throw new AzkeepError(
      "not_found",
      `Subscription '${idOrName}' not found. Check the spelling and casing and try again.`,
      {
        hint: `Run \`azkeep account list --all\` to see the subscriptions you can use in cloud '${cloud}'${username ? ` as ${username}` : ""}.`,
      },
    );
  }
  return pick;
}

/** Makes `entry` the one default (az `account set`). */
export function setDefault(profile: Profile, entry: SubscriptionEntry): void {
  for (const e of profile.subscriptions) e.isDefault = false;
  const target = profile.subscriptions.find(
    (e) => e.id === entry.id && e.environmentName === entry.environmentName && sameUser(e.user, entry.user),
  );
  if (target) target.isDefault = true;
}

/** Removes every entry whose user name matches, case-insensitively (az logout). */
export function removeUser(profile: Profile, username: string): SubscriptionEntry[] {
  const removed = profile.subscriptions.filter((e) => e.user.name.toLowerCase() === username.toLowerCase());
  profile.subscriptions = profile.subscriptions.filter((e) => !removed.includes(e));
  return removed;
}
