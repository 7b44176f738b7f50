/**
 * Which account a token request is for: the subscription named (by id or name, either case),
 * else the default one. Messages follow the Azure CLI's (reference §2.3), with `azkeep`.
 */
import { AuthenticationRequiredError, AzkeepError } from "../errors.js";
import type { Profile, SubscriptionEntry } from "../profile/types.js";

/** Callers (JS 4.14 execFile) may pass `"My Sub"` with literal quotes; az-shell users too. */
export function unquote(value: string): string {
  const v = value.trim();
  if (v.length >= 2 && ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'"))))
    return v.slice(1, -1);
  return v;
}

export function findSubscription(profile: Profile, subscription: string | undefined): SubscriptionEntry {
  const subs = profile.subscriptions;
  if (subs.length === 0) {
    throw new AuthenticationRequiredError("Please run 'azkeep login' to setup account.", {
      hint: "Run `azkeep login` to sign in.",
    });
  }
  if (subscription === undefined || subscription === "") {
    const def = subs.find((s) => s.isDefault);
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
  const wanted = unquote(subscription).toLowerCase();
  const byId = subs.filter((s) => s.id.toLowerCase() === wanted);
  if (byId.length > 0) return byId.find((s) => s.isDefault) ?? byId[0]!;
  const byName = subs.filter((s) => s.name.toLowerCase() === wanted);
  if (byName.length === 1) return byName[0]!;
  if (byName.length > 1) {
    throw new AzkeepError(
      "not_found",
      `Multiple subscriptions with the name '${unquote(subscription)}' found. Specify the subscription ID.`,
      {
        hint: "Run `azkeep account list -o table` to see the subscription ids.",
      },
    );
  }
  throw new AzkeepError(
    "not_found",
    `Subscription '${unquote(subscription)}' not found. Check the spelling and casing and try again.`,
    { hint: "Run `azkeep account list -o table` to see the subscriptions you can use." },
  );
}

/** What kind of identity an account is (managed identities are stored as service principals). */
export type IdentityKind = "user" | "servicePrincipal" | "managedIdentity";

export function identityKind(sub: SubscriptionEntry): IdentityKind {
  if (sub.user.type === "user") return "user";
  if (
    sub.user.assignedIdentityInfo !== undefined ||
    sub.user.name === "systemAssignedIdentity" ||
    sub.user.name === "userAssignedIdentity"
  )
    return "managedIdentity";
  return "servicePrincipal";
}

/** Managed identity selector from `assignedIdentityInfo` (`MSIClient-<id>`, …). */
export interface ManagedIdentitySelector {
  clientId?: string;
  objectId?: string;
  resourceId?: string;
}

export function managedIdentitySelector(sub: SubscriptionEntry): ManagedIdentitySelector {
  const info = sub.user.assignedIdentityInfo ?? "";
  const m = /^MSI(Client|Object|Resource)-(.+)$/.exec(info);
  if (!m) return {};
  const value = m[2]!;
  if (m[1] === "Client") return { clientId: value };
  if (m[1] === "Object") return { objectId: value };
  return { resourceId: value };
}
