/**
 * `import az` against fixture files written from the reference schema (az 2.45 MSAL era and
 * az ≤ 2.29 ADAL era), into the in-memory store. Fast: no network, no processes (except the
 * unreadable-file case as root, which runs the built CLI as another uid).
 */
import assert from "node:assert/strict";
import {
  chmodSync,
  chownSync,
  cpSync,
  existsSync,
  linkSync,
  lstatSync,
  readFileSync,
  readdirSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { exitCodeFor } from "../../src/cli/exit-codes.js";
import { AzkeepError } from "../../src/core/errors.js";
import {
  importFromAzureCli,
  identityProviderVerifier,
  planImport,
  type ImportVerifier,
} from "../../src/core/migrate/import-az.js";
import {
  parseAdalExpiresOn,
  parseAzureProfile,
  parseJsonFile,
  parseMsalCache,
} from "../../src/core/migrate/az-files.js";
import { shredFile } from "../../src/core/migrate/shred.js";
import { createMemoryStore } from "../../src/core/store/memory.js";
import type { RefreshTokenEntry, ServicePrincipalEntry } from "../../src/core/store/types.js";
import { OTHER_UID, runAsOtherUser } from "../helpers/other-user.js";
import { publicShipped } from "../helpers/public-copy.js";
import { fakeContext, selfSignedPem, tempDir } from "./helpers.js";

const FIXTURES = fileURLToPath(new URL("./fixtures/", import.meta.url));
const T = "11111111-1111-1111-1111-111111111111";
const ALICE_HA = `aaaaaaaa-0000-0000-0000-000000000001.${T}`;
const SP = "cccccccc-0000-0000-0000-000000000001";

/** Every secret string in the fixtures: none may ever appear in a summary or an error. */
function fixtureSecrets(): string[] {
  const out: string[] = [];
  for (const dir of readdirSync(FIXTURES))
    for (const f of readdirSync(join(FIXTURES, dir))) {
      const text = readFileSync(join(FIXTURES, dir, f), "utf8");
      for (const m of text.matchAll(/FIXTURE-[A-Za-z0-9.~_-]+/g)) out.push(m[0]);
      for (const m of text.matchAll(/eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/g)) out.push(m[0]);
    }
  return [...new Set(out)];
}

function assertNoSecrets(text: string, extra: string[] = []): void {
  for (const s of [...fixtureSecrets(), ...extra]) assert.ok(!text.includes(s), `secret ${s} leaked`);
}

/** Copies a fixture folder into a fresh temporary Azure CLI folder (files 0600 as az writes them). */
function azDir(tmp: string, fixture: string): string {
  const dir = join(tmp, ".azure");
  cpSync(join(FIXTURES, fixture), dir, { recursive: true });
  for (const f of readdirSync(dir)) chmodSync(join(dir, f), f === "azureProfile.json" ? 0o644 : 0o600);
  return dir;
}

const okVerifier = (): ImportVerifier & { calls: string[] } => {
  const calls: string[] = [];
  return {
    calls,
    refreshToken: async (rt) => void calls.push(`rt:${rt.username}`),
    servicePrincipal: async (sp) => void calls.push(`sp:${sp.clientId}`),
  };
};

async function rejects(p: Promise<unknown>, code: string, re: RegExp): Promise<AzkeepError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof AzkeepError, `expected an AzkeepError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, re);
    assert.ok(e.hint, "an error names the next step");
    return e;
  }
  assert.fail("expected a rejection");
}

describe("import az: az 2.45 files (MSAL era)", () => {
  it("moves accounts, the refresh token, valid access tokens and SP secrets into the store", async () => {
    using tmp = tempDir();
    const dir = azDir(tmp.path, "az-2.45");
    const ctx = fakeContext({ home: tmp.path });
    const store = createMemoryStore();
    const summary = await importFromAzureCli(ctx, store, { configDir: dir });

    const profile = await store.readProfile();
    assert.deepEqual(
      profile.subscriptions.map((s) => [s.id.slice(-1), s.user.name, s.isDefault, s.environmentName]),
      [
        ["1", "alice@contoso.com", true, "AzureCloud"],
        ["2", "alice@contoso.com", false, "AzureCloud"],
        ["3", SP, false, "AzureCloud"],
      ],
    );
    assert.equal(profile.subscriptions[0]?.homeTenantId, T);
    assert.deepEqual(profile.subscriptions[0]?.managedByTenants, [
      { tenantId: "22222222-2222-2222-2222-222222222222" },
    ]);

    const secrets = await store.readSecrets();
    assert.equal(secrets.refreshTokens.length, 1);
    const rt = secrets.refreshTokens[0]!;
    assert.deepEqual(
      { ...rt, secret: rt.secret.slice(0, 17) },
      {
        homeAccountId: ALICE_HA,
        username: "alice@contoso.com",
        clientId: "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
        environment: "login.microsoftonline.com",
        cloud: "AzureCloud",
        homeTenantId: T,
        secret: "FIXTURE-RT-alice-",
        familyId: "1",
        lastModified: 1768478400 - 600,
      },
    );
    // Still-valid tokens only: the expired and the about-to-expire (< 5 min) ones are left behind.
    assert.deepEqual(secrets.accessTokens.map((a) => a.secret).sort(), [
      "FIXTURE-AT-alice-tenant1-valid",
      "FIXTURE-AT-sp-valid",
    ]);
    const spAt = secrets.accessTokens.find((a) => a.homeAccountId === null)!;
    assert.equal(spAt.principal, SP);
    assert.equal(spAt.tenantId, T);
    assert.equal(spAt.target, "https://management.core.windows.net//.default");
    const userAt = secrets.accessTokens.find((a) => a.homeAccountId === ALICE_HA)!;
    assert.equal(userAt.principal, "alice@contoso.com");
    assert.equal(userAt.expiresOn, 1768478400 + 3000);
    assert.deepEqual(secrets.servicePrincipals, [
      {
        clientId: SP,
        tenantId: T,
        cloud: "AzureCloud",
        credential: { kind: "secret", secret: "FIXTURE-SP-SECRET-cccc0001~abc" },
      },
    ]);

    assert.equal(summary.configDir, dir);
    assert.equal(summary.accessTokens, 2);
    assert.deepEqual(summary.defaultSubscription, {
      id: "bbbbbbbb-0000-0000-0000-000000000001",
      name: "Contoso Dev",
      changed: true,
    });
    assert.deepEqual(summary.refreshTokens, [
      {
        username: "alice@contoso.com",
        homeAccountId: ALICE_HA,
        cloud: "AzureCloud",
        source: "msal_token_cache.json",
      },
    ]);
    assert.deepEqual(summary.servicePrincipals, [
      { clientId: SP, tenantId: T, credential: "secret", source: "service_principal_entries.json" },
    ]);
    assert.ok(summary.skipped.some((s) => /2 access tokens/.test(s.item)));
    assert.equal(summary.shred, undefined);
    assertNoSecrets(JSON.stringify(summary));
    // Without --shred the originals are untouched.
    assert.ok(existsSync(join(dir, "msal_token_cache.json")));
  });

  it("uses AZURE_CONFIG_DIR, else ~/.azure, from the Context", async () => {
    using tmp = tempDir();
    const dir = azDir(tmp.path, "az-2.45");
    const byHome = await planImport(fakeContext({ home: tmp.path }), join(tmp.path, ".azure"));
    assert.equal(byHome.configDir, dir);
    const ctx = fakeContext({ home: "/nowhere", env: { AZURE_CONFIG_DIR: dir } });
    const summary = await importFromAzureCli(ctx, createMemoryStore());
    assert.equal(summary.configDir, dir);
    const home = fakeContext({ home: tmp.path });
    assert.equal((await importFromAzureCli(home, createMemoryStore())).configDir, dir);
  });

  it("keeps the store's own default and is idempotent", async () => {
    using tmp = tempDir();
    const dir = azDir(tmp.path, "az-2.45");
    const ctx = fakeContext({ home: tmp.path });
    const store = createMemoryStore({
      profile: {
        subscriptions: [
          {
            id: "eeeeeeee-0000-0000-0000-000000000001",
            name: "Mine",
            state: "Enabled",
            user: { name: "carol@contoso.com", type: "user" },
            isDefault: true,
            tenantId: T,
            environmentName: "AzureCloud",
          },
        ],
      },
    });
    const first = await importFromAzureCli(ctx, store, { configDir: dir });
    assert.deepEqual(first.defaultSubscription, {
      id: "eeeeeeee-0000-0000-0000-000000000001",
      name: "Mine",
      changed: false,
    });
    await importFromAzureCli(ctx, store, { configDir: dir });
    const profile = await store.readProfile();
    assert.equal(profile.subscriptions.length, 4);
    assert.equal(profile.subscriptions.filter((s) => s.isDefault).length, 1);
    const secrets = await store.readSecrets();
    assert.equal(secrets.refreshTokens.length, 1);
    assert.equal(secrets.accessTokens.length, 2);
    assert.equal(secrets.servicePrincipals.length, 1);
  });

  it("reads a certificate service principal's PEM into the store", async () => {
    using tmp = tempDir();
    const dir = azDir(tmp.path, "az-2.45");
    const pem = await selfSignedPem();
    const certPath = join(tmp.path, "sp-cert.pem");
    writeFileSync(certPath, pem, { mode: 0o600 });
    const CERT_SP = "cccccccc-0000-0000-0000-000000000002";
    writeFileSync(
      join(dir, "service_principal_entries.json"),
      JSON.stringify([{ client_id: CERT_SP, tenant: T, certificate: certPath, use_cert_sn_issuer: true }]),
    );
    const store = createMemoryStore();
    const summary = await importFromAzureCli(fakeContext({ home: tmp.path }), store, { configDir: dir });
    const sp = (await store.readSecrets()).servicePrincipals[0]!;
    assert.deepEqual(sp.credential, { kind: "certificate", certificatePem: pem, sendX5c: true });
    assert.deepEqual(summary.servicePrincipals[0], {
      clientId: CERT_SP,
      tenantId: T,
      credential: "certificate",
      source: "service_principal_entries.json",
      certificateFile: certPath,
    });
    assert.ok(!JSON.stringify(summary).includes("PRIVATE KEY"));
    assert.ok(summary.skipped.some((s) => s.item === `credential of ${SP}`));
  });

  it("--shred leaves certificate files in place and names them", async () => {
    using tmp = tempDir();
    const dir = azDir(tmp.path, "az-2.45");
    const certPath = join(tmp.path, "sp-cert.pem");
    writeFileSync(certPath, await selfSignedPem(), { mode: 0o600 });
    writeFileSync(
      join(dir, "service_principal_entries.json"),
      JSON.stringify([{ client_id: SP, tenant: T, certificate: certPath }]),
    );
    const summary = await importFromAzureCli(fakeContext({ home: tmp.path }), createMemoryStore(), {
      configDir: dir,
      shred: true,
      verifier: okVerifier(),
    });
    assert.equal(summary.shred?.done, true);
    assert.deepEqual(summary.shred?.certificateFiles, [certPath]);
    assert.ok(existsSync(certPath));
    assert.match(summary.shred?.note ?? "", /still hold private keys in plain text/);
  });

  it("skips accounts in clouds that are not built in, saying why", async () => {
    using tmp = tempDir();
    const dir = azDir(tmp.path, "az-2.45");
    const raw = readFileSync(join(dir, "azureProfile.json"), "utf8").slice(1);
    const profile = JSON.parse(raw) as { subscriptions: { environmentName: string }[] };
    profile.subscriptions[1]!.environmentName = "MyAzureStack";
    writeFileSync(join(dir, "azureProfile.json"), "\ufeff" + JSON.stringify(profile));
    const store = createMemoryStore();
    const summary = await importFromAzureCli(fakeContext({ home: tmp.path }), store, { configDir: dir });
    assert.equal((await store.readProfile()).subscriptions.length, 2);
    const skip = summary.skipped.find((s) => s.item.includes("bbbbbbbb-0000-0000-0000-000000000002"));
    assert.match(skip?.reason ?? "", /MyAzureStack.*not a built-in cloud/);
  });
});

describe("import az: az ≤ 2.29 files (ADAL accessTokens.json)", () => {
  it("imports the ADAL refresh token (account id from the token's claims) and SP secret", async () => {
    using tmp = tempDir();
    const dir = azDir(tmp.path, "az-2.29-adal");
    const store = createMemoryStore();
    const summary = await importFromAzureCli(fakeContext({ home: tmp.path }), store, { configDir: dir });
    const secrets = await store.readSecrets();
    assert.equal(secrets.refreshTokens.length, 1);
    const rt = secrets.refreshTokens[0]!;
    assert.equal(rt.homeAccountId, `aaaaaaaa-0000-0000-0000-000000000002.${T}`);
    assert.equal(rt.username, "bob@contoso.com");
    assert.equal(rt.secret, "FIXTURE-ADAL-RT-bob-0.ATcAImuCVN");
    assert.equal(rt.homeTenantId, T);
    assert.equal(secrets.accessTokens.length, 1);
    assert.equal(secrets.accessTokens[0]!.target, "https://management.core.windows.net//.default");
    assert.deepEqual(
      secrets.servicePrincipals.map((s) => [s.clientId, s.credential.kind]),
      [["cccccccc-0000-0000-0000-000000000009", "secret"]],
    );
    assert.equal((await store.readProfile()).subscriptions[0]?.name, "Bob Sandbox");
    assert.equal(summary.refreshTokens[0]?.source, "accessTokens.json");
    assertNoSecrets(JSON.stringify(summary));
  });

  it("prefers the MSAL cache's refresh token when both files know the user", async () => {
    using tmp = tempDir();
    const dir = azDir(tmp.path, "az-2.45");
    const adal = JSON.parse(readFileSync(join(FIXTURES, "az-2.29-adal", "accessTokens.json"), "utf8")) as {
      userId?: string;
    }[];
    adal[0]!.userId = "alice@contoso.com";
    writeFileSync(join(dir, "accessTokens.json"), JSON.stringify(adal));
    const store = createMemoryStore();
    const summary = await importFromAzureCli(fakeContext({ home: tmp.path }), store, { configDir: dir });
    const rts = (await store.readSecrets()).refreshTokens;
    assert.deepEqual(
      rts.map((r) => r.secret),
      ["FIXTURE-RT-alice-0.AXYZ-family-refresh-token"],
    );
    assert.ok(summary.skipped.some((s) => /superseded/.test(s.reason)));
  });

  it("reads ADAL's local naive expiresOn", () => {
    const t = parseAdalExpiresOn("2020-11-13 14:44:42.492318");
    assert.equal(t, Math.floor(new Date(2020, 10, 13, 14, 44, 42).getTime() / 1000));
    assert.equal(parseAdalExpiresOn("yesterday"), undefined);
  });
});

describe("import az: bad input ends in one error, nothing half-imported", () => {
  const corruptions: [string, string, string, RegExp][] = [
    ["azureProfile.json", '\ufeff{"subscriptions": [', "bad_input", /azureProfile\.json is not valid JSON/],
    ["azureProfile.json", '{"subscriptions": {"id": 1}}', "bad_input", /'subscriptions' is not a list/],
    [
      "msal_token_cache.json",
      '{"RefreshToken": {"k": {"secret": "FIXTURE-RT-alice-0.AXYZ-family-refresh-token" ',
      "bad_input",
      /msal_token_cache\.json is not valid JSON \(line 1, column \d+\)/,
    ],
    [
      "msal_token_cache.json",
      '{"RefreshToken": {"k": {"secret": "FIXTURE-RT-alice-0.AXYZ-family-refresh-token"}}}',
      "bad_input",
      /msal_token_cache\.json has a malformed refresh token #1/,
    ],
    ["msal_token_cache.json", "[]", "bad_input", /is not an MSAL token cache/],
    ["msal_token_cache.json", "", "bad_input", /msal_token_cache\.json is empty/],
    [
      "service_principal_entries.json",
      '[{"client_id": "x", "tenant": "y"}]',
      "bad_input",
      /service_principal_entries\.json has a malformed service principal entry #1 \(no client secret/,
    ],
    ["service_principal_entries.json", '{"client_id": "x"}', "bad_input", /is not a list/],
    ["accessTokens.json", '[{"userId": "bob"}]', "bad_input", /accessTokens\.json has a malformed entry #1/],
    ["accessTokens.json", "not json FIXTURE-ADAL-RT-bob-0.ATcAImuCVN", "bad_input", /is not valid JSON/],
  ];
  for (const [file, content, code, re] of corruptions) {
    it(`${file}: ${re.source.slice(0, 60)}`, async () => {
      using tmp = tempDir();
      const dir = azDir(tmp.path, "az-2.45");
      writeFileSync(join(dir, file), content);
      const store = createMemoryStore();
      const e = await rejects(
        importFromAzureCli(fakeContext({ home: tmp.path }), store, { configDir: dir }),
        code,
        re,
      );
      assert.ok(e.message.includes(join(dir, file)), "the error names the file");
      assertNoSecrets(`${e.message}\n${e.hint ?? ""}`);
      assert.deepEqual(await store.readProfile(), { subscriptions: [] });
      assert.equal((await store.readSecrets()).refreshTokens.length, 0);
    });
  }

  it("a missing certificate file names the file; nothing is imported", async () => {
    using tmp = tempDir();
    const dir = azDir(tmp.path, "az-2.45");
    const missing = join(tmp.path, "gone.pem");
    writeFileSync(
      join(dir, "service_principal_entries.json"),
      JSON.stringify([{ client_id: SP, tenant: T, certificate: missing }]),
    );
    const store = createMemoryStore();
    await rejects(
      importFromAzureCli(fakeContext({ home: tmp.path }), store, { configDir: dir }),
      "bad_input",
      new RegExp(`Cannot read the certificate ${missing}.*ENOENT`),
    );
    assert.equal((await store.readSecrets()).refreshTokens.length, 0);
  });

  it("a certificate file without a private key is refused", async () => {
    using tmp = tempDir();
    const dir = azDir(tmp.path, "az-2.45");
    const pem = (await selfSignedPem()).replace(
      /-----BEGIN PRIVATE KEY-----[\s\S]*?-----END PRIVATE KEY-----\n/,
      "",
    );
    const certPath = join(tmp.path, "cert-only.pem");
    writeFileSync(certPath, pem);
    writeFileSync(
      join(dir, "service_principal_entries.json"),
      JSON.stringify([{ client_id: SP, tenant: T, certificate: certPath }]),
    );
    await rejects(
      importFromAzureCli(fakeContext({ home: tmp.path }), createMemoryStore(), { configDir: dir }),
      "bad_input",
      /cert-only\.pem.*has no private key/,
    );
  });

  it("an encrypted msal_token_cache.bin alone: a clear message, nothing imported", async () => {
    using tmp = tempDir();
    const dir = join(tmp.path, ".azure");
    cpSync(join(FIXTURES, "az-2.45", "azureProfile.json"), join(dir, "azureProfile.json"));
    writeFileSync(join(dir, "msal_token_cache.bin"), Buffer.from([1, 0, 0, 0, 0xd0, 0x8c, 0x9d, 0xdf]));
    const store = createMemoryStore();
    const e = await rejects(
      importFromAzureCli(fakeContext({ home: tmp.path }), store, { configDir: dir }),
      "bad_input",
      /msal_token_cache\.bin is encrypted by the Azure CLI.*cannot import it here/,
    );
    assert.match(e.hint ?? "", /azkeep login/);
    assert.equal((await store.readProfile()).subscriptions.length, 0);
  });

  it("an encrypted .bin beside the plaintext .json: the .json is imported, the .bin ignored", async () => {
    using tmp = tempDir();
    const dir = azDir(tmp.path, "az-2.45");
    writeFileSync(join(dir, "msal_token_cache.bin"), Buffer.from([1, 2, 3]));
    const summary = await importFromAzureCli(fakeContext({ home: tmp.path }), createMemoryStore(), {
      configDir: dir,
    });
    assert.deepEqual(
      summary.files.find((f) => f.file === "msal_token_cache.bin"),
      { file: "msal_token_cache.bin", path: join(dir, "msal_token_cache.bin"), status: "ignored" },
    );
    assert.equal(summary.refreshTokens.length, 1);
  });

  it("--config-dir naming a file: not_found", async () => {
    using tmp = tempDir();
    const file = join(tmp.path, "file");
    writeFileSync(file, "x");
    await rejects(
      importFromAzureCli(fakeContext({ home: tmp.path }), createMemoryStore(), { configDir: file }),
      "not_found",
      /No Azure CLI sign-in found/,
    );
  });

  it("no Azure CLI files: not_found, naming the folder and --config-dir", async () => {
    using tmp = tempDir();
    const e = await rejects(
      importFromAzureCli(fakeContext({ home: tmp.path }), createMemoryStore()),
      "not_found",
      new RegExp(`No Azure CLI sign-in found in ${join(tmp.path, ".azure")}`),
    );
    assert.match(e.hint ?? "", /--config-dir/);
  });

  it("an unreadable file names the file and the error code", async () => {
    using tmp = tempDir();
    const dir = azDir(tmp.path, "az-2.45");
    chmodSync(join(dir, "msal_token_cache.json"), 0o000);
    if (process.getuid?.() !== 0) {
      await rejects(
        importFromAzureCli(fakeContext({ home: tmp.path }), createMemoryStore(), { configDir: dir }),
        "bad_input",
        /Cannot read .*msal_token_cache\.json \(EACCES\)/,
      );
      return;
    }
    // Root reads a 0000 file anyway (CI runs as root): the built CLI runs as another uid, which
    // owns the folder but cannot read the file, from the world-readable copy of what ships.
    chmodSync(tmp.path, 0o755);
    chownTree(tmp.path, OTHER_UID);
    const r = await runAsOtherUser(
      process.execPath,
      [join(publicShipped(), "bin", "azkeep.js"), "import", "az", "--config-dir", dir],
      {
        nproc: 64,
        timeoutMs: 30_000,
        cwd: "/",
        env: {
          PATH: process.env.PATH ?? "/usr/bin:/bin",
          HOME: tmp.path,
          AZKEEP_CONFIG_DIR: join(tmp.path, ".config", "azkeep"),
          XDG_RUNTIME_DIR: join(tmp.path, "run"),
          AZKEEP_STORE_PROVIDER: "passphrase",
          AZKEEP_PASSPHRASE: "correct horse battery staple for tests",
        },
      },
    );
    // bad_input's exit code (docs/exit-codes.md), the message, the next step, no stack trace.
    assert.equal(r.code, exitCodeFor("bad_input"), r.stderr);
    assert.match(r.stderr, /^ERROR: Cannot read .*msal_token_cache\.json \(EACCES\)\.?$/m);
    assert.match(r.stderr, /permissions, then run the import again/);
    assert.doesNotMatch(r.stderr, /^\s+at /m);
    assert.equal(r.stdout, "");
    assertNoSecrets(r.stdout + r.stderr);
    assert.ok(!existsSync(join(tmp.path, ".config", "azkeep", "tokens.sealed")), "nothing imported");
  });
});

function chownTree(path: string, uid: number): void {
  chownSync(path, uid, uid);
  if (lstatSync(path).isDirectory()) for (const n of readdirSync(path)) chownTree(join(path, n), uid);
}

describe("import az --shred", () => {
  it("shreds the plaintext originals after every credential was proven, keeps azureProfile.json", async () => {
    using tmp = tempDir();
    const dir = azDir(tmp.path, "az-2.45");
    const ctx = fakeContext({ home: tmp.path });
    const verifier = okVerifier();
    const summary = await importFromAzureCli(ctx, createMemoryStore(), {
      configDir: dir,
      shred: true,
      verifier,
    });
    assert.deepEqual(verifier.calls, ["rt:alice@contoso.com", `sp:${SP}`]);
    assert.equal(summary.shred?.done, true);
    assert.deepEqual(summary.shred?.shredded, [
      join(dir, "msal_token_cache.json"),
      join(dir, "service_principal_entries.json"),
    ]);
    assert.deepEqual(summary.shred?.kept, []);
    assert.match(summary.shred?.note ?? "", /azureProfile\.json was kept/);
    assert.deepEqual(readdirSync(dir).sort(), ["azureProfile.json"]);
    assertNoSecrets(JSON.stringify(summary) + ctx.lines.join("\n"));
  });

  it("keeps every file and says why when one verification fails (secrets redacted)", async () => {
    using tmp = tempDir();
    const dir = azDir(tmp.path, "az-2.45");
    const before = readdirSync(dir).map((f) => readFileSync(join(dir, f), "utf8"));
    const verifier: ImportVerifier = {
      refreshToken: async (rt: RefreshTokenEntry) => {
        throw new AzkeepError(
          "auth_required",
          `AADSTS700082: The refresh token has expired due to inactivity. token=${rt.secret}\nTrace ID: 1`,
        );
      },
      servicePrincipal: async (_sp: ServicePrincipalEntry) => {},
    };
    const summary = await importFromAzureCli(fakeContext({ home: tmp.path }), createMemoryStore(), {
      configDir: dir,
      shred: true,
      verifier,
    });
    assert.equal(summary.shred?.done, false);
    assert.deepEqual(summary.shred?.shredded, []);
    assert.equal(summary.shred?.kept.length, 2);
    assert.match(summary.shred?.reason ?? "", /alice@contoso\.com: AADSTS700082/);
    assert.deepEqual(
      summary.shred?.verified.map((v) => [v.principal, v.ok]),
      [
        ["alice@contoso.com", false],
        [SP, true],
      ],
    );
    assertNoSecrets(JSON.stringify(summary));
    assert.deepEqual(
      readdirSync(dir).map((f) => readFileSync(join(dir, f), "utf8")),
      before,
    );
  });

  it("keeps the files when they hold credentials that were not imported (no verification tried)", async () => {
    using tmp = tempDir();
    const dir = azDir(tmp.path, "az-2.45");
    const raw = readFileSync(join(dir, "azureProfile.json"), "utf8").slice(1);
    const profile = JSON.parse(raw) as { subscriptions: { environmentName: string }[] };
    profile.subscriptions[2]!.environmentName = "MyAzureStack"; // the service principal's
    writeFileSync(join(dir, "azureProfile.json"), "\ufeff" + JSON.stringify(profile));
    const verifier = okVerifier();
    const summary = await importFromAzureCli(fakeContext({ home: tmp.path }), createMemoryStore(), {
      configDir: dir,
      shred: true,
      verifier,
    });
    assert.equal(summary.shred?.done, false);
    assert.match(
      summary.shred?.reason ?? "",
      /credentials that were not imported \(service principal cccc.*would lose/,
    );
    assert.deepEqual(verifier.calls, []);
    assert.ok(existsSync(join(dir, "service_principal_entries.json")));
    assert.ok(existsSync(join(dir, "msal_token_cache.json")));
  });

  it("keeps the files when nothing could be verified", async () => {
    using tmp = tempDir();
    const dir = join(tmp.path, ".azure");
    cpSync(join(FIXTURES, "az-2.45", "azureProfile.json"), join(dir, "azureProfile.json"));
    const cache = JSON.parse(
      readFileSync(join(FIXTURES, "az-2.45", "msal_token_cache.json"), "utf8"),
    ) as Record<string, unknown>;
    delete cache.RefreshToken;
    writeFileSync(join(dir, "msal_token_cache.json"), JSON.stringify(cache));
    const summary = await importFromAzureCli(fakeContext({ home: tmp.path }), createMemoryStore(), {
      configDir: dir,
      shred: true,
      verifier: okVerifier(),
    });
    assert.equal(summary.shred?.done, false);
    assert.match(summary.shred?.reason ?? "", /nothing could be proven/);
    assert.ok(existsSync(join(dir, "msal_token_cache.json")));
  });

  it("ADAL-era accessTokens.json is shredded too", async () => {
    using tmp = tempDir();
    const dir = azDir(tmp.path, "az-2.29-adal");
    const summary = await importFromAzureCli(fakeContext({ home: tmp.path }), createMemoryStore(), {
      configDir: dir,
      shred: true,
      verifier: okVerifier(),
    });
    assert.deepEqual(summary.shred?.shredded, [join(dir, "accessTokens.json")]);
    assert.deepEqual(readdirSync(dir), ["azureProfile.json"]);
  });

  it("shredFile overwrites the bytes in place before unlinking (seen through a hard link)", async () => {
    using tmp = tempDir();
    const file = join(tmp.path, "secret.json");
    const secret = "FIXTURE-RT-alice-0.AXYZ-family-refresh-token".repeat(2000);
    writeFileSync(file, secret);
    const witness = join(tmp.path, "witness");
    linkSync(file, witness);
    await shredFile(file, fakeContext().random);
    assert.ok(!existsSync(file));
    const after = readFileSync(witness);
    assert.equal(after.length, Buffer.byteLength(secret));
    assert.ok(!after.toString("latin1").includes("FIXTURE"), "the content was overwritten");
  });

  it("shredFile refuses a symlink (it would overwrite the link's target)", async () => {
    using tmp = tempDir();
    const target = join(tmp.path, "target");
    writeFileSync(target, "keep me");
    const link = join(tmp.path, "link");
    symlinkSync(target, link);
    await rejects(shredFile(link, fakeContext().random), "bad_input", /not a regular file/);
    assert.equal(readFileSync(target, "utf8"), "keep me");
  });
});

describe("import az: the identity-provider verifier", () => {
  it("redeems the refresh token at the tenant's token endpoint and stores the rotated one", async () => {
    using tmp = tempDir();
    const dir = azDir(tmp.path, "az-2.45");
    const requests: { url: string; body: URLSearchParams }[] = [];
    const fetch = (async (input: string | URL | Request, init?: RequestInit) => {
      const body = new URLSearchParams(init?.body as string);
      requests.push({ url: input instanceof Request ? input.url : input.toString(), body });
      const answer =
        body.get("grant_type") === "refresh_token"
          ? {
              token_type: "Bearer",
              access_token: "NEW-AT-user",
              refresh_token: "NEW-RT-rotated",
              expires_in: 3600,
              scope: "https://management.core.windows.net//user_impersonation",
            }
          : { token_type: "Bearer", access_token: "NEW-AT-sp", expires_in: 3600 };
      return new Response(JSON.stringify(answer), { headers: { "content-type": "application/json" } });
    }) as typeof globalThis.fetch;
    const ctx = fakeContext({ home: tmp.path, fetch });
    const store = createMemoryStore();
    const plan = await planImport(ctx, dir);
    const summary = await importFromAzureCli(ctx, store, {
      configDir: dir,
      shred: true,
      verifier: identityProviderVerifier(ctx, store, plan),
    });
    assert.equal(summary.shred?.done, true, summary.shred?.reason);
    assert.equal(requests.length, 2);
    assert.equal(requests[0]!.url, `https://login.microsoftonline.com/${T}/oauth2/v2.0/token`);
    assert.equal(requests[0]!.body.get("grant_type"), "refresh_token");
    assert.equal(requests[0]!.body.get("refresh_token"), "FIXTURE-RT-alice-0.AXYZ-family-refresh-token");
    assert.match(
      requests[0]!.body.get("scope") ?? "",
      /^https:\/\/management\.core\.windows\.net\/\/\.default /,
    );
    assert.equal(requests[1]!.body.get("grant_type"), "client_credentials");
    assert.equal(requests[1]!.body.get("client_secret"), "FIXTURE-SP-SECRET-cccc0001~abc");
    const secrets = await store.readSecrets();
    assert.equal(secrets.refreshTokens[0]?.secret, "NEW-RT-rotated");
    assert.ok(
      secrets.accessTokens.some((a) => a.secret === "NEW-AT-user" && a.principal === "alice@contoso.com"),
    );
    assert.ok(secrets.accessTokens.some((a) => a.secret === "NEW-AT-sp" && a.principal === SP));
  });
});

