// `npm run demo`: the whole azkeep story against its bundled emulator, with nothing from your
// machine touched. It starts a local Entra ID + ARM emulator (HTTPS and a CONNECT proxy for the
// real Azure host names, so azkeep talks to "login.microsoftonline.com" exactly as in Azure),
// then, in a throwaway HOME removed at the end:
//   1. signs alice in with a device code (approved automatically, as if she typed the code on
//      the device login page), 2. lists her subscriptions, 3. gets a token as scripts do,
//   4. lists resource groups with `azkeep rest` (no token pasted into curl), 5. decodes the token
//   locally (piped, never on a command line), 6. shows with `azkeep doctor` and a search of the
//   config folder that nothing readable was left on disk.
//
// The sealed store's key is derived from a passphrase here (AZKEEP_PASSPHRASE), so the demo
// needs no desktop keyring; a real sign-in uses the OS keyring. `--keep` leaves the emulator
// running afterwards and prints how to use it.
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const REPO = fileURLToPath(new URL("../", import.meta.url));
const BIN = join(REPO, "bin", "azkeep.js");
const ALICE = "alice@contoso.onmicrosoft.com";
const keep = process.argv.includes("--keep");
const color = !process.env.NO_COLOR && process.stdout.isTTY;
const bold = (s) => (color ? `\x1b[1m${s}\x1b[0m` : s);

const { startEmulator } = await import(join(REPO, "dist", "lib", "emulator.js"));
const root = mkdtempSync(join(tmpdir(), "azkeep-demo-"));
const configDir = join(root, "azkeep");
const emu = await startEmulator({ dataDir: join(root, "emulator"), lifetimes: { deviceCodeInterval: 1 } });
const env = {
  ...process.env,
  ...emu.env,
  HOME: root,
  AZKEEP_CONFIG_DIR: configDir,
  XDG_RUNTIME_DIR: join(root, "run"),
  AZKEEP_STORE_PROVIDER: "passphrase",
  AZKEEP_PASSPHRASE: "demo passphrase: use your OS keyring in real life",
};
delete env.AZURE_CONFIG_DIR;

/** Runs azkeep as a user would; `input` is piped to stdin; returns exit code and stdout. */
function azkeep(args, { input, show = true, capture = false } = {}) {
  if (show)
    console.log(`\n${bold("$")} azkeep ${args.map((a) => (/[\s[\]{}*?]/.test(a) ? `'${a}'` : a)).join(" ")}`);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env,
      stdio: [input === undefined ? "ignore" : "pipe", capture ? "pipe" : "inherit", "inherit"],
    });
    let out = "";
    child.stdout?.on("data", (d) => (out += d));
    if (input !== undefined) child.stdin.end(input);
    child.on("close", (code) => resolve({ code: code ?? 1, out }));
  });
}

function step(title) {
  console.log(`\n${bold(`── ${title}`)}`);
}

function filesUnder(dir) {
  const out = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
}

let failed = false;
const must = async (args, opts) => {
  const r = await azkeep(args, opts);
  if (r.code !== 0) throw new Error(`azkeep ${args.slice(0, 2).join(" ")} exited with ${r.code}`);
  return r;
};
try {
  console.log(`The emulator serves Entra ID and Azure Resource Manager at ${emu.urls.http}, and`);
  console.log(`login.microsoftonline.com / management.azure.com through its proxy ${emu.urls.proxy}`);
  console.log(
    `(HTTPS_PROXY and NODE_EXTRA_CA_CERTS point azkeep at it, as they would at a corporate proxy).`,
  );

  step("1. Sign in with a device code (the demo approves it for alice)");
  const approve = (async () => {
    const code = await emu.control.waitForDeviceCode({ timeoutMs: 60_000 });
    await new Promise((r) => setTimeout(r, 1000));
    console.log(`\n(demo: ${ALICE} enters ${code.userCode} on the device login page and signs in)`);
    await emu.control.approveDeviceCode(code.userCode, ALICE, { mfa: false });
  })();
  await must([
    "login",
    "--use-device-code",
    "-o",
    "table",
    "--query",
    "[].{Name:name, SubscriptionId:id, Tenant:tenantId}",
  ]);
  await approve;

  step("2. Subscriptions, as `az account list` shows them");
  await must(["account", "list", "--all", "-o", "table"]);
  await must(["account", "show", "--query", "{subscription:name, user:user.name, cloud:environmentName}"]);

  step("3. A token for scripts (cached: no network)");
  await must([
    "account",
    "get-access-token",
    "--query",
    "{tokenType:tokenType, expiresOn:expiresOn, tenant:tenant}",
  ]);
  const { out: token } = await must(["account", "get-access-token", "--query", "accessToken", "-o", "tsv"], {
    show: false,
    capture: true,
  });
  console.log(
    `\n${bold("$")} TOKEN=$(azkeep account get-access-token --query accessToken -o tsv)   # ${token.trim().length} characters, kept in a variable`,
  );

  step("4. Resource groups through `azkeep rest` — no token pasted into curl");
  await must([
    "rest",
    "--url",
    "https://management.azure.com/subscriptions/{subscriptionId}/resourcegroups?api-version=2021-04-01",
    "--query",
    "value[].{name:name, location:location}",
    "-o",
    "table",
  ]);

  step("5. Decode the token locally — piped, never on a command line, never sent to a website");
  console.log(
    `\n${bold("$")} printf %s "$TOKEN" | azkeep token decode --query '{aud:claims.aud, upn:claims.upn, tid:claims.tid, expires:expires}'`,
  );
  await must(
    ["token", "decode", "--query", "{aud:claims.aud, upn:claims.upn, tid:claims.tid, expires:expires}"],
    {
      input: token.trim(),
      show: false,
    },
  );

  step("6. Nothing readable left on disk");
  await azkeep(["doctor", "-o", "table"]);
  const secret = token.trim();
  const leaks = filesUnder(configDir).filter((f) => readFileSync(f).includes(secret));
  console.log(`\n${bold("$")} grep -rl "$TOKEN" ${configDir}`);
  console.log(
    leaks.length ? leaks.join("\n") : "(no file contains the token: it is sealed in tokens.sealed)",
  );
  if (leaks.length) failed = true;
  await must(["store", "status", "--query", "{provider:provider, files:files[].{path:path, mode:mode}}"]);

  if (keep) {
    console.log(`\nThe emulator keeps running (Ctrl-C stops it). In another shell:`);
    for (const [k, v] of Object.entries({
      ...emu.env,
      AZKEEP_CONFIG_DIR: configDir,
      AZKEEP_STORE_PROVIDER: "passphrase",
    }))
      console.log(`  export ${k}=${v}`);
    console.log(`  export AZKEEP_PASSPHRASE='${env.AZKEEP_PASSPHRASE}'`);
    console.log(`  ${BIN} account list -o table`);
    await new Promise((resolve) => {
      process.once("SIGINT", resolve);
      process.once("SIGTERM", resolve);
    });
  }
} catch (e) {
  failed = true;
  console.error(`\nThe demo stopped: ${e instanceof Error ? e.message : String(e)}`);
} finally {
  await emu.close();
  rmSync(root, { recursive: true, force: true });
}
console.log(failed ? "\nDemo FAILED." : "\nDemo finished: everything it made has been removed.");
process.exit(failed ? 1 : 0);
