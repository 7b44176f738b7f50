/**
 * What kind of identity a token request's account is, and how a managed identity is named.
 * Which account a request is for is `findSubscription` (`../profile/accounts.ts`), the one
 * lookup `account show` uses too.
 */
import type { SubscriptionEntry } from "../profile/types.js";

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
