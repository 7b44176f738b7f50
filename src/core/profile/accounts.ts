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
import { AuthenticationRequiredError, AzkeepError } from "../errors.js";
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

/** az's key order for a subscription (what `--query … -o table` shows, as az's dict order). */
const AZ_SUBSCRIPTION_ORDER = [
  "id",
  "name",
  "state",
  "user",
  "isDefault",
  "tenantId",
  "homeTenantId",
  "tenantDisplayName",
  "tenantDefaultDomain",
  "managedByTenants",
] as const;

/**
 * az's output shape for `login` and `account list`: `environmentName` renamed to `cloudName`
 * (last, as az appends it), the other keys in az's order.
 */
export function withCloudName(e: SubscriptionEntry): Record<string, unknown> {
  const { environmentName, ...rest } = e;
  const out: Record<string, unknown> = {};
  const r = rest as Record<string, unknown>;
  for (const k of AZ_SUBSCRIPTION_ORDER) if (k in r) out[k] = r[k];
  for (const k of Object.keys(r)) if (!(k in out)) out[k] = r[k];
  out.cloudName = environmentName;
  return out;
}

export function defaultEntry(profile: Profile, cloud: string): SubscriptionEntry | undefined {
  return profile.subscriptions.find((e) => e.environmentName === cloud && e.isDefault);
}

/** Callers (JS 4.14 execFile) may pass `"My Sub"` with literal quotes; az-shell users too. */
export function unquote(value: string): string {
  const v = value.trim();
  if (v.length >= 2 && ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'"))))
    return v.slice(1, -1);
  return v;
}

/**
 * The entry of subscription `idOrName` (id, else name; case-insensitive; literal quotes
 * dropped) in `cloud`, or undefined when none matches. When several identities reach it,
 * `username` picks one; else the default identity, else the newest sign-in. A name that
 * stands for several subscriptions is an error (az: "Specify the subscription ID").
 */
export function lookupSubscription(
  profile: Profile,
  cloud: string,
  idOrName: string,
  username?: string,
): SubscriptionEntry | undefined {
  const wanted = unquote(idOrName);
  const key = wanted.toLowerCase();
  const inCloud = profile.subscriptions.filter((e) => e.environmentName === cloud);
  let matches = inCloud.filter((e) => e.id.toLowerCase() === key);
  if (matches.length === 0) {
    matches = inCloud.filter((e) => e.name.toLowerCase() === key && e.name !== TENANT_LEVEL_ACCOUNT_NAME);
    if (new Set(matches.map((e) => e.id)).size > 1) {
      throw new AzkeepError(
        "not_found",
        `Multiple subscriptions with the name '${wanted}' found. Specify the subscription ID.`,
        { hint: "Run `azkeep account list -o table` to see the subscription IDs." },
      );
    }
  }
  if (username) matches = matches.filter((e) => e.user.name.toLowerCase() === username.toLowerCase());
  const current = defaultEntry(profile, cloud);
  return (current && matches.find((e) => sameUser(e.user, current.user))) ?? matches[0];
}

/**
 * The account a command is for, with az's messages (reference §2.3–2.4: `get_subscription`):
 * the subscription named, else the default one — in `cloud` only, the active cloud, as az does
 * for `account show` and `get-access-token` alike, so both (and the `az` shim) always agree on
 * which account is current. Kept free of heavy imports: get-access-token's hot path calls it.
 */
export function findSubscription(
  profile: Profile,
  cloud: string,
  subscription?: string,
  username?: string,
): SubscriptionEntry {
  if (!profile.subscriptions.some((e) => e.environmentName === cloud)) {
    const elsewhere = profile.subscriptions.length > 0;
    throw new AuthenticationRequiredError("Please run 'azkeep login' to setup account.", {
      hint: elsewhere
        ? `Run \`azkeep login\` to sign in to cloud '${cloud}', or \`azkeep cloud set --name <cloud>\` to use the accounts of another cloud.`
        : "Run `azkeep login` to sign in.",
    });
  }
  if (subscription === undefined || subscription === "") {
    const def = defaultEntry(profile, cloud);
    if (!def) {
      throw new AzkeepError(
        "not_found",
        "No subscription found. Run 'azkeep account set' to select a subscription.",
        {
          hint: "Run `azkeep account list` to see your subscriptions, then `azkeep account set --subscription <id>`.",
        },
      );
    }
    return def;
  }
  const pick = lookupSubscription(profile, cloud, subscription, username);
  if (!pick) {
    throw new AzkeepError(
      "not_found",
      `Subscription '${unquote(subscription)}' not found. Check the spelling and casing and try again.`,
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
