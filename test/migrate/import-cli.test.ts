/**
 * `azkeep import az` end to end: the built CLI in a temporary HOME, writing a real sealed
 * store (passphrase provider, so no keyring is needed), with fixture files from the reference
 * schema. The successful `--shred` against a real identity provider is in az-real.test.ts.
 */
import assert from "node:assert/strict";
import { chmodSync, cpSync, existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { runCli, tempHome } from "../helpers/cli.js";

const FIXTURES = fileURLToPath(new URL("./fixtures/", import.meta.url));

function secretsOf(fixture: string): string[] {
  const out: string[] = [];
  for (const f of readdirSync(join(FIXTURES, fixture))) {
    const text = readFileSync(join(FIXTURES, fixture, f), "utf8");
    for (const m of text.matchAll(
      /FIXTURE-[A-Za-z0-9.~_-]+|eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/g,
    ))
      out.push(m[0]);
  }
  return out;
}

/** Every file under `dir`, read as latin1 so binary files can be searched too. */
function allFiles(dir: string): { path: string; text: string }[] {
  const out: { path: string; text: string }[] = [];
  if (!existsSync(dir)) return out;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const path = join(e.parentPath, e.name);
    out.push({ path, text: readFileSync(path).toString("latin1") });
  }
  return out;
}

function setup(fixture: string) {
  const h = tempHome();
  const az = join(h.home, ".azure");
  cpSync(join(FIXTURES, fixture), az, { recursive: true });
  for (const f of readdirSync(az)) chmodSync(join(az, f), f === "azureProfile.json" ? 0o644 : 0o600);
  const env = {
    ...h.env,
    AZKEEP_STORE_PROVIDER: "passphrase",
    AZKEEP_PASSPHRASE: "correct horse battery staple for tests",
    AZURE_CONFIG_DIR: undefined,
    HTTPS_PROXY: undefined,
    https_proxy: undefined,
  };
  return { h, az, env, store: h.env.AZKEEP_CONFIG_DIR! };
}

/** A 127.0.0.1 port nothing listens on: requests through it fail at once. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

describe("azkeep import az (built CLI, sealed store)", { timeout: 180_000 }, () => {
  it("imports into the sealed store; nothing secret in the output or the store folder", async () => {
    const { h, az, env, store } = setup("az-2.45");
    using _h = h;
    const r = await runCli(["import", "az"], { env });
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout) as {
      configDir: string;
      subscriptions: unknown[];
      refreshTokens: { username: string }[];
      servicePrincipals: unknown[];
    };
    assert.equal(summary.configDir, az);
    assert.equal(summary.subscriptions.length, 3);
    assert.deepEqual(
      summary.refreshTokens.map((x) => x.username),
      ["alice@contoso.com"],
    );
    const secrets = secretsOf("az-2.45");
    for (const s of secrets) {
      assert.ok(!r.stdout.includes(s) && !r.stderr.includes(s), `${s} printed`);
      for (const f of allFiles(store)) assert.ok(!f.text.includes(s), `${s} in ${f.path}`);
    }
    const sealed = join(store, "tokens.sealed");
    assert.equal(statSync(sealed).mode & 0o777, 0o600);
    // The Azure CLI's files are untouched without --shred.
    assert.ok(existsSync(join(az, "msal_token_cache.json")));

    // -o table lists what was imported.
    const t = await runCli(["import", "az", "-o", "table"], { env });
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, /^Imported\s+Name\s+Id\s+Principal/);
    assert.match(t.stdout, /refresh token\s+alice@contoso\.com/);
  });

  it("a malformed file: exit 1, one ERROR naming the file, no stack, nothing written", async () => {
    const { h, az, env, store } = setup("az-2.45");
    using _h = h;
    const cache = join(az, "msal_token_cache.json");
    cpSync(join(FIXTURES, "az-2.45", "service_principal_entries.json"), cache); // a list, not a cache
    const r = await runCli(["import", "az"], { env });
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, new RegExp(`^ERROR: ${cache.replace(/[.]/g, "\\.")} is not an MSAL token cache`));
    assert.match(r.stderr, /azkeep login/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
    for (const s of secretsOf("az-2.45")) assert.ok(!r.stderr.includes(s));
    assert.ok(!existsSync(join(store, "tokens.sealed")));
  });

  it("--shred keeps the files and exits 1 when the identity provider cannot be reached", async () => {
    const { h, az, env } = setup("az-2.45");
    using _h = h;
    const port = await closedPort();
    const r = await runCli(["import", "az", "--shred"], {
      env: { ...env, HTTPS_PROXY: `http://127.0.0.1:${port}`, NO_PROXY: "" },
    });
    assert.equal(r.code, 1, r.stderr);
    const summary = JSON.parse(r.stdout) as { shred: { done: boolean; kept: string[]; reason: string } };
    assert.equal(summary.shred.done, false);
    assert.deepEqual(summary.shred.kept, [
      join(az, "msal_token_cache.json"),
      join(az, "service_principal_entries.json"),
    ]);
    assert.match(summary.shred.reason, /alice@contoso\.com/);
    assert.match(r.stderr, /ERROR: The sign-in was imported, but the Azure CLI's plaintext files were kept/);
    assert.ok(existsSync(join(az, "msal_token_cache.json")));
    for (const s of secretsOf("az-2.45")) assert.ok(!r.stdout.includes(s) && !r.stderr.includes(s), s);
  });

  it("refuses a memory-only store (the import would vanish, --shred would lose the sign-in)", async () => {
    const { h, env } = setup("az-2.45");
    using _h = h;
    const r = await runCli(["import", "az", "--shred"], { env: { ...env, AZKEEP_STORE_PROVIDER: "memory" } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^ERROR: azkeep's store is kept in memory only/);
    assert.match(r.stderr, /Unset AZKEEP_STORE_PROVIDER/);
  });

  it("no Azure CLI folder: exit 1 naming --config-dir", async () => {
    const { h, env } = setup("az-2.45");
    using _h = h;
    const r = await runCli(["import", "az", "--config-dir", join(h.home, "nope")], { env });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^ERROR: No Azure CLI sign-in found in .*nope\./);
    assert.match(r.stderr, /--config-dir/);
  });
});
