/**
 * `doctor` against fake homes holding each kind of credential file, with planted fake secrets:
 * findings, risks, modes and fixes are asserted, and no planted secret may appear in the report.
 */
import assert from "node:assert/strict";
import { chmodSync, cpSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { checkAws } from "../../src/core/audit/checks/aws.js";
import { checkAzd } from "../../src/core/audit/checks/azd.js";
import { checkAzureCli } from "../../src/core/audit/checks/azure-cli.js";
import { checkGcloud } from "../../src/core/audit/checks/gcloud.js";
import { checkKubeconfig } from "../../src/core/audit/checks/kube.js";
import { doctorTable, runDoctor, type DoctorReport, type Finding } from "../../src/core/audit/doctor.js";
import type { Env } from "../../src/core/context.js";
import type { StoreStatus } from "../../src/core/store/types.js";
import { fakeContext, selfSignedPem, tempDir } from "../migrate/helpers.js";

const FIXTURES = fileURLToPath(new URL("../migrate/fixtures/", import.meta.url));
const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);

/** A fake home that records every secret planted in it. */
class FakeHome {
  readonly secrets: string[] = [];
  constructor(readonly home: string) {}
  secret(label: string): string {
    const s = `PLANTED-${label}-${this.secrets.length}-Zq8x`;
    this.secrets.push(s);
    return s;
  }
  write(rel: string, content: string | Buffer, mode = 0o600): string {
    const path = join(this.home, rel);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, content);
    chmodSync(path, mode);
    return path;
  }
  azureCli(fixture = "az-2.45", dir = ".azure"): string {
    const target = join(this.home, dir);
    cpSync(join(FIXTURES, fixture), target, { recursive: true });
    chmodSync(target, 0o755);
    for (const f of readdirSync(target))
      chmodSync(join(target, f), f === "azureProfile.json" ? 0o644 : 0o600);
    return target;
  }
}

function assertClean(report: unknown, home: FakeHome): void {
  const full = report !== null && typeof report === "object" && "store" in report;
  const text = JSON.stringify(report) + (full ? JSON.stringify(doctorTable(report)) : "");
  for (const s of home.secrets) assert.ok(!text.includes(s), `planted secret ${s} leaked`);
  for (const s of ["FIXTURE-RT", "FIXTURE-AT", "FIXTURE-SP-SECRET", "FIXTURE-ADAL", "PRIVATE KEY", "eyJ"])
    assert.ok(!text.includes(s), `${s} leaked`);
}

function only(findings: Finding[], path: string): Finding {
  const f = findings.filter((x) => x.path === path);
  assert.equal(f.length, 1, `one finding for ${path}: ${JSON.stringify(findings, null, 1)}`);
  return f[0]!;
}

function ctxFor(home: string, env: Env = {}) {
  return fakeContext({ home, env, nowMs: NOW });
}

