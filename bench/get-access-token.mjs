// Benchmark: a cached `get-access-token`, as whole processes, side by side in one run.
//
//   node          bare `node -e 0` (the floor any Node CLI pays)
//   azkeep        `azkeep account get-access-token` (bin/azkeep.js, cached token)
//   az            `az account get-access-token` (the Debian Azure CLI 2.45, cached token)
//   shim          `az account get-access-token` answered by azkeep's shim (first on PATH)
//
// Everyone is signed in to the same emulator (through its HTTPS proxy, as in production);
// each run is timed with os.wait4 (wall, user+sys CPU, peak RSS of exactly that process),
// runs are interleaved round-robin so machine noise hits all equally, and medians are
// reported. Usage: `npm run bench` or `node bench/get-access-token.mjs [--runs N] [--json FILE] [--baseline DIR]`.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ALICE,
  BIN,
  REPO,
  SHIM_DIR,
  azSetup,
  azkeepStoreEnv,
  baseEnv,
  commandPath,
  hasCommand,
  measure,
  median,
  must,
  option,
  run,
  signInAlice,
} from "./lib.mjs";

const RUNS = Number(option("--runs", "21"));
const JSON_OUT = option("--json", undefined);
// `--baseline DIR`: another built checkout of azkeep (e.g. `git archive main`), measured on the
// same store in the same run, for before/after figures.
const BASELINE = option("--baseline", undefined);
const hasAz = hasCommand("az");