describe("az file readers", () => {
  it("azureProfile.json with and without its BOM, and az's reset-to-{} form", () => {
    const text = '{"subscriptions": [], "installationId": "x"}';
    assert.deepEqual(parseAzureProfile("\ufeff" + text, "p"), { subscriptions: [], installationId: "x" });
    assert.deepEqual(parseAzureProfile(text, "p"), { subscriptions: [], installationId: "x" });
    assert.deepEqual(parseAzureProfile("{}", "p"), { subscriptions: [] });
  });

  it("a JSON syntax error reports line and column, never the text around it", () => {
    const secret = "FIXTURE-RT-supersecret-value";
    try {
      parseJsonFile(`{\n  "secret": "${secret}",\n  oops\n}`, "/x/msal_token_cache.json");
      assert.fail("expected an error");
    } catch (e) {
      assert.ok(e instanceof AzkeepError);
      assert.match(e.message, /^\/x\/msal_token_cache\.json is not valid JSON \(line 3, column \d+\)\.$/);
      assert.ok(!e.message.includes(secret));
    }
  });

  it("MSAL cache: SP access tokens have a null home_account_id; unknown sections are ignored", () => {
    const c = parseMsalCache(
      JSON.stringify({
        AccessToken: {
          k: {
            home_account_id: null,
            environment: "e",
            client_id: "c",
            realm: "t",
            secret: "s",
            expires_on: "123",
            target: "x",
          },
        },
        Future: { z: 1 },
      }),
      "f",
    );
    assert.equal(c.accessTokens[0]?.homeAccountId, null);
    assert.equal(c.accessTokens[0]?.expiresOn, 123);
    assert.deepEqual(c.refreshTokens, []);
  });
});