describe("doctor: Azure CLI", () => {
  it("flags the token cache, SP secrets, a readable profile and a writable pickle", async () => {
    using tmp = tempDir();
    const h = new FakeHome(tmp.path);
    const dir = h.azureCli();
    h.write(".azure/msal_http_cache.bin", Buffer.from([0x80, 4, 0x95]), 0o666);
    const { findings, checked } = await checkAzureCli(ctxFor(tmp.path));
    assert.ok(checked.includes(join(dir, "msal_token_cache.json")));

    const cache = only(findings, join(dir, "msal_token_cache.json"));
    assert.equal(cache.risk, "high");
    assert.equal(cache.mode, "0600");
    assert.match(cache.holds, /^1 refresh token in plain text \(alice@contoso\.com\): each mints tokens/);
    assert.match(cache.holds, /3 unexpired access tokens/);
    assert.equal(cache.fix, "azkeep import az --shred");

    const sp = only(findings, join(dir, "service_principal_entries.json"));
    assert.equal(sp.risk, "high");
    assert.match(
      sp.holds,
      /service principal credentials in plain text: 1 client secret \(cccccccc-0000-0000-0000-000000000001\)/,
    );

    const profile = only(findings, join(dir, "azureProfile.json"));
    assert.deepEqual([profile.risk, profile.mode, profile.fix], ["low", "0644", `chmod 600 ${profile.path}`]);

    const pickle = only(findings, join(dir, "msal_http_cache.bin"));
    assert.deepEqual([pickle.risk, pickle.mode], ["high", "0666"]);
    assert.match(pickle.holds, /pickle.*runs code/);
    assertClean({ findings }, h);
  });

  it("AZURE_CONFIG_DIR wins over ~/.azure; a group-readable cache gets chmod in its fix", async () => {
    using tmp = tempDir();
    const h = new FakeHome(tmp.path);
    const dir = h.azureCli("az-2.45", "elsewhere/az");
    chmodSync(join(dir, "msal_token_cache.json"), 0o640);
    const { findings } = await checkAzureCli(ctxFor(tmp.path, { AZURE_CONFIG_DIR: dir }));
    const cache = only(findings, join(dir, "msal_token_cache.json"));
    assert.equal(cache.mode, "0640");
    assert.equal(cache.readableByOthers, true);
    assert.match(cache.holds, /readable by other users$/);
    assert.equal(cache.fix, `chmod 600 ${cache.path} && azkeep import az --shred`);
  });

  it("a folder writable by others, the ADAL accessTokens.json and a referenced certificate", async () => {
    using tmp = tempDir();
    const h = new FakeHome(tmp.path);
    const dir = h.azureCli("az-2.29-adal");
    chmodSync(dir, 0o777);
    const pemPath = h.write("certs/sp.pem", await selfSignedPem());
    h.write(
      ".azure/service_principal_entries.json",
      JSON.stringify([{ client_id: "cert-sp", tenant: "t", certificate: pemPath }]),
    );
    const { findings } = await checkAzureCli(ctxFor(tmp.path));
    assert.equal(only(findings, dir).risk, "high");
    assert.equal(only(findings, dir).fix, `chmod 700 ${dir}`);
    const adal = only(findings, join(dir, "accessTokens.json"));
    assert.match(adal.holds, /ADAL-era 1 refresh token and 1 service principal credential/);
    const pem = only(findings, pemPath);
    assert.equal(pem.risk, "high");
    assert.match(pem.holds, /private key and certificate of service principal cert-sp/);
    assert.match(pem.fix, /azkeep import az --shred .*shred -u/);
    // An entry that names only a certificate path holds no secret itself.
    assert.equal(findings.filter((f) => f.path.endsWith("service_principal_entries.json")).length, 0);
    assertClean({ findings }, h);
  });

  it("an emptied cache (after az logout) and an encrypted .bin are not findings", async () => {
    using tmp = tempDir();
    const h = new FakeHome(tmp.path);
    h.write(
      ".azure/msal_token_cache.json",
      JSON.stringify({ AccessToken: {}, RefreshToken: {}, Account: {} }),
    );
    h.write(".azure/msal_token_cache.bin", Buffer.from([1, 2, 3]));
    h.write(".azure/service_principal_entries.json", "[]");
    const { findings } = await checkAzureCli(ctxFor(tmp.path));
    assert.deepEqual(findings, []);
  });

  it("a cache that cannot be parsed is still a plaintext cache", async () => {
    using tmp = tempDir();
    const h = new FakeHome(tmp.path);
    const s = h.secret("rt");
    const p = h.write(".azure/msal_token_cache.json", `{"RefreshToken": {"k": {"secret": "${s}"`);
    const { findings } = await checkAzureCli(ctxFor(tmp.path));
    assert.match(only(findings, p).holds, /could not be parsed/);
    assertClean({ findings }, h);
  });
});

