/**
 * The profile: accounts, tenants and subscriptions, in the schema of the Azure CLI's
 * `azureProfile.json` (reference §1.2), without its byte-order mark. No secrets ever.
 */

export interface ProfileUser {
  /** UPN, service principal client id, or `systemAssignedIdentity` / `userAssignedIdentity`. */
  name: string;
  type: "user" | "servicePrincipal";
  /** Managed identity: `MSI`, `MSIClient-<id>`, `MSIObject-<id>`, `MSIResource-<id>`. */
  assignedIdentityInfo?: string;
}

export interface SubscriptionEntry {
  /** Subscription GUID; for tenant-level accounts the tenant id. */
  id: string;
  /** ARM displayName, or `N/A(tenant level account)`. */
  name: string;
  state: string;
  user: ProfileUser;
  isDefault: boolean;
  /** The tenant whose token listed the subscription; tokens for it are asked there. */
  tenantId: string;
  /** Cloud name, e.g. `AzureCloud`. */
  environmentName: string;
  homeTenantId?: string;
  tenantDefaultDomain?: string;
  tenantDisplayName?: string;
  managedByTenants?: { tenantId: string }[] | null;
}

export interface Profile {
  subscriptions: SubscriptionEntry[];
  installationId?: string;
}

export const TENANT_LEVEL_ACCOUNT_NAME = "N/A(tenant level account)";

export function emptyProfile(): Profile {
  return { subscriptions: [] };
}