async function main() {
  const { startEmulator } = await import(join(REPO, "dist", "lib", "emulator.js"));
  const root = mkdtempSync(join(tmpdir(), "azkeep-bench-"));
  const emu = await startEmulator({ dataDir: join(root, "emulator") });
  try {
    const base = baseEnv(root, process.env.TZ ?? "UTC");
    const storeEnv = azkeepStoreEnv(root);
    // Signing in needs the emulator's proxy and CA; the cached path measured below does not.
    const azkeepEnv = { ...base, ...emu.env, ...storeEnv };
    await signInAlice(azkeepEnv);
    must(
      await run(process.execPath, [BIN, "account", "get-access-token"], azkeepEnv),
      "azkeep get-access-token",
    );

    // Two environments for Node processes, each measured for bare node and azkeep alike:
    // "clean" (no NODE_EXTRA_CA_CERTS: production against real Azure; the cached path needs no
    // network settings at all) and "system CA bundle" (NODE_EXTRA_CA_CERTS pointing at the
    // system bundle, as this machine's default environment has it: Node then parses ~140 CA
    // certificates at start-up, which every Node process pays).
    const systemCa = "/etc/ssl/certs/ca-certificates.crt";
    const scenarios = [{ name: "clean", extra: {} }];
    if (existsSync(systemCa))
      scenarios.push({ name: "system CA bundle", extra: { NODE_EXTRA_CA_CERTS: systemCa } });
    const cmds = [];
    for (const sc of scenarios) {
      const env = { ...base, ...storeEnv, ...sc.extra };
      const shimEnv = { ...env, PATH: `${SHIM_DIR}:${env.PATH}` };
      must(await run("az", ["account", "get-access-token"], shimEnv), "shim get-access-token");
      cmds.push(
        { scenario: sc.name, name: "node -e 0", argv: [process.execPath, "-e", "0"], env },
        {
          scenario: sc.name,
          name: "azkeep account get-access-token",
          argv: [process.execPath, BIN, "account", "get-access-token", "--only-show-errors"],
          env,
        },
        // posix_spawnp searches the measuring process's PATH: give absolute paths.
        {
          scenario: sc.name,
          name: "az account get-access-token (azkeep shim)",
          argv: [join(SHIM_DIR, "az"), "account", "get-access-token"],
          env: shimEnv,
        },
      );
      if (BASELINE)
        cmds.push({
          scenario: sc.name,
          name: `azkeep account get-access-token (baseline ${BASELINE})`,
          argv: [
            process.execPath,
            join(BASELINE, "bin", "azkeep.js"),
            "account",
            "get-access-token",
            "--only-show-errors",
          ],
          env,
        });
    }

    let azVersion;
    if (hasAz) {
      // As the interop tests do: a fresh versionCheck.json so az skips its update check.
      const { env: azEnv } = azSetup(root, base, emu);
      must(await run("az", ["login", "-u", ALICE.upn, "-p", ALICE.password], azEnv), "az login");
      must(await run("az", ["account", "get-access-token"], azEnv), "az get-access-token");
      azVersion = JSON.parse(must(await run("az", ["version", "-o", "json"], azEnv), "az version").stdout)[
        "azure-cli"
      ];
      const azPath = commandPath("az");
      cmds.push({
        scenario: "az",
        name: `az account get-access-token (Azure CLI ${azVersion})`,
        argv: [azPath, "account", "get-access-token"],
        env: azEnv,
      });
    } else {
      console.error("The Azure CLI is missing (apt-get install -y azure-cli): measuring without it.");
    }
    for (const c of cmds) c.key = `${c.scenario}: ${c.name}`;

    // Warm-up round (page cache, pyc files), not counted.
    await measure(2, cmds).catch(() => {});
    const raw = await measure(RUNS, cmds);

    const rows = cmds.map((c) => ({
      scenario: c.scenario,
      name: c.name,
      wallMs: median(raw[c.key].wall),
      cpuMs: median(raw[c.key].cpu),
      rssMiB: median(raw[c.key].rss),
    }));
    const az = rows.find((x) => x.scenario === "az");
    const os = await import("node:os");
    console.log(
      `get-access-token, cached token: medians of ${RUNS} interleaved runs (${new Date().toISOString()})`,
    );
    console.log(
      `node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}, load average ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(" ")}`,
    );
    const budget = {};
    for (const sc of scenarios) {
      const mine = rows.filter((x) => x.scenario === sc.name);
      const node = mine[0];
      const azkeep = mine[1];
      console.log("");
      console.log(
        `Environment: ${sc.name}${sc.extra.NODE_EXTRA_CA_CERTS ? ` (NODE_EXTRA_CA_CERTS=${sc.extra.NODE_EXTRA_CA_CERTS})` : ""}`,
      );
      console.log("");
      console.log(
        `| command | wall ms | CPU ms | peak RSS MiB | wall / node | RSS / node |${az ? " az wall / this |" : ""}`,
      );
      console.log(`|---|---:|---:|---:|---:|---:|${az ? "---:|" : ""}`);
      for (const x of [...mine, ...(az ? [az] : [])]) {
        console.log(
          `| ${x.name} | ${x.wallMs.toFixed(1)} | ${x.cpuMs.toFixed(1)} | ${x.rssMiB.toFixed(1)} | ${(x.wallMs / node.wallMs).toFixed(2)} | ${(x.rssMiB / node.rssMiB).toFixed(2)} |${az ? ` ${(az.wallMs / x.wallMs).toFixed(1)}× |` : ""}`,
        );
      }
      const b = {
        wall: azkeep.wallMs / node.wallMs,
        rss: azkeep.rssMiB / node.rssMiB,
        vsAz: az ? az.wallMs / azkeep.wallMs : undefined,
      };
      budget[sc.name] = b;
      console.log("");
      console.log(
        `budget (${sc.name}): wall ≤ 1.3 × node: ${b.wall <= 1.3 ? "met" : "MISSED"} (${b.wall.toFixed(2)}); ` +
          `peak RSS ≤ 1.25 × node: ${b.rss <= 1.25 ? "met" : "MISSED"} (${b.rss.toFixed(2)}); ` +
          (az
            ? `≥ 5 × faster than az: ${b.vsAz >= 5 ? "met" : "MISSED"} (${b.vsAz.toFixed(1)})`
            : "az not measured"),
      );
    }
    if (JSON_OUT)
      writeFileSync(JSON_OUT, JSON.stringify({ runs: RUNS, rows, raw, budget, azVersion }, null, 2) + "\n");
  } finally {
    await emu.close();
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
