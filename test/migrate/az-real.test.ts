/**
 * `azkeep import az --shred` against files written by the REAL Azure CLI 2.45 (Debian's), signed
 * in to the emulator through its CONNECT proxy with the stock AzureCloud. azkeep then proves
 * the imported refresh token and service principal secret at the same emulator (through the
 * same proxy) before it shreds the plaintext files.
 *
 * Skipped with an install hint when `az` is missing (a failure under CI=true).
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  DEFAULT_SP_CERT_PEM,
  DEFAULT_SP_KEY_PEM,
  startEmulator,
  type Emulator,
} from "../../src/emulator/index.js";
import { AZ_INSTALL, azConfigDir, azEnv } from "../helpers/az.js";
import { runCli } from "../helpers/cli.js";
import { runProcess, type ProcessResult } from "../helpers/process.js";
import { hasCommand, requireTool } from "../helpers/require-tool.js";
import { ALICE, AZ_CLI_CLIENT_ID, CONTOSO, SP } from "../helpers/seed.js";

/** Runs `az` with exactly `env` (nothing from the developer's own Azure setup). */
function az(args: string[], env: Record<string, string>, timeoutMs = 120_000): Promise<ProcessResult> {
  return runProcess("az", args, { env, timeoutMs });
}

/** Every `secret` value in an MSAL cache, plus the SP secret: what must never leak. */
function secretsIn(dir: string): string[] {
  const cache = JSON.parse(readFileSync(join(dir, "msal_token_cache.json"), "utf8")) as Record<
    string,
    Record<string, { secret?: string }>
  >;
  const out = [SP.secret];
  for (const section of Object.values(cache))
    for (const e of Object.values(section)) if (e.secret) out.push(e.secret);
  return out;
}

function filesUnder(dir: string): { path: string; text: string }[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => {
      const path = join(e.parentPath, e.name);
      return { path, text: readFileSync(path).toString("latin1") };
    });
}

