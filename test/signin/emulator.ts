/** The emulator on its plain HTTP port as a custom cloud, for in-process sign-in tests. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Cloud } from "../../src/core/clouds.js";
import { startEmulator, type Emulator, type EmulatorOptions } from "../../src/emulator/index.js";

export const ALICE = { upn: "alice@contoso.onmicrosoft.com", password: "alice-Passw0rd!" };
export const BOB = { upn: "bob@fabrikam.onmicrosoft.com", password: "bob-Passw0rd!" };
export const CONTOSO = "11111111-1111-1111-1111-111111111111";
export const FABRIKAM = "22222222-2222-2222-2222-222222222222";
export const WOODGROVE = "33333333-3333-3333-3333-333333333333";
export const TAILSPIN = "44444444-4444-4444-4444-444444444444";
export const DEV_SUB = "c0ffee00-0000-4000-8000-000000000001";
export const PROD_SUB = "c0ffee00-0000-4000-8000-000000000002";
export const LEGACY_SUB = "c0ffee00-0000-4000-8000-000000000003";
export const FABRIKAM_SUB = "c0ffee00-0000-4000-8000-000000000004";
export const WOODGROVE_SUB = "c0ffee00-0000-4000-8000-000000000005";
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

export function emulatorCloud(emu: Emulator, name = "Emulator"): Cloud {
  return {
    name,
    endpoints: {
      activeDirectory: emu.urls.http,
      resourceManager: `${emu.urls.http}/`,
      activeDirectoryResourceId: "https://management.core.windows.net/",
      microsoftGraphResourceId: "https://graph.microsoft.com/",
    },
    suffixes: {},
    profile: "latest",
    builtin: false,
  };
}

/** An emulator with its own data folder, removed on close. */
export async function emulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const dir = mkdtempSync(join(tmpdir(), "azkeep-signin-emu-"));
  const emu = await startEmulator({ https: false, dataDir: dir, ...options });
  const close = emu.close.bind(emu);
  const closeAll = async () => {
    await close();
    rmSync(dir, { recursive: true, force: true });
  };
  return Object.assign(emu, { close: closeAll, [Symbol.asyncDispose]: closeAll });
}
