// What a cached `azkeep account get-access-token` through the agent costs in instructions, not
// seconds: each command runs under valgrind's callgrind (`--runs` times, median), side by side
// with bare `node -e 0`, an empty script file and a hand-written floor (libuv's pipe, the same
// two frames, the answer printed). Instruction counts repeat to within ~0.5 % whatever else the
// machine does, where the wall time of this VM moves by 10 % from one hour to the next
// (docs/benchmarks.md): this is the benchmark to tell whether a change to the client made it
// cheaper. Every Node process also spends a random 6–11 M instructions finding primes for its
// hash seed (V8's `detail::sprp`); they are subtracted, and shown.
//
// Needs valgrind (Debian: `apt-get install valgrind`). The key provider does not matter here (the
// client never opens the store): insecure-file.
//
//   node bench/instructions.mjs [--runs 5]
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  BIN,
  REPO,
  SHIM_DIR,
  baseEnv,
  azkeepStoreEnv,
  hasCommand,
  machineLine,
  median,
  must,
  option,
  run,
  signInAlice,
  cleanupAgentBench,
} from "./lib.mjs";

const RUNS = Number(option("--runs", "5"));

/** Instructions of one run of `argv` under callgrind: `{ total, seed }` (seed: the hash seed's primes). */
function count(argv, env, dir) {
  const out = join(dir, "callgrind.out");
  const r = spawnSync("valgrind", ["--tool=callgrind", `--callgrind-out-file=${out}`, ...argv], {
    env,
    encoding: "utf8",
    stdio: ["ignore", "ignore", "pipe"],
  });
  if (r.status !== 0) throw new Error(`${argv.join(" ")} under callgrind: exit ${r.status}\n${r.stderr}`);
  const a = spawnSync("callgrind_annotate", ["--inclusive=no", "--threshold=100", out], { encoding: "utf8" });
  const num = (line) => Number(line.trim().split(/\s+/)[0].replace(/,/g, ""));
  const lines = a.stdout.split("\n");
  const total = num(lines.find((l) => l.includes("PROGRAM TOTALS")) ?? "NaN");
  const seedLine = lines.find((l) => l.includes("detail::sprp"));
  rmSync(out, { force: true });
  return { total, seed: seedLine ? num(seedLine) : 0 };
}

async function main() {
  if (!hasCommand("valgrind") || !hasCommand("callgrind_annotate")) {
    console.log("skipped: bench/instructions.mjs needs valgrind (Debian: apt-get install valgrind)");
    return;
  }
  const lib = await import(join(REPO, "dist", "lib", "index.js"));
  const { startEmulator } = await import(join(REPO, "dist", "lib", "emulator.js"));
  const root = mkdtempSync(join(tmpdir(), "azkeep-bench-instr-"));
  const emu = await startEmulator({ dataDir: join(root, "emulator") });
  const env = { ...baseEnv(root), ...azkeepStoreEnv(root), AZKEEP_STORE_PROVIDER: "insecure-file" };
  let status;
  const cleanup = cleanupAgentBench({ env, emu, root, status: () => status });
  try {
    await signInAlice({ ...env, ...emu.env });
    must(
      await run(process.execPath, [BIN, "account", "get-access-token"], { ...env, ...emu.env }),
      "sign-in",
    );
    must(
      await run(process.execPath, [BIN, "agent", "start", "--agent-only", "--policy", "open"], env),
      "agent start",
    );
    const paths = lib.resolvePaths(env);
    const socketPath = lib.agentSocketPath(paths, env);
    const conn = await lib.connectAgent({ socketPath, configDir: paths.configDir });
    status = await conn.status();
    conn.close();

    const empty = join(root, "empty.js");
    writeFileSync(empty, '"use strict";\n');
    // The floor: what any Node client of the agent must do (no paths, checks or az's output).
    const floor = join(root, "floor.js");
    writeFileSync(
      floor,
      `"use strict";
const pw = process.binding("pipe_wrap"), sw = process.binding("stream_wrap");
const h = new pw.Pipe(pw.constants.SOCKET), req = new pw.PipeConnectWrap();
let got = "";
req.oncomplete = () => {
  h.onread = (ab) => {
    const n = sw.streamBaseState[sw.kReadBytesOrError];
    if (n <= 0) return;
    got += Buffer.from(ab, sw.streamBaseState[sw.kArrayBufferOffset], n).utf8Slice(0, n);
    const lines = got.split("\\n");
    if (lines.length < 3) return;
    const t = JSON.parse(lines[1]).result;
    require("node:fs").writeSync(1, JSON.stringify({ accessToken: t.accessToken, expiresOn: t.expiresOn, tokenType: t.tokenType }, null, 2) + "\\n");
    process.exit(0);
  };
  h.readStart();
  const w = new sw.WriteWrap(); w.handle = h; w.async = false; w.oncomplete = () => {};
  h.writeUtf8String(w, ${JSON.stringify(
    `${JSON.stringify({ op: "hello", version: lib.PROTOCOL_VERSION, configDir: paths.configDir, id: 1 })}\n${JSON.stringify({ op: "token", request: {}, id: 2 })}\n`,
  )});
};
h.connect(req, ${JSON.stringify(socketPath)});
`,
    );
    const node = process.execPath;
    const cases = [
      ["node -e 0", [node, "-e", "0"]],
      ["an empty script file", [node, empty]],
      ["hand-written floor (pipe, two frames, print)", [node, floor]],
      ["azkeep account get-access-token", [node, BIN, "account", "get-access-token"]],
      [
        "… --query accessToken -o tsv",
        [node, BIN, "account", "get-access-token", "--query", "accessToken", "-o", "tsv"],
      ],
      [
        "az shim: az account get-access-token -o json",
        [node, join(SHIM_DIR, "az"), "account", "get-access-token", "-o", "json"],
      ],
    ];
    for (const [, argv] of cases) must(await run(argv[0], argv.slice(1), env), argv.join(" "));
    console.log(
      `instructions (callgrind), median of ${RUNS} runs each, less the hash seed's prime search (${new Date().toISOString()})`,
    );
    console.log(machineLine());
    console.log("");
    console.log("| command | M instructions | over node -e 0 | hash seed's primes, M (min–max) |");
    console.log("|---|---:|---:|---|");
    let base;
    for (const [label, argv] of cases) {
      const rs = [];
      for (let i = 0; i < RUNS; i++) {
        rs.push(count(argv, env, root));
        // A turn of the loop between runs, so that a SIGINT or SIGTERM is seen (cleanupOnAbort).
        await new Promise((resolve) => setImmediate(resolve));
      }
      const net = median(rs.map((r) => r.total - r.seed)) / 1e6;
      base ??= net;
      const seeds = rs.map((r) => r.seed / 1e6);
      console.log(
        `| ${label} | ${net.toFixed(2)} | ${label === "node -e 0" ? "" : `+${(net - base).toFixed(2)}`} | ${Math.min(...seeds).toFixed(1)}–${Math.max(...seeds).toFixed(1)} |`,
      );
    }
  } finally {
    await cleanup();
  }
}

await main();
