// Benchmark: what the sealed store costs a short-lived command — open + unseal + read of a
// realistic store (1 refresh token, 1 service-principal secret, 40 access tokens, 12
// subscriptions) — as whole processes, per key provider, next to bare `node -e 0`.
//
// Everything runs inside one `keyctl session` and one `dbus-run-session` with an unlocked
// gnome-keyring, so every provider is measured on the same machine in the same minute. Runs
// are interleaved round-robin (machine noise hits all alike) and timed with os.wait4 (wall,
// user+sys CPU, peak RSS of exactly that process); medians are reported. A second pass runs
// each probe with in-process timers to split the cost into phases.
//
// Usage: `node bench/store-open.mjs [--runs N] [--json FILE]` (or `npm run bench store-open`).
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { build } from "esbuild";
import { MEASURE, REPO, hasCommand as has, median, option, run } from "./lib.mjs";

const RUNS = Number(option("--runs", "21"));
const JSON_OUT = option("--json", undefined);

// The probe: what `get-access-token` does with the store for a cached token.
const PROBE = `
const t0 = performance.now();
const { createNodeContext } = await import("./src/core/context.ts");
const { openStore } = await import("./src/core/store/index.ts");
const t1 = performance.now();
const ctx = createNodeContext({ env: process.env });
const t2 = performance.now();
const store = await openStore(ctx);
const [profile, secrets] = await Promise.all([store.readProfile(), store.readSecrets()]);
const sub = profile.subscriptions.find((s) => s.isDefault);
const at = secrets.accessTokens.find((t) => t.tenantId === sub.tenantId && t.target.includes("management.core.windows.net"));
const t3 = performance.now();
if (!at) process.exit(3);
if (process.argv[2] === "--phases") process.stdout.write(JSON.stringify({ start: t0, load: t1 - t0, ctx: t2 - t1, read: t3 - t2 }) + "\\n");
process.exit(0);
`;

// Seeds one store per provider (inside the sessions, so the keys land in their keyrings).
const SEED = `
const { createNodeContext } = await import("./src/core/context.ts");
const { openStore } = await import("./src/core/store/index.ts");
const [dir, provider] = process.argv.slice(2);
const ctx = createNodeContext({ env: { ...process.env, AZKEEP_CONFIG_DIR: dir, AZKEEP_STORE_PROVIDER: provider } });
const store = await openStore(ctx);
const jwt = (n) => "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9." + Buffer.alloc(900, n).toString("base64url") + "." + Buffer.alloc(256, n).toString("base64url");
await store.update((s) => {
  s.secrets.refreshTokens.push({ homeAccountId: "uid.utid", username: "alice@contoso.com", clientId: "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
    environment: "login.microsoftonline.com", cloud: "AzureCloud", homeTenantId: "t0", secret: "0.A" + Buffer.alloc(1100, 7).toString("base64url"), familyId: "1", lastModified: 1 });
  s.secrets.servicePrincipals.push({ clientId: "sp", tenantId: "t0", cloud: "AzureCloud", credential: { kind: "secret", secret: "s~" + "x".repeat(38) } });
  const resources = ["https://management.core.windows.net/", "https://graph.microsoft.com/", "https://vault.azure.net", "https://storage.azure.com/"];
  for (let i = 0; i < 40; i++)
    s.secrets.accessTokens.push({ homeAccountId: "uid.utid", principal: "alice@contoso.com", clientId: "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
      environment: "login.microsoftonline.com", cloud: "AzureCloud", tenantId: "t" + (i % 10), target: resources[Math.floor(i / 10)] + "/.default",
      secret: jwt(i), tokenType: "Bearer", expiresOn: 4102444800, cachedAt: 1700000000 });
  for (let i = 0; i < 12; i++)
    s.profile.subscriptions.push({ id: "sub-" + i, name: "Subscription " + i, state: "Enabled", user: { name: "alice@contoso.com", type: "user" },
      isDefault: i === 3, tenantId: "t" + (i % 10), environmentName: "AzureCloud", homeTenantId: "t" + (i % 10), managedByTenants: [] });
});
`;

// Deletes a store's key from its provider (keyutils keys would outlive the benchmark).
const CLEANUP = `
const { readConfig } = await import("./src/core/config.ts");
const { createNodeContext } = await import("./src/core/context.ts");
const { loadProvider } = await import("./src/core/store/providers/index.ts");
const dir = process.argv[2];
const ctx = createNodeContext({ env: { ...process.env, AZKEEP_CONFIG_DIR: dir } });
const rec = (await readConfig(ctx)).store?.key;
if (rec) await (await loadProvider(rec.provider, { ctx, configDir: dir, options: {} })).deleteKey(rec);
`;

const PKG = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8"));

