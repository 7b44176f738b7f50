/**
 * The emulator's default seed, as the tests use it (`src/emulator/seed.ts` `DEFAULT_SEED`):
 * tenants, people, applications, managed identities and subscriptions. Written out here rather
 * than imported, so a change to the seed shows up as failing tests.
 */

/** The Azure CLI's public client id (first-party, pre-consented everywhere). */
export const AZ_CLI_CLIENT_ID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";

export const CONTOSO = "11111111-1111-1111-1111-111111111111";
export const FABRIKAM = "22222222-2222-2222-2222-222222222222";
export const WOODGROVE = "33333333-3333-3333-3333-333333333333";
export const TAILSPIN = "44444444-4444-4444-4444-444444444444";

export const ALICE = {
  upn: "alice@contoso.onmicrosoft.com",
  password: "alice-Passw0rd!",
  oid: "aaaaaaaa-0000-4000-8000-000000000001",
};
export const BOB = { upn: "bob@fabrikam.onmicrosoft.com", password: "bob-Passw0rd!" };

/** A service principal of Contoso with a client secret (and the default certificate). */
export const SP = { clientId: "5e5e5e5e-0000-4000-8000-00000000c001", secret: "azkeep-ci-secret-value" };
/** A public client that is not pre-consented: the emulator shows its consent page. */
export const NATIVE_APP = "c0c0c0c0-0000-4000-8000-00000000a001";

export const MI_SYSTEM = "3a3a3a3a-0000-4000-8000-00000000d001";
export const MI_USER = {
  clientId: "3a3a3a3a-0000-4000-8000-00000000d002",
  objectId: "3a3a3a3a-0000-4000-8000-00000000d0b2",
  resourceId:
    "/subscriptions/c0ffee00-0000-4000-8000-000000000001/resourceGroups/rg-identity/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-azkeep",
};

export const DEV_SUB = "c0ffee00-0000-4000-8000-000000000001";
export const DEV_SUB_NAME = "Contoso Dev";
export const PROD_SUB = "c0ffee00-0000-4000-8000-000000000002";
export const LEGACY_SUB = "c0ffee00-0000-4000-8000-000000000003";
export const FABRIKAM_SUB = "c0ffee00-0000-4000-8000-000000000004";
export const WOODGROVE_SUB = "c0ffee00-0000-4000-8000-000000000005";