describe("doctor: azd", () => {
  it("flags azd's MSAL cache and service principal secrets; skips emptied entries", async () => {
    using tmp = tempDir();
    const h = new FakeHome(tmp.path);
    const rt = h.secret("azd-rt");
    const cache = h.write(
      ".azd/auth/msal/cache.json",
      JSON.stringify({
        RefreshToken: {
          k: {
            home_account_id: "o.t",
            environment: "login.microsoftonline.com",
            client_id: "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
            secret: rt,
            credential_type: "RefreshToken",
          },
        },
        Account: {
          a: {
            home_account_id: "o.t",
            environment: "login.microsoftonline.com",
            realm: "t",
            username: "dev@contoso.com",
          },
        },
      }),
    );
    const cred = h.write(
      ".azd/auth/credcontoso.onmicrosoft.com.dddddddd-0000-0000-0000-000000000001.json",
      JSON.stringify({ clientSecret: h.secret("azd-sp") }),
      0o644,
    );
    h.write(".azd/auth/credt.emptied.json", "{}");
    h.write(
      ".azd/auth.json",
      JSON.stringify({ auth: { account: { currentUser: { homeAccountId: "o.t" } } } }),
    );
    const { findings } = await checkAzd(ctxFor(tmp.path));
    assert.equal(findings.length, 2);
    const c = only(findings, cache);
    assert.equal(c.risk, "high");
    assert.match(c.holds, /1 refresh token\(s\) in plain text \(dev@contoso\.com\)/);
    assert.match(c.fix, /azd config set auth\.useAzCliAuth true/);
    const s = only(findings, cred);
    assert.match(s.holds, /service principal dddddddd-0000-0000-0000-000000000001: a client secret/);
    assert.equal(s.mode, "0644");
    assert.equal(s.fix, `chmod 600 ${cred} && azd auth logout`);
    assertClean({ findings }, h);
  });

  it("AZD_CONFIG_DIR wins over ~/.azd", async () => {
    using tmp = tempDir();
    const h = new FakeHome(tmp.path);
    const p = h.write("x/auth/credt.c.json", JSON.stringify({ clientCertificate: h.secret("cert") }));
    const { findings } = await checkAzd(ctxFor(tmp.path, { AZD_CONFIG_DIR: join(tmp.path, "x") }));
    assert.match(only(findings, p).holds, /a certificate with its private key/);
  });
});

describe("doctor: AWS", () => {
  it("static keys, session keys, keys in config, SSO tokens and role caches", async () => {
    using tmp = tempDir();
    const h = new FakeHome(tmp.path);
    const creds = h.write(
      ".aws/credentials",
      [
        "[default]",
        "aws_access_key_id = AKIAFAKEFAKEFAKE0001",
        `aws_secret_access_key = ${h.secret("aws-default")}`,
        "",
        "[temp]",
        "aws_access_key_id = ASIAFAKE",
        `aws_secret_access_key = ${h.secret("aws-temp")}`,
        `aws_session_token = ${h.secret("aws-session")}`,
        "[prod]",
        `aws_secret_access_key=${h.secret("aws-prod")}`,
      ].join("\n"),
      0o644,
    );
    const config = h.write(
      ".aws/config",
      `[profile ci]\nregion = eu-west-1\naws_access_key_id = AKIA2\naws_secret_access_key = ${h.secret("aws-ci")}\n[profile sso]\nsso_start_url = https://x\n`,
    );
    const ssoRt = h.write(
      ".aws/sso/cache/aaaa.json",
      JSON.stringify({
        accessToken: h.secret("sso-at"),
        refreshToken: h.secret("sso-rt"),
        expiresAt: "2026-01-15T20:00:00Z",
      }),
    );
    const ssoAt = h.write(
      ".aws/sso/cache/bbbb.json",
      JSON.stringify({ accessToken: h.secret("sso-at2"), expiresAt: "2026-01-15T13:00:00Z" }),
    );
    h.write(
      ".aws/sso/cache/cccc.json",
      JSON.stringify({ accessToken: h.secret("sso-old"), expiresAt: "2026-01-14T13:00:00Z" }),
    );
    const role = h.write(
      ".aws/cli/cache/role.json",
      JSON.stringify({
        Credentials: {
          AccessKeyId: "ASIA",
          SecretAccessKey: h.secret("role"),
          SessionToken: h.secret("rs"),
          Expiration: "2026-01-15T13:00:00Z",
        },
      }),
    );
    const { findings } = await checkAws(ctxFor(tmp.path));
    assert.equal(findings.length, 5, JSON.stringify(findings, null, 1));
    const c = only(findings, creds);
    assert.equal(c.risk, "high");
    assert.match(
      c.holds,
      /long-term AWS access keys in plain text \(profiles: default, prod\); session keys for temp/,
    );
    assert.equal(
      c.fix,
      `chmod 600 ${creds} && aws-vault add default && aws-vault add prod (keys go to the OS keyring), then delete those keys from ${creds}`,
    );
    assert.match(only(findings, config).holds, /profiles: ci/);
    assert.equal(only(findings, ssoRt).risk, "high");
    assert.equal(only(findings, ssoAt).risk, "medium");
    assert.equal(only(findings, role).risk, "medium");
    assertClean({ findings }, h);
  });

  it("AWS_SHARED_CREDENTIALS_FILE; session-only keys are medium", async () => {
    using tmp = tempDir();
    const h = new FakeHome(tmp.path);
    const p = h.write(
      "elsewhere/creds",
      `[x]\naws_secret_access_key = ${h.secret("a")}\naws_session_token = ${h.secret("b")}\n`,
    );
    const { findings } = await checkAws(ctxFor(tmp.path, { AWS_SHARED_CREDENTIALS_FILE: p }));
    assert.equal(only(findings, p).risk, "medium");
  });
});