async function bundle(dir, name, source) {
  // Bundled like the CLI's fast lane (scripts/build.mjs): esbuild, CommonJS, one file, npm
  // dependencies external — what `account get-access-token` loads for a cached token.
  await build({
    stdin: {
      contents: `(async () => {${source}})();`,
      resolveDir: REPO,
      sourcefile: `${name}.ts`,
      loader: "ts",
    },
    outfile: join(dir, name, "index.cjs"),
    bundle: true,
    format: "cjs",
    platform: "node",
    target: "node20",
    external: Object.keys(PKG.dependencies ?? {}),
    define: { "import.meta.url": "__bench_url" },
    banner: { js: 'const __bench_url = require("node:url").pathToFileURL(__filename).href;' },
    logLevel: "warning",
  });
  return join(dir, name, "index.cjs");
}

async function main() {
  mkdirSync(join(REPO, ".tmp"), { recursive: true });
  const work = mkdtempSync(join(REPO, ".tmp", "bench-store-")); // under the repo: node_modules resolves
  try {
    const probe = await bundle(work, "probe", PROBE);
    const seed = await bundle(work, "seed", SEED);
    const cleanup = await bundle(work, "cleanup", CLEANUP);
    const providers = ["insecure-file", "passphrase"];
    if (has("keyctl")) providers.push("keyutils");
    if (has("dbus-run-session") && has("gnome-keyring-daemon")) providers.push("keyring");
    const base = {
      PATH: process.env.PATH,
      HOME: work,
      AZKEEP_PASSPHRASE: "benchmark passphrase",
      NO_COLOR: "1",
    };
    const cmds = [{ key: "node -e 0", argv: [process.execPath, "-e", "0"], env: base }];
    const seeds = [];
    for (const p of providers) {
      const dir = join(work, p);
      seeds.push(`"$NODE" ${seed} ${dir} ${p}`);
      cmds.push({ key: p, argv: [process.execPath, probe], env: { ...base, AZKEEP_CONFIG_DIR: dir } });
    }
    // One session for everything: seed, the timed runs, a pass with in-process phase timers,
    // then delete the keys (the kernel's persistent keyring would keep them for days).
    const phaseLoop = cmds
      .slice(1)
      .map(
        (c) =>
          `for i in 1 2 3 4 5 6 7 8 9 10 11; do AZKEEP_CONFIG_DIR=${c.env.AZKEEP_CONFIG_DIR} "$NODE" ${probe} --phases | sed 's/^/PHASE ${c.key} /'; done`,
      )
      .join(" && ");
    const cleanupCmds = providers.map((p) => `"$NODE" ${cleanup} ${join(work, p)}`).join("; ");
    const script =
      (providers.includes("keyring")
        ? "printf bench | gnome-keyring-daemon --unlock --components=secrets >/dev/null && "
        : "") +
      `${seeds.join(" && ")} && python3 -c "$MEASURE" && echo && ${phaseLoop}; status=$?; ${cleanupCmds}; exit $status`;
    let argv = ["sh", "-c", script];
    if (providers.includes("keyring")) argv = ["dbus-run-session", "--", ...argv];
    if (providers.includes("keyutils")) argv = ["keyctl", "session", "-", ...argv];
    const r = await run(
      argv[0],
      argv.slice(1),
      { ...base, NODE: process.execPath, MEASURE },
      // The D-Bus address is the session's, known only inside it.
      JSON.stringify({ runs: RUNS, cmds, inheritEnv: ["DBUS_SESSION_BUS_ADDRESS"] }),
    );
    if (r.code !== 0) throw new Error(`benchmark failed (${r.code}): ${r.stderr}`);
    const lines = r.stdout.split("\n");
    const measured = JSON.parse(lines.find((l) => l.startsWith("{")));
    const phases = {};
    for (const line of lines) {
      const m = /^PHASE (\S+) (\{.*\})$/.exec(line);
      if (m) (phases[m[1]] ??= []).push(JSON.parse(m[2]));
    }

    const node = median(measured["node -e 0"].wall);
    const rows = cmds.map((c) => {
      const o = measured[c.key];
      const ph = phases[c.key];
      return {
        name: c.key,
        wall: median(o.wall),
        cpu: median(o.cpu),
        rss: median(o.rss),
        ratio: median(o.wall) / node,
        load: ph ? median(ph.map((p) => p.load)) : undefined,
        ctx: ph ? median(ph.map((p) => p.ctx)) : undefined,
        read: ph ? median(ph.map((p) => p.read)) : undefined,
      };
    });
    const f = (x) => (x === undefined ? "–" : x.toFixed(1));
    console.log(
      `Store open + unseal + read, whole process, median of ${RUNS} (node ${process.version}, ${new Date().toISOString().slice(0, 10)})\n`,
    );
    console.log(
      "| process | wall ms | × node | CPU ms | peak RSS MiB | load code ms | Context ms | open + unseal + read ms |",
    );
    console.log("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (const x of rows)
      console.log(
        `| ${x.name} | ${f(x.wall)} | ${x.ratio.toFixed(2)} | ${f(x.cpu)} | ${f(x.rss)} | ${f(x.load)} | ${f(x.ctx)} | ${f(x.read)} |`,
      );
    if (JSON_OUT) writeFileSync(JSON_OUT, JSON.stringify({ runs: RUNS, rows, raw: measured }, null, 2));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
