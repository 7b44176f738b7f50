/**
 * `azkeep doctor` end to end: the built CLI in a fake HOME. Exit codes 0 and 3, the JSON report,
 * `-o table`, the stderr warning, and no planted secret anywhere in the output.
 */
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { runCli, tempHome } from "../helpers/cli.js";

const SECRETS = {
  rt: "PLANTED-cli-refresh-token-7Hq",
  aws: "PLANTED-cli-aws-secret-key-9Xz",
  kube: "PLANTED-cli-kube-token-3Lm",
};

function plant(home: string, rel: string, content: string, mode = 0o600): string {
  const path = join(home, rel);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content);
  chmodSync(path, mode);
  return path;
}

function envFor(h: ReturnType<typeof tempHome>) {
  // Only the fake home: no AZURE_CONFIG_DIR, KUBECONFIG, … from the machine running the tests.
  return {
    ...h.env,
    AZURE_CONFIG_DIR: undefined,
    AZD_CONFIG_DIR: undefined,
    AWS_SHARED_CREDENTIALS_FILE: undefined,
    AWS_CONFIG_FILE: undefined,
    CLOUDSDK_CONFIG: undefined,
    GOOGLE_APPLICATION_CREDENTIALS: undefined,
    KUBECONFIG: undefined,
    AZKEEP_STORE_PROVIDER: undefined,
  };
}

describe("azkeep doctor (built CLI)", { timeout: 120_000 }, () => {
  it("a clean home: exit 0, no findings, no store yet", async () => {
    using h = tempHome();
    const r = await runCli(["doctor"], { env: envFor(h) });
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { atRisk: boolean; findings: unknown[]; store: { state: string } };
    assert.equal(report.atRisk, false);
    assert.deepEqual(report.findings, []);
    assert.equal(report.store.state, "none");
    assert.equal(r.stderr, "");
  });

  it("plaintext credentials: exit 3, findings with modes and fixes, no secret printed", async () => {
    using h = tempHome();
    const cache = plant(
      h.home,
      ".azure/msal_token_cache.json",
      JSON.stringify({
        RefreshToken: {
          k: {
            home_account_id: "o.t",
            environment: "login.microsoftonline.com",
            client_id: "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
            secret: SECRETS.rt,
          },
        },
        Account: {
          a: {
            home_account_id: "o.t",
            environment: "login.microsoftonline.com",
            username: "eve@contoso.com",
          },
        },
      }),
    );
    plant(
      h.home,
      ".aws/credentials",
      `[default]\naws_access_key_id=AKIA1\naws_secret_access_key=${SECRETS.aws}\n`,
      0o644,
    );
    plant(h.home, ".kube/config", `users:\n- name: ci\n  user:\n    token: ${SECRETS.kube}\n`);

    const r = await runCli(["doctor"], { env: envFor(h) });
    assert.equal(r.code, 3, r.stderr);
    const report = JSON.parse(r.stdout) as {
      atRisk: boolean;
      summary: Record<string, number>;
      findings: { tool: string; path: string; risk: string; mode: string; fix: string }[];
    };
    assert.equal(report.atRisk, true);
    assert.deepEqual(report.summary, { high: 3, medium: 0, low: 0 });
    assert.deepEqual(
      report.findings.map((f) => [f.tool, f.risk, f.mode]),
      [
        ["AWS CLI", "high", "0644"],
        ["Azure CLI", "high", "0600"],
        ["kubectl", "high", "0600"],
      ],
    );
    assert.equal(report.findings[1]?.path, cache);
    assert.equal(report.findings[1]?.fix, "azkeep import az --shred");
    assert.match(r.stderr, /^WARNING: 3 plaintext credential finding\(s\) at risk/);
    for (const s of Object.values(SECRETS)) assert.ok(!r.stdout.includes(s) && !r.stderr.includes(s), s);

    const t = await runCli(["doctor", "-o", "table", "--only-show-errors"], { env: envFor(h) });
    assert.equal(t.code, 3);
    assert.equal(t.stderr, "");
    const lines = t.stdout.trimEnd().split("\n");
    assert.match(lines[0]!, /^Risk\s+Tool\s+Path\s+Mode\s+Holds\s+Fix$/);
    assert.equal(lines.length, 2 + 3 + 1, t.stdout);
    assert.match(lines.at(-1)!, /^none\s+azkeep store/);
    for (const s of Object.values(SECRETS)) assert.ok(!t.stdout.includes(s), s);

    const q = await runCli(["doctor", "--query", "findings[?risk=='high'].tool", "-o", "tsv"], {
      env: envFor(h),
    });
    assert.equal(q.code, 3);
    assert.equal(q.stdout, "AWS CLI\nAzure CLI\nkubectl\n");
  });

  it("reports azkeep's own store once it exists", async () => {
    using h = tempHome();
    const env = {
      ...envFor(h),
      AZKEEP_STORE_PROVIDER: "passphrase",
      AZKEEP_PASSPHRASE: "a passphrase for the doctor test",
    };
    plant(h.home, ".azure/azureProfile.json", "\ufeff" + JSON.stringify({ subscriptions: [] }), 0o644);
    plant(
      h.home,
      ".azure/service_principal_entries.json",
      JSON.stringify([{ client_id: "c", tenant: "t", client_secret: "PLANTED-cli-sp-secret-1Ab" }]),
    );
    const imp = await runCli(["import", "az"], { env });
    assert.equal(imp.code, 0, imp.stderr);
    const r = await runCli(["doctor"], { env });
    const report = JSON.parse(r.stdout) as {
      store: { state: string; provider: string; protection: string };
      summary: Record<string, number>;
    };
    assert.equal(report.store.provider, "passphrase");
    assert.match(report.store.protection, /passphrase \(scrypt\)/);
    assert.deepEqual(report.summary, { high: 1, medium: 0, low: 1 });
    assert.equal(r.code, 3);
    assert.ok(!r.stdout.includes("PLANTED-cli-sp-secret-1Ab"));
  });
});