describe("import az: files written by the real Azure CLI 2.45", { timeout: 600_000 }, () => {
  let root: string;
  let emu: Emulator;

  before(async () => {
    if (!hasCommand("az")) return;
    root = mkdtempSync(join(tmpdir(), "azkeep-d-az-"));
    emu = await startEmulator({ dataDir: join(root, "emulator") });
  });
  after(async () => {
    await emu?.close();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  function azEnvFor(dir: string): Record<string, string> {
    return azEnv(root, dir, emu.urls.proxy!, emu.caCertPath!);
  }

  function azkeepEnvFor(dir: string, name: string): Record<string, string | undefined> {
    const home = join(root, name);
    mkdirSync(home, { recursive: true });
    return {
      HOME: home,
      AZKEEP_CONFIG_DIR: join(home, ".config", "azkeep"),
      XDG_RUNTIME_DIR: join(home, "run"),
      AZURE_CONFIG_DIR: dir,
      AZKEEP_STORE_PROVIDER: "passphrase",
      AZKEEP_PASSPHRASE: "a long test passphrase for the import",
      HTTPS_PROXY: emu.urls.proxy!,
      NODE_EXTRA_CA_CERTS: emu.caCertPath!,
      NO_PROXY: "",
      // Nothing from the machine running the tests may reach doctor's other checks.
      KUBECONFIG: undefined,
      AZD_CONFIG_DIR: undefined,
      AWS_SHARED_CREDENTIALS_FILE: undefined,
      AWS_CONFIG_FILE: undefined,
      CLOUDSDK_CONFIG: undefined,
      GOOGLE_APPLICATION_CREDENTIALS: undefined,
    };
  }

  it("az signs in a user and a service principal; import --shred proves both, then shreds", async (t) => {
    if (!requireTool(t, "az", AZ_INSTALL)) return;
    const dir = azConfigDir(root, "azure");
    const azEnv = azEnvFor(dir);
    const user = await az(["login", "-u", ALICE.upn, "-p", ALICE.password, "-o", "json"], azEnv);
    assert.equal(user.code, 0, user.stderr);
    const sp = await az(
      ["login", "--service-principal", "-u", SP.clientId, "-p", SP.secret, "--tenant", CONTOSO, "-o", "json"],
      azEnv,
    );
    assert.equal(sp.code, 0, sp.stderr);

    // What az 2.45 wrote: the BOM-prefixed profile, the plaintext cache and SP entries (0600).
    const profileBytes = readFileSync(join(dir, "azureProfile.json"));
    assert.deepEqual([...profileBytes.subarray(0, 3)], [0xef, 0xbb, 0xbf]);
    assert.equal(statSync(join(dir, "msal_token_cache.json")).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, "service_principal_entries.json")).mode & 0o777, 0o600);
    const secrets = secretsIn(dir);
    const profile = JSON.parse(profileBytes.subarray(3).toString("utf8")) as {
      subscriptions: { id: string; user: { name: string } }[];
    };
    const aliceSubs = profile.subscriptions.filter((s) => s.user.name === ALICE.upn).length;
    assert.ok(aliceSubs > 0, "alice keeps subscriptions the service principal cannot see");

    // doctor sees az's plaintext sign-in.
    const azkeepEnv = azkeepEnvFor(dir, "home");
    const before = await runCli(["doctor", "--only-show-errors"], { env: azkeepEnv });
    assert.equal(before.code, 3, before.stderr);
    const findings = (JSON.parse(before.stdout) as { findings: { path: string; risk: string }[] }).findings;
    assert.ok(findings.some((f) => f.path === join(dir, "msal_token_cache.json") && f.risk === "high"));
    assert.ok(
      findings.some((f) => f.path === join(dir, "service_principal_entries.json") && f.risk === "high"),
    );

    await emu.control.clearRequests();
    const r = await runCli(["import", "az", "--shred"], { env: azkeepEnv, timeoutMs: 120_000 });
    assert.equal(r.code, 0, `${r.stderr}\n${r.stdout}`);
    const summary = JSON.parse(r.stdout) as {
      subscriptions: unknown[];
      refreshTokens: { username: string; cloud: string }[];
      servicePrincipals: { clientId: string; credential: string }[];
      shred: { done: boolean; shredded: string[]; verified: { principal: string; ok: boolean }[] };
    };
    assert.equal(summary.subscriptions.length, profile.subscriptions.length);
    assert.deepEqual(
      summary.refreshTokens.map((x) => [x.username, x.cloud]),
      [[ALICE.upn, "AzureCloud"]],
    );
    assert.deepEqual(
      summary.servicePrincipals.map((x) => [x.clientId, x.credential]),
      [[SP.clientId, "secret"]],
    );
    assert.equal(summary.shred.done, true);
    assert.deepEqual(summary.shred.verified, [
      { principal: ALICE.upn, type: "user", ok: true },
      { principal: SP.clientId, type: "servicePrincipal", ok: true },
    ]);

    // The identity provider saw one refresh with az's client id and one client-credentials grant.
    const { requests } = await emu.control.requests({ endpoint: "token" });
    assert.deepEqual(
      requests.map((q) => [q.host, q.grantType, q.clientId, q.status]),
      [
        ["login.microsoftonline.com", "refresh_token", AZ_CLI_CLIENT_ID, 200],
        ["login.microsoftonline.com", "client_credentials", SP.clientId, 200],
      ],
    );

    // Only the profile (no secrets) and az's non-secret files are left.
    const left = readdirSync(dir);
    assert.ok(left.includes("azureProfile.json"));
    for (const f of ["msal_token_cache.json", "service_principal_entries.json"])
      assert.ok(!left.includes(f), f);
    for (const s of secrets) {
      assert.ok(!r.stdout.includes(s) && !r.stderr.includes(s), "a secret was printed");
      for (const f of filesUnder(dir)) assert.ok(!f.text.includes(s), `a secret is left in ${f.path}`);
      for (const f of filesUnder(azkeepEnv.AZKEEP_CONFIG_DIR!))
        assert.ok(!f.text.includes(s), `plaintext in ${f.path}`);
    }

    // The Azure CLI itself is signed out now.
    const gone = await az(["account", "get-access-token", "-o", "json"], azEnv);
    assert.notEqual(gone.code, 0);

    // doctor: no Azure CLI credential left (the 0644 profile is low risk only).
    const afterDoctor = await runCli(["doctor", "--only-show-errors"], { env: azkeepEnv });
    const report = JSON.parse(afterDoctor.stdout) as {
      atRisk: boolean;
      findings: { tool: string; risk: string }[];
      store: { provider: string };
    };
    assert.deepEqual(
      report.findings.filter((f) => f.tool === "Azure CLI").map((f) => f.risk),
      ["low"],
    );
    assert.equal(report.atRisk, false);
    assert.equal(afterDoctor.code, 0);
    assert.equal(report.store.provider, "passphrase");
  });
  it("a certificate service principal: the PEM is read into the store and proven with a signed assertion", async (t) => {
    if (!requireTool(t, "az", AZ_INSTALL)) return;
    const dir = azConfigDir(root, "azure-cert");
    const pemPath = join(root, "sp-cert.pem");
    writeFileSync(pemPath, `${DEFAULT_SP_KEY_PEM.trim()}\n${DEFAULT_SP_CERT_PEM.trim()}\n`, { mode: 0o600 });
    const login = await az(
      ["login", "--service-principal", "-u", SP.clientId, "-p", pemPath, "--tenant", CONTOSO, "-o", "json"],
      azEnvFor(dir),
    );
    assert.equal(login.code, 0, login.stderr);
    const entries = JSON.parse(
      readFileSync(join(dir, "service_principal_entries.json"), "utf8"),
    ) as unknown[];
    assert.deepEqual(entries, [{ client_id: SP.clientId, tenant: CONTOSO, certificate: pemPath }]);

    const env = azkeepEnvFor(dir, "home-cert");
    await emu.control.clearRequests();
    const r = await runCli(["import", "az", "--shred"], { env, timeoutMs: 120_000 });
    assert.equal(r.code, 0, `${r.stderr}\n${r.stdout}`);
    const summary = JSON.parse(r.stdout) as {
      servicePrincipals: { clientId: string; credential: string; certificateFile?: string }[];
      shred: { done: boolean; shredded: string[]; certificateFiles?: string[]; note: string };
    };
    assert.deepEqual(summary.servicePrincipals, [
      {
        clientId: SP.clientId,
        tenantId: CONTOSO,
        credential: "certificate",
        source: "service_principal_entries.json",
        certificateFile: pemPath,
      },
    ]);
    assert.equal(summary.shred.done, true);
    assert.ok(summary.shred.shredded.includes(join(dir, "service_principal_entries.json")));
    const { requests } = await emu.control.requests({ endpoint: "token" });
    assert.deepEqual(
      requests.map((q) => [q.grantType, q.clientId, q.status]),
      [["client_credentials", SP.clientId, 200]],
    );
    // The store holds its own copy of the key: the sealed file, never the PEM in clear.
    const keyBody = DEFAULT_SP_KEY_PEM.split("\n")[1]!;
    for (const f of filesUnder(env.AZKEEP_CONFIG_DIR!)) assert.ok(!f.text.includes(keyBody), f.path);
    assert.ok(!r.stdout.includes(keyBody) && !r.stderr.includes(keyBody));

    // The PEM itself is left to the user, and the summary says so with the command that removes it.
    assert.deepEqual(summary.shred.certificateFiles, [pemPath]);
    assert.match(summary.shred.note, /shred -u FILE/);
    assert.match(
      r.stderr,
      new RegExp(`still hold private keys in plain text.*${pemPath.replace(/[.]/g, "\\.")}`),
    );
  });
});
