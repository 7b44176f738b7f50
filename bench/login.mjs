// Benchmark: signing in, as whole processes, side by side in one run with the Azure CLI.
//
//   service principal   `azkeep login --service-principal` (secret from AZKEEP_CLIENT_SECRET)
//                       vs `az login --service-principal -p …`
//   device code         `azkeep login --use-device-code` vs `az login --use-device-code`,
//                       approved through the emulator's control API the moment the code exists
//
// Both talk to the same emulator through its HTTPS proxy with the stock AzureCloud, as in
// production. The emulator's device code `interval` is 1 s. azkeep waits one interval before
// its first poll (RFC 8628; nobody approves a code in 0 s), az/MSAL polls at once; the code is
// approved before either polls, so azkeep's one 1 s wait is subtracted ("approval excluded").
// Each run is timed with os.wait4 (wall, CPU, peak RSS of exactly that process);
// runs are interleaved and medians reported. Usage: `node bench/login.mjs [--runs N]`.
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import {
  ALICE as ALICE_USER,
  BIN,
  REPO,
  SP,
  azSetup,
  azkeepStoreEnv,
  baseEnv,
  commandPath,
  hasCommand,
  measure as measureRuns,
  median,
  option,
} from "./lib.mjs";

const ALICE = ALICE_USER.upn;
const INTERVAL_S = 1;
const RUNS = Number(option("--runs", "5"));

/** One process, timed with os.wait4: resolves `{wall, cpu, rss}`. */
async function measure(argv, env) {
  const key = argv.join(" ");
  const { [key]: r } = await measureRuns(1, [{ key, argv, env }]);
  return { wall: r.wall[0], cpu: r.cpu[0], rss: r.rss[0] };
}

async function main() {
  const azPath = hasCommand("az") ? commandPath("az") : undefined;
  const { startEmulator } = await import(join(REPO, "dist", "lib", "emulator.js"));
  const root = mkdtempSync(join(tmpdir(), "azkeep-bench-login-"));
  const emu = await startEmulator({
    dataDir: join(root, "emulator"),
    lifetimes: { deviceCodeInterval: INTERVAL_S },
  });
  // Approve every device code as soon as it exists (the person's part is not measured).
  let approving = true;
  const approver = (async () => {
    const done = new Set();
    while (approving) {
      for (const d of await emu.control.deviceCodes().catch(() => []))
        if (d.status === "pending" && !done.has(d.userCode)) {
          done.add(d.userCode);
          await emu.control.approveDeviceCode(d.userCode, ALICE, { mfa: false }).catch(() => {});
        }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  try {
    const base = baseEnv(root);
    const azkeepEnv = {
      ...base,
      ...emu.env,
      ...azkeepStoreEnv(root),
      AZKEEP_CLIENT_SECRET: SP.secret,
    };
    const { env: azEnv } = azSetup(root, base, emu);
    const cases = [
      {
        name: "azkeep login --service-principal",
        argv: [
          process.execPath,
          BIN,
          "login",
          "--service-principal",
          "-u",
          SP.clientId,
          "--tenant",
          SP.tenant,
          "--only-show-errors",
        ],
        env: azkeepEnv,
        kind: "sp",
      },
      {
        name: "azkeep login --use-device-code",
        argv: [process.execPath, BIN, "login", "--use-device-code", "--only-show-errors"],
        env: azkeepEnv,
        kind: "dc",
        waitMs: INTERVAL_S * 1000,
      },
    ];
    if (azPath) {
      cases.push(
        {
          name: "az login --service-principal",
          argv: [
            azPath,
            "login",
            "--service-principal",
            "-u",
            SP.clientId,
            "-p",
            SP.secret,
            "--tenant",
            SP.tenant,
          ],
          env: azEnv,
          kind: "sp",
        },
        {
          name: "az login --use-device-code",
          argv: [azPath, "login", "--use-device-code"],
          env: azEnv,
          kind: "dc",
        },
      );
    } else console.error("The Azure CLI is missing (apt-get install -y azure-cli): measuring azkeep only.");
    const results = Object.fromEntries(cases.map((c) => [c.name, []]));
    for (const c of cases) await measure(c.argv, c.env); // warm-up, not counted
    for (let r = 0; r < RUNS; r++) for (const c of cases) results[c.name].push(await measure(c.argv, c.env));
    console.log(
      `sign-in: medians of ${RUNS} interleaved runs (${new Date().toISOString()}); azkeep's ${INTERVAL_S} s device code wait subtracted`,
    );
    console.log(
      `node ${process.version}, load average ${loadavg()
        .map((l) => l.toFixed(2))
        .join(" ")}`,
    );
    console.log("");
    console.log("| command | wall ms | CPU ms | peak RSS MiB |");
    console.log("|---|---:|---:|---:|");
    const rows = {};
    for (const c of cases) {
      const rs = results[c.name];
      const wall = median(rs.map((x) => x.wall)) - (c.waitMs ?? 0);
      rows[c.name] = { wall, cpu: median(rs.map((x) => x.cpu)), rss: median(rs.map((x) => x.rss)) };
      console.log(
        `| ${c.name} | ${wall.toFixed(0)} | ${rows[c.name].cpu.toFixed(0)} | ${rows[c.name].rss.toFixed(1)} |`,
      );
    }
    if (azPath) {
      console.log("");
      for (const k of ["service-principal", "use-device-code"]) {
        const a = rows[`azkeep login --${k}`];
        const z = rows[`az login --${k}`];
        console.log(
          `--${k}: azkeep ${(z.wall / a.wall).toFixed(1)}× faster than az; peak memory ${(a.rss / z.rss).toFixed(2)}× az's`,
        );
      }
    }
  } finally {
    approving = false;
    await approver;
    await emu.close();
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