describe("doctor: gcloud", () => {
  it("credential databases, legacy adc.json, ADC and GOOGLE_APPLICATION_CREDENTIALS", async () => {
    using tmp = tempDir();
    const h = new FakeHome(tmp.path);
    const g = ".config/gcloud";
    const db = h.write(
      `${g}/credentials.db`,
      Buffer.concat([
        Buffer.from("SQLite format 3\0"),
        Buffer.from(`{"refresh_token": "${h.secret("g-rt")}"}`),
      ]),
    );
    const at = h.write(`${g}/access_tokens.db`, Buffer.from(`SQLite format 3\0ya29.${h.secret("g-at")}`));
    const legacy = h.write(
      `${g}/legacy_credentials/me@example.com/adc.json`,
      JSON.stringify({
        type: "authorized_user",
        client_id: "x",
        client_secret: "y",
        refresh_token: h.secret("l"),
      }),
    );
    const adc = h.write(
      `${g}/application_default_credentials.json`,
      JSON.stringify({ type: "service_account", private_key: h.secret("pk"), client_email: "sa@p.iam" }),
      0o644,
    );
    const wif = h.write(
      "wif.json",
      JSON.stringify({
        type: "external_account",
        audience: "//iam",
        credential_source: { file: "/var/run/token" },
      }),
    );
    const key = h.write(
      "key.json",
      JSON.stringify({
        type: "impersonated_service_account",
        source_credentials: { type: "authorized_user", refresh_token: h.secret("imp") },
      }),
    );
    let r = await checkGcloud(ctxFor(tmp.path, { GOOGLE_APPLICATION_CREDENTIALS: key }));
    assert.equal(r.findings.length, 5, JSON.stringify(r.findings, null, 1));
    assert.match(only(r.findings, db).holds, /refresh tokens in plain text \(SQLite\)/);
    assert.equal(only(r.findings, at).risk, "medium");
    assert.match(only(r.findings, legacy).holds, /user refresh token/);
    const a = only(r.findings, adc);
    assert.match(a.holds, /service account private key.*readable by other users/);
    assert.equal(a.fix, `chmod 600 ${adc} && gcloud auth application-default revoke`);
    assert.equal(only(r.findings, key).risk, "high");
    assertClean(r, h);
    r = await checkGcloud(
      ctxFor(tmp.path, { GOOGLE_APPLICATION_CREDENTIALS: wif, CLOUDSDK_CONFIG: "/nonexistent" }),
    );
    assert.deepEqual(r.findings, [], "workload identity federation holds no secret");
  });
});

describe("doctor: kubeconfigs", () => {
  const kubeconfig = (users: unknown[]) =>
    JSON.stringify({ apiVersion: "v1", kind: "Config", clusters: [], contexts: [], users });

  it("embedded tokens, client keys and auth-provider refresh tokens; exec plugins are fine", async () => {
    using tmp = tempDir();
    const h = new FakeHome(tmp.path);
    const yaml = [
      "apiVersion: v1",
      "kind: Config",
      "users:",
      "- name: sa",
      "  user:",
      `    token: ${h.secret("kube-token")}`,
      "- name: admin",
      "  user:",
      "    client-certificate-data: Q0VSVA==",
      `    client-key-data: ${h.secret("kube-key")}`,
      "- name: aad",
      "  user:",
      "    auth-provider:",
      "      name: azure",
      "      config:",
      `        access-token: ${h.secret("kube-at")}`,
      `        refresh-token: ${h.secret("kube-rt")}`,
      "- name: kubelogin",
      "  user:",
      "    exec:",
      "      apiVersion: client.authentication.k8s.io/v1beta1",
      "      command: kubelogin",
      "",
    ].join("\n");
    const p = h.write(".kube/config", yaml, 0o644);
    const { findings } = await checkKubeconfig(ctxFor(tmp.path));
    const f = only(findings, p);
    assert.equal(f.risk, "high");
    assert.equal(
      f.holds,
      "embedded credentials in plain text (user sa: bearer token; user admin: client private key; user aad: refresh token, access token); readable by other users",
    );
    assert.match(
      f.fix,
      /^chmod 600 .* && replace embedded credentials .*kubelogin convert-kubeconfig -l azurecli/,
    );
    assertClean({ findings }, h);
  });

  it("KUBECONFIG lists several files; exec-only is clean; invalid YAML is reported low", async () => {
    using tmp = tempDir();
    const h = new FakeHome(tmp.path);
    const clean = h.write("k/clean", kubeconfig([{ name: "x", user: { exec: { command: "kubelogin" } } }]));
    const idOnly = h.write(
      "k/id",
      kubeconfig([
        { name: "o", user: { "auth-provider": { name: "oidc", config: { "id-token": h.secret("id") } } } },
      ]),
    );
    const broken = h.write("k/broken", "users: [\n  - name: x\n    user: {token: ");
    const { findings, checked } = await checkKubeconfig(
      ctxFor(tmp.path, { KUBECONFIG: [clean, idOnly, broken, "/nonexistent"].join(":") }),
    );
    assert.deepEqual(checked, [clean, idOnly, broken, "/nonexistent"]);
    assert.equal(findings.length, 2);
    assert.equal(only(findings, idOnly).risk, "medium");
    assert.equal(only(findings, broken).risk, "low");
    assertClean({ findings }, h);
  });
});

