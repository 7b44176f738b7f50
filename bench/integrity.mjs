// Benchmark: what checking profile.json and config.json against the sealed mirror costs each
// command (issue 8): `verifyProfile` + `verifyConfig` of `src/core/store/integrity.ts` (a
// canonical JSON serialisation of each side and a string compare), in process, on a profile of
// N subscriptions and a config.json with 3 custom clouds. The whole-process effect is in
// `get-access-token.mjs --baseline`. Medians of 21 rounds of 2,000 checks each.
//
// Usage: `node bench/integrity.mjs [--subs N]` (or `npm run bench integrity`).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";
import { REPO, median, option } from "./lib.mjs";

const SUBS = Number(option("--subs", "12"));

const dir = mkdtempSync(join(tmpdir(), "azkeep-bench-integrity-"));
try {
  const out = join(dir, "integrity.mjs");
  await build({
    entryPoints: [join(REPO, "src", "core", "store", "integrity.ts")],
    bundle: true,
    platform: "node",
    format: "esm",
    outfile: out,
    logLevel: "error",
  });
  const m = await import(out);
  const sub = (i) => ({
    id: `c0ffee00-0000-4000-8000-${String(i).padStart(12, "0")}`,
    name: `Subscription ${i}`,
    state: "Enabled",
    user: { name: "alice@contoso.onmicrosoft.com", type: "user" },
    isDefault: i === 0,
    tenantId: "11111111-1111-1111-1111-111111111111",
    environmentName: "AzureCloud",
    homeTenantId: "11111111-1111-1111-1111-111111111111",
    tenantDefaultDomain: "contoso.onmicrosoft.com",
    tenantDisplayName: "Contoso",
    managedByTenants: [],
  });
  const profile = { subscriptions: Array.from({ length: SUBS }, (_, i) => sub(i)), installationId: "x" };
  const cloud = (n) => ({
    name: `Stack${n}`,
    endpoints: {
      activeDirectory: `https://login.stack${n}.example`,
      resourceManager: `https://management.stack${n}.example/`,
      activeDirectoryResourceId: `https://management.stack${n}.example/`,
      management: `https://management.stack${n}.example/`,
    },
    suffixes: { storageEndpoint: `stack${n}.example` },
    profile: "latest",
    builtin: false,
  });
  const config = {
    version: 1,
    store: { key: { provider: "keyutils", keyId: "00".repeat(16), keyCheck: "x", createdAt: "now" } },
    cloud: { activeCloud: "Stack0", customClouds: [cloud(0), cloud(1), cloud(2)] },
  };
  const mirror = {
    version: 1,
    profile: structuredClone(profile),
    config: m.protectedConfig(structuredClone(config)),
  };
  // The files as a command reads them: freshly parsed JSON each time.
  const profileText = JSON.stringify(profile, null, 2);
  const configText = JSON.stringify(config, null, 2);
  // The first call in a process, as a command makes it (cold code, no JIT).
  const c0 = process.hrtime.bigint();
  m.verifyProfile(mirror, JSON.parse(profileText));
  m.verifyConfig(mirror, JSON.parse(configText));
  const coldUs = Number(process.hrtime.bigint() - c0) / 1e3;
  const N = 2000;
  const rounds = [];
  for (let r = 0; r < 21; r++) {
    const p = JSON.parse(profileText);
    const c = JSON.parse(configText);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) {
      m.verifyProfile(mirror, p);
      m.verifyConfig(mirror, c);
    }
    rounds.push(Number(process.hrtime.bigint() - t0) / 1e3 / N);
  }
  console.log(
    `integrity check (verifyProfile + verifyConfig), ${SUBS} subscriptions, 3 custom clouds: ` +
      `first call ${coldUs.toFixed(0)} µs (cold, as in a command), then median ${median(rounds).toFixed(1)} µs per check (node ${process.version}; profile.json ${profileText.length} B, config.json ${configText.length} B)`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
