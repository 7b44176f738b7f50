/**
 * `azkeep login | account | logout | cloud` end to end: the built CLI in a temporary HOME with a
 * real sealed store (insecure-file provider), against the emulator through its HTTPS proxy with
 * the stock AzureCloud (as az reaches it), and on its plain port as a registered custom cloud.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { completeAuthorize, type Emulator } from "../../src/emulator/index.js";
import { BIN, runCli, tempHome, type CliResult } from "../helpers/cli.js";
import { ALICE, CONTOSO, DEV_SUB, PROD_SUB, SP, TAILSPIN, WOODGROVE, emulator } from "./emulator.js";

const SECRETS = [SP.secret, ALICE.password];

/** The insecure-file key provider (used here so no keyring is needed) warns on every use. */
const withoutStoreWarning = (stderr: string) =>
  stderr
    .split("\n")
    .filter((l) => !l.startsWith("WARNING: The token store's key is kept in a plain file"))
    .join("\n");

function allFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...allFiles(p));
    else out.push(p);
  }
  return out;
}

describe("login, account, logout, cloud (e2e)", { timeout: 600_000 }, () => {
  let emu: Emulator;
  let h: ReturnType<typeof tempHome>;
  let env: Record<string, string>;
  let work: string;
  before(async () => {
    h = tempHome();
    work = mkdtempSync(join(tmpdir(), "azkeep-cli-signin-"));
    emu = await emulator({ https: true, lifetimes: { deviceCodeInterval: 1 } });
    env = { ...h.env, ...emu.env, AZKEEP_STORE_PROVIDER: "insecure-file" };
  });
  after(async () => {
    await emu?.close();
    h?.[Symbol.dispose]();
    rmSync(work, { recursive: true, force: true });
  });
  const cli = async (
    args: string[],
    o: { input?: string; env?: Record<string, string> } = {},
  ): Promise<CliResult> => {
    const r = await runCli(args, {
      env: { ...env, ...o.env },
      timeoutMs: 120_000,
      ...(o.input !== undefined ? { input: o.input } : {}),
    });
    return { ...r, stderr: withoutStoreWarning(r.stderr) };
  };

  function assertNoSecretsOnDisk(): void {
    for (const f of allFiles(h.home)) {
      if (f.includes(`${join(h.home, "emulator")}`)) continue;
      const text = readFileSync(f, "latin1");
      for (const s of SECRETS) assert.ok(!text.includes(s), `${f} holds a secret in plain text`);
    }
  }

  it("service principal through the HTTPS proxy with the stock AzureCloud (--password-stdin)", async () => {
    const r = await cli(
      ["login", "--service-principal", "-u", SP.clientId, "--tenant", CONTOSO, "--password-stdin"],
      { input: SP.secret },
    );
    assert.equal(r.code, 0, r.stderr);
    const subs = JSON.parse(r.stdout) as Record<string, unknown>[];
    assert.deepEqual(
      subs.map((s) => [s.id, s.cloudName, s.isDefault]),
      [[DEV_SUB, "AzureCloud", true]],
    );
    assert.match(r.stdout, /^\[\n {2}\{\n {4}"cloudName": "AzureCloud",/, "az's JSON: sorted keys, indent 2");
    assert.ok((await emu.control.countRequests({ endpoint: "token" })) >= 1);
    const reqs = await emu.control.requests({ endpoint: "token" });
    assert.ok(
      reqs.requests.some((q) => q.host.startsWith("login.microsoftonline.com")),
      JSON.stringify(reqs.requests[0]),
    );
    assert.equal(r.stderr, "");
    assertNoSecretsOnDisk();
    const show = await cli(["account", "show"]);
    assert.equal(show.code, 0, show.stderr);
    const acct = JSON.parse(show.stdout) as Record<string, unknown>;
    assert.equal(acct.environmentName, "AzureCloud");
    assert.deepEqual(acct.user, { name: SP.clientId, type: "servicePrincipal" });
  });

  it("service principal: AZKEEP_CLIENT_SECRET works; -p works and warns about the process list", async () => {
    const a = await cli(["login", "--service-principal", "-u", SP.clientId, "-t", CONTOSO], {
      env: { AZKEEP_CLIENT_SECRET: SP.secret },
    });
    assert.equal(a.code, 0, a.stderr);
    const b = await cli(["login", "--service-principal", "-u", SP.clientId, "-t", CONTOSO, "-p", SP.secret]);
    assert.equal(b.code, 0, b.stderr);
    assert.match(b.stderr, /^WARNING: .*process list/m);
    assert.doesNotMatch(b.stderr, new RegExp(SP.secret));
  });

  it("device code through the proxy: the message on stderr, approval, az's MFA and no-subscription warnings", async () => {
    const child = spawn(process.execPath, [BIN, "login", "--use-device-code"], {
      env: { ...process.env, ...env, NO_COLOR: "1" },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.stdin.end();
    const code = await emu.control.waitForDeviceCode({ timeoutMs: 60_000 });
    await emu.control.approveDeviceCode(code.userCode, ALICE.upn, { mfa: false });
    const exit = await new Promise<number | null>((r) => child.on("close", r));
    assert.equal(exit, 0, stderr);
    assert.match(stderr, new RegExp(`enter the code ${code.userCode} to authenticate`));
    assert.match(stderr, /WARNING: The following tenants require Multi-Factor Authentication/);
    assert.match(stderr, new RegExp(`WARNING: ${WOODGROVE} .*: azkeep login --tenant ${WOODGROVE}`));
    assert.match(stderr, new RegExp(`WARNING: ${TAILSPIN} `));
    const subs = JSON.parse(stdout) as Record<string, unknown>[];
    assert.ok(subs.some((s) => s.id === DEV_SUB));
    assertNoSecretsOnDisk();
  });

  it("account list, set, show; the service principal's accounts are still there (side by side)", async () => {
    const list = await cli(["account", "list", "-o", "table"]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /Name\s+CloudName\s+SubscriptionId\s+TenantId\s+State\s+IsDefault/);
    assert.match(list.stderr, /don't have 'Enabled' state/);
    const all = JSON.parse((await cli(["account", "list", "--all"])).stdout) as {
      id: string;
      user: { name: string };
    }[];
    assert.deepEqual(
      all
        .filter((e) => e.id === DEV_SUB)
        .map((e) => e.user.name)
        .sort(),
      [ALICE.upn, SP.clientId].sort(),
    );
    // Two identities side by side: the table says whose each row is (az never needs to).
    const table = await cli(["account", "list", "--all", "-o", "table"]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /IsDefault\s+User\s*$/m);
    const devRows = table.stdout.split("\n").filter((l) => l.includes(DEV_SUB));
    assert.ok(
      devRows.some((l) => l.trimEnd().endsWith(ALICE.upn)),
      table.stdout,
    );
    assert.ok(
      devRows.some((l) => l.trimEnd().endsWith(SP.clientId)),
      table.stdout,
    );
    const set = await cli(["account", "set", "-s", "CONTOSO PROD"]);
    assert.equal(set.code, 0, set.stderr);
    assert.equal(set.stdout, "");
    const show = JSON.parse((await cli(["account", "show"])).stdout) as { id: string };
    assert.equal(show.id, PROD_SUB);
    const missing = await cli(["account", "set", "-s", "Nope"]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^ERROR: The subscription of 'nope' doesn't exist in cloud 'AzureCloud'\./);
  });

  it("logout --username removes that identity's secrets; logout removes the current one; clear removes all", async () => {
    const r = await cli(["logout", "--username", SP.clientId]);
    assert.equal(r.code, 0, r.stderr);
    const all = JSON.parse((await cli(["account", "list", "--all"])).stdout) as { user: { name: string } }[];
    assert.ok(all.length > 0 && all.every((e) => e.user.name === ALICE.upn));
    // One identity left: no User column, as az's table.
    const single = await cli(["account", "list", "--all", "-o", "table"]);
    assert.match(single.stdout, /IsDefault\s*$/m);
    assert.doesNotMatch(single.stdout, /IsDefault\s+User/);
    assert.equal((await cli(["logout"])).code, 0);
    const show = await cli(["account", "show"]);
    assert.equal(show.code, 1);
    assert.match(show.stderr, /Please run 'azkeep login' to setup account\./);
    await cli(["login", "-u", ALICE.upn, "--password-stdin"], { input: ALICE.password });
    assert.equal((await cli(["account", "clear"])).code, 0);
    const empty = await cli(["account", "list"]);
    assert.equal(empty.stdout.trim(), "[]");
    assert.match(empty.stderr, /Please run "azkeep login" to access your accounts\./);
  });

  it("bad input: missing or malformed certificate, wrong secret, unknown tenant — one ERROR line, nothing stored", async () => {
    await cli(["account", "clear"]);
    const bad = join(work, "bad.pem");
    writeFileSync(bad, "hello\n");
    const cases: [string[], RegExp, number, string?][] = [
      [
        ["--certificate", join(work, "missing.pem")],
        /^ERROR: Cannot read the certificate file .*missing\.pem \(ENOENT\)\./,
        1,
      ],
      [["--certificate", bad], /^ERROR: The certificate file .*bad\.pem is not a PEM file\./, 1],
      [["--password-stdin"], /^ERROR: AADSTS7000215: .*\n.*--certificate/, 1, "wrong-secret"],
    ];
    for (const [extra, re, exit, input] of cases) {
      const r = await cli(
        ["login", "--service-principal", "-u", SP.clientId, "--tenant", CONTOSO, ...extra],
        input ? { input } : {},
      );
      assert.equal(r.code, exit, r.stderr);
      assert.match(r.stderr, re);
      assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
      assert.equal(r.stdout, "");
    }
    const t = await cli(
      ["login", "--service-principal", "-u", SP.clientId, "--tenant", "nosuch.example", "--password-stdin"],
      { input: SP.secret },
    );
    assert.equal(t.code, 1);
    assert.match(t.stderr, /^ERROR: AADSTS90002: /);
    assert.equal((await cli(["account", "list", "--all"])).stdout.trim(), "[]");
  });

  const conflicts: [string[], RegExp][] = [
    [["--identity", "--tenant", CONTOSO], /--identity cannot be combined with --tenant/],
    [
      ["--use-device-code", "-u", "x", "-p", "y"],
      /--use-device-code cannot be combined with --username, --password/,
    ],
    [["--service-principal", "--tenant", CONTOSO], /--service-principal needs -u\/--username/],
    [["--certificate", "x.pem"], /--certificate needs --service-principal/],
    [
      ["--service-principal", "-u", "a", "-t", "b", "-p", "s", "--password-stdin"],
      /--password cannot be combined with --password-stdin/,
    ],
    [["--identity", "--client-id", "a", "--object-id", "b"], /Give only one of --client-id, --object-id/],
    [["--object-id", "b"], /--object-id needs --identity/],
    [["--authority", "https://issuer.example"], /--authority needs --client-id/],
    [["--port", "99999"], /--port '99999' is not a port number/],
    [["--tenant", "bad tenant!"], /'bad tenant!' is not a tenant id or domain/],
    [
      ["-u", "alice@contoso.onmicrosoft.com"],
      /Please specify both username and password in non-interactive mode\./,
    ],
    [["--service-principal", "-u", SP.clientId, "-t", CONTOSO], /A service principal needs a credential/],
  ];
  for (const [args, re] of conflicts) {
    it(`usage error: login ${args.join(" ")}`, async () => {
      const r = await cli(["login", ...args], {
        env: { AZURE_FEDERATED_TOKEN_FILE: "", AZKEEP_CLIENT_SECRET: "" },
      });
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /^ERROR: /);
      assert.match(r.stderr, re);
      assert.equal(r.stderr.split("\n").filter((l) => l.startsWith("ERROR")).length, 1);
    });
  }

  it("cloud register the emulator's plain port, set it, sign in through $BROWSER, show, unregister rules", async () => {
    const reg = await cli([
      "cloud",
      "register",
      "-n",
      "Emulator",
      "--endpoint-resource-manager",
      `${emu.urls.http}/`,
      "--endpoint-active-directory",
      emu.urls.http,
      "--endpoint-active-directory-resource-id",
      "https://management.core.windows.net/",
    ]);
    assert.equal(reg.code, 0, reg.stderr);
    const dup = await cli([
      "cloud",
      "register",
      "-n",
      "emulator",
      "--endpoint-resource-manager",
      `${emu.urls.http}/`,
    ]);
    assert.equal(dup.code, 2);
    assert.match(dup.stderr, /already registered/);
    assert.equal((await cli(["cloud", "set", "-n", "Emulator"])).code, 0);
    const show = JSON.parse((await cli(["cloud", "show"])).stdout) as {
      name: string;
      isActive: boolean;
      endpoints: Record<string, string>;
    };
    assert.equal(show.name, "Emulator");
    assert.equal(show.isActive, true);
    assert.equal(show.endpoints.activeDirectory, emu.urls.http);

    // $BROWSER: a script that writes the address where the test, playing the person, picks it up
    const urlFile = join(work, "browser-url");
    const script = join(work, "browser.sh");
    writeFileSync(script, `#!/bin/sh\nprintf %s "$1" > ${urlFile}\n`);
    chmodSync(script, 0o755);
    const child = spawn(process.execPath, [BIN, "login"], {
      env: { ...process.env, ...env, BROWSER: script, NO_COLOR: "1" },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.stdin.end();
    let url = "";
    for (let i = 0; i < 600 && !url; i++) {
      try {
        url = readFileSync(urlFile, "utf8");
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    assert.match(url, new RegExp(`^${emu.urls.http}/organizations/oauth2/v2.0/authorize\\?`));
    const redirect = await completeAuthorize(url, { username: ALICE.upn, password: ALICE.password });
    const landing = await fetch(redirect.replace("//localhost:", "//127.0.0.1:"));
    assert.match(await landing.text(), /You have signed in to azkeep/);
    const exit = await new Promise<number | null>((r) => child.on("close", r));
    assert.equal(exit, 0, stderr);
    assert.match(stderr, /WARNING: A web browser has been opened at /);
    const subs = JSON.parse(stdout) as { cloudName: string }[];
    assert.ok(subs.length > 0 && subs.every((s) => s.cloudName === "Emulator"));

    const active = await cli(["cloud", "unregister", "-n", "Emulator"]);
    assert.equal(active.code, 2);
    assert.match(active.stderr, /is the active cloud/);
    assert.equal((await cli(["cloud", "set", "-n", "AzureCloud"])).code, 0);
    const builtin = await cli(["cloud", "unregister", "-n", "AzureCloud"]);
    assert.match(builtin.stderr, /built in/);
    assert.equal((await cli(["cloud", "unregister", "-n", "Emulator"])).code, 0);
    const names = (JSON.parse((await cli(["cloud", "list"])).stdout) as { name: string }[]).map(
      (c) => c.name,
    );
    assert.deepEqual(names, ["AzureCloud", "AzureChinaCloud", "AzureUSGovernment"]);
    const mode = statSync(join(h.env.AZKEEP_CONFIG_DIR!, "config.json")).mode & 0o777;
    assert.equal(mode, 0o600);
  });
});