describe("doctor: the whole report", () => {
  const keyring: StoreStatus = { provider: "keyring", configDir: "/x", files: [], warnings: [] };

  it("an empty home: nothing at risk, no store yet", async () => {
    using tmp = tempDir();
    const r = await runDoctor(ctxFor(tmp.path));
    assert.equal(r.atRisk, false);
    assert.deepEqual(r.findings, []);
    assert.deepEqual(r.summary, { high: 0, medium: 0, low: 0 });
    assert.equal(r.store.state, "none");
    assert.match(r.store.protection, /azkeep login/);
    assert.ok(r.checked.includes(join(tmp.path, ".kube", "config")));
  });

  it("low findings alone are not 'at risk'", async () => {
    using tmp = tempDir();
    const h = new FakeHome(tmp.path);
    h.write(".azure/azureProfile.json", '\ufeff{"subscriptions": []}', 0o644);
    const r = await runDoctor(ctxFor(tmp.path), { storeStatus: async () => keyring });
    assert.deepEqual(r.summary, { high: 0, medium: 0, low: 1 });
    assert.equal(r.atRisk, false);
    assert.equal(r.store.state, "ok");
    assert.match(r.store.protection, /OS keyring/);
  });

  it("sorts by risk, counts, and reports the store's weaknesses", async () => {
    using tmp = tempDir();
    const h = new FakeHome(tmp.path);
    h.azureCli();
    const storeDir = join(tmp.path, ".config", "azkeep");
    mkdirSync(storeDir, { recursive: true, mode: 0o700 });
    const sealed = h.write(".config/azkeep/tokens.sealed", "x", 0o644);
    const r: DoctorReport = await runDoctor(ctxFor(tmp.path), {
      storeStatus: async () => ({
        provider: "insecure-file",
        configDir: storeDir,
        files: [
          { path: storeDir, mode: "0700", exists: true },
          { path: sealed, mode: "0644", exists: true },
        ],
        warnings: [],
      }),
    });
    assert.equal(r.atRisk, true);
    assert.deepEqual(r.summary, { high: 3, medium: 1, low: 1 });
    assert.deepEqual(
      r.findings.map((f) => f.risk),
      ["high", "high", "high", "medium", "low"],
    );
    assert.equal(r.store.state, "warning");
    const loose = r.findings.find((f) => f.path === sealed)!;
    assert.deepEqual([loose.tool, loose.fix], ["azkeep", `chmod 600 ${sealed}`]);
    assert.ok(r.findings.some((f) => f.tool === "azkeep" && /store migrate/.test(f.fix)));
    const rows = doctorTable(r);
    assert.deepEqual(Object.keys(rows[0]!), ["Risk", "Tool", "Path", "Mode", "Holds", "Fix"]);
    assert.equal(rows.at(-1)!.Tool, "azkeep store");
    assertClean(r, h);
  });

  it("a store that cannot be read is reported, not thrown", async () => {
    using tmp = tempDir();
    const r = await runDoctor(ctxFor(tmp.path), {
      storeStatus: () =>
        Promise.reject(Object.assign(new Error("The store is damaged."), { hint: "Run `azkeep login`." })),
    });
    assert.equal(r.store.state, "error");
    assert.match(r.store.protection, /cannot tell: The store is damaged\. Run `azkeep login`\./);
  });
});
