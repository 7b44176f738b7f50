// `npm run demo`: azkeep against its bundled emulator, with nothing from your machine touched.
// Starts a local Entra ID + ARM emulator (HTTPS and a CONNECT proxy for the real Azure host
// names), signs alice in with a device code (approved automatically, as if she typed it on the
// device login page), lists her subscriptions and gets a token, all in a throwaway folder that is
// removed at the end. The store uses the `insecure-file` key provider here so no OS keyring is
// needed; a real sign-in uses the keyring.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const REPO = fileURLToPath(new URL("../", import.meta.url));
const BIN = join(REPO, "bin", "azkeep.js");
const ALICE = "alice@contoso.onmicrosoft.com";

const { startEmulator } = await import(join(REPO, "dist", "lib", "emulator.js"));
const root = mkdtempSync(join(tmpdir(), "azkeep-demo-"));
const emu = await startEmulator({ dataDir: join(root, "emulator"), lifetimes: { deviceCodeInterval: 1 } });
const env = {
  ...process.env,
  ...emu.env,
  HOME: root,
  AZKEEP_CONFIG_DIR: join(root, "azkeep"),
  XDG_RUNTIME_DIR: join(root, "run"),
  AZKEEP_STORE_PROVIDER: "insecure-file",
};

function azkeep(args) {
  console.log(`\n$ azkeep ${args.join(" ")}`);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ["ignore", "inherit", "inherit"] });
    child.on("close", (code) => resolve(code ?? 1));
  });
}

let failed = false;
try {
  console.log(`The emulator serves Entra ID and Azure Resource Manager at ${emu.urls.http},`);
  console.log(`and login.microsoftonline.com / management.azure.com through its proxy ${emu.urls.proxy}.`);
  const approve = (async () => {
    const code = await emu.control.waitForDeviceCode({ timeoutMs: 60_000 });
    await new Promise((r) => setTimeout(r, 1500));
    console.log(`\n(demo: ${ALICE} enters ${code.userCode} on the device login page and signs in)`);
    await emu.control.approveDeviceCode(code.userCode, ALICE, { mfa: false });
  })();
  const steps = [
    [
      "login",
      "--use-device-code",
      "-o",
      "table",
      "--query",
      "[].{Name:name, SubscriptionId:id, Tenant:tenantId}",
    ],
    ["account", "list", "-o", "table"],
    ["account", "show", "--query", "{subscription:name, user:user.name, cloud:environmentName}"],
    ["account", "get-access-token", "--query", "{tokenType:tokenType, expiresOn:expiresOn, tenant:tenant}"],
    ["account", "get-access-token", "--query", "{tokenType:tokenType, expiresOn:expiresOn}", "-o", "tsv"],
  ];
  for (const s of steps) {
    const code = await azkeep(s);
    if (code !== 0) {
      failed = true;
      break;
    }
  }
  await approve.catch(() => {});
  console.log("\nEverything azkeep kept is sealed in tokens.sealed; nothing is left when this demo ends.");
} finally {
  await emu.close();
  rmSync(root, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
