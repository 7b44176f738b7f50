/** The emulator on its plain HTTP port as a custom cloud, for in-process sign-in tests. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Cloud } from "../../src/core/clouds.js";
import { startEmulator, type Emulator, type EmulatorOptions } from "../../src/emulator/index.js";

export {
  ALICE,
  BOB,
  CONTOSO,
  DEV_SUB,
  FABRIKAM,
  FABRIKAM_SUB,
  LEGACY_SUB,
  MI_SYSTEM,
  MI_USER,
  NATIVE_APP,
  PROD_SUB,
  SP,
  TAILSPIN,
  WOODGROVE,
  WOODGROVE_SUB,
} from "../helpers/seed.js";

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
