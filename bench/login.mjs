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
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const REPO = fileURLToPath(new URL("../", import.meta.url));
const BIN = join(REPO, "bin", "azkeep.js");
const ALICE = "alice@contoso.onmicrosoft.com";
const SP = {
  clientId: "5e5e5e5e-0000-4000-8000-00000000c001",
  secret: "azkeep-ci-secret-value",
  tenant: "11111111-1111-1111-1111-111111111111",
};
const INTERVAL_S = 1;

const args = process.argv.slice(2);
const i = args.indexOf("--runs");
const RUNS = i >= 0 ? Number(args[i + 1]) : 5;

// One process, measured with os.wait4: prints {"wall","cpu","rss","code"} as JSON.
const MEASURE = String.raw`
import json, os, sys, time
spec = json.load(sys.stdin)
devnull = os.open(os.devnull, os.O_RDWR)
t0 = time.perf_counter()
pid = os.posix_spawnp(spec["argv"][0], spec["argv"], spec["env"],
    file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)])
_, status, ru = os.wait4(pid, 0)
json.dump({"wall": (time.perf_counter() - t0) * 1000, "cpu": (ru.ru_utime + ru.ru_stime) * 1000,
           "rss": ru.ru_maxrss / 1024, "code": os.waitstatus_to_exitcode(status)}, sys.stdout)
`;

function measure(argv, env) {
  return new Promise((resolve, reject) => {
    const child = spawn("python3", ["-c", MEASURE], { stdio: ["pipe", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.on("error", reject);
    child.on("close", () => {
      try {
        const r = JSON.parse(out);
        if (r.code !== 0) reject(new Error(`${argv.join(" ")} exited with ${r.code}`));
        else resolve(r);
      } catch (e) {
        reject(e);
      }
    });
    child.stdin.end(JSON.stringify({ argv, env }));
  });
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function main() {
  const hasAz = spawnSync("sh", ["-c", "command -v az"], { stdio: "ignore" }).status === 0;
  const azPath = hasAz
    ? spawnSync("sh", ["-c", "command -v az"], { encoding: "utf8" }).stdout.trim()
    : undefined;
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
    const base = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: root, LANG: "C.UTF-8", TZ: "UTC" };
    const azkeepEnv = {
      ...base,
      ...emu.env,
      AZKEEP_CONFIG_DIR: join(root, "azkeep"),
      XDG_RUNTIME_DIR: join(root, "run"),
      AZKEEP_STORE_PROVIDER: process.env.AZKEEP_STORE_PROVIDER ?? "insecure-file",
      AZKEEP_CLIENT_SECRET: SP.secret,
      NO_COLOR: "1",
    };
    const azDir = join(root, "az");
    mkdirSync(azDir, { recursive: true, mode: 0o700 });
    writeFileSync(
      join(azDir, "versionCheck.json"),
      JSON.stringify({
        versions: {
          "azure-cli": { local: "2.45.0" },
          core: { local: "2.45.0" },
          telemetry: { local: "1.0.8" },
        },
        update_time: new Date().toISOString().replace("T", " ").replace("Z", "000"),
      }),
    );
    const azEnv = {
      ...base,
      AZURE_CONFIG_DIR: azDir,
      HTTPS_PROXY: emu.urls.proxy,
      HTTP_PROXY: emu.urls.proxy,
      REQUESTS_CA_BUNDLE: emu.caCertPath,
      AZURE_CORE_COLLECT_TELEMETRY: "false",
      AZURE_CORE_NO_COLOR: "true",
      AZURE_CORE_SURVEY_MESSAGE: "false",
    };
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
