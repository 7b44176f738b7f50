import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { readConfig, updateConfig } from "../../src/core/config.js";
import { createNodeContext } from "../../src/core/context.js";
import { AzkeepError } from "../../src/core/errors.js";
import { createFileStore } from "../../src/core/store/file-store.js";
import { KEPT_ASIDE } from "../../src/core/store/files.js";
import { migrateStore, openStore } from "../../src/core/store/index.js";
import type { KeyProvider } from "../../src/core/store/provider.js";
import { createMemoryProvider } from "../../src/core/store/providers/memory.js";
import { HEADER_BYTES } from "../../src/core/store/sealed.js";
import { accessToken, refreshToken, signIn } from "./contract.js";
import { tempStoreDir, type TempStoreDir } from "./helpers.js";

const INSECURE = { AZKEEP_STORE_PROVIDER: "insecure-file" };
const PASS = { AZKEEP_STORE_PROVIDER: "passphrase", AZKEEP_PASSPHRASE: "correct horse battery staple" };

async function seed(tmp: TempStoreDir, env: Record<string, string> = INSECURE, secret = "rt-seed-secret") {
  const store = createFileStore(tmp.ctx(env));
  await store.update((s) => signIn(s, secret));
  return store;
}

function isDamaged(e: unknown, re?: RegExp): boolean {
  return (
    e instanceof AzkeepError &&
    e.code === "store_damaged" &&
    /azkeep login/.test(e.hint ?? "") &&
    /moved aside/.test(e.message) &&
    (re ? re.test(e.message) : true)
  );
}

const aside = (dir: string, name: string) => readdirSync(dir).filter((n) => n.startsWith(`${name}.damaged-`));

describe("file store: layout", () => {
  it("profile.json is plain JSON without BOM or secrets; tokens.sealed is a sealed blob; config names the key", async () => {
    using tmp = tempStoreDir();
    await seed(tmp);
    const profile = readFileSync(join(tmp.dir, "profile.json"));
    assert.notEqual(profile[0], 0xef, "byte-order mark written");
    assert.equal((JSON.parse(profile.toString()) as { subscriptions: unknown[] }).subscriptions.length, 1);
    assert.equal(profile.indexOf("rt-seed-secret"), -1);
    const sealed = readFileSync(join(tmp.dir, "tokens.sealed"));
    assert.equal(sealed.subarray(0, 4).toString(), "AZKS");
    const config = await readConfig(tmp.ctx());
    assert.equal(config.store?.key?.provider, "insecure-file");
    assert.equal(sealed.subarray(5, 21).toString("hex"), config.store?.key?.keyId);
  });

  it("reads a profile.json that has a byte-order mark (copied from the Azure CLI)", async () => {
    using tmp = tempStoreDir();
    await seed(tmp);
    const p = join(tmp.dir, "profile.json");
    writeFileSync(p, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), readFileSync(p)]));
    assert.equal((await createFileStore(tmp.ctx(INSECURE)).readProfile()).subscriptions.length, 1);
  });
});

describe("file store: permissions are checked on every read", () => {
  const cases: [string, string, number, RegExp][] = [
    ["tokens.sealed 0644", "tokens.sealed", 0o644, /chmod 600 .*tokens\.sealed/],
    ["tokens.sealed 0640", "tokens.sealed", 0o640, /chmod 600 .*tokens\.sealed/],
    ["profile.json 0604", "profile.json", 0o604, /chmod 600 .*profile\.json/],
    ["the folder 0755", "", 0o755, /chmod 700 /],
  ];
  for (const [name, file, mode, hint] of cases) {
    it(`${name} is refused with the chmod that repairs it`, async () => {
      using tmp = tempStoreDir();
      await seed(tmp);
      chmodSync(join(tmp.dir, file), mode);
      const store = createFileStore(tmp.ctx(INSECURE));
      const read = file === "profile.json" ? () => store.readProfile() : () => store.readSecrets();
      await assert.rejects(
        read(),
        (e: AzkeepError) => e.code === "store_unavailable" && hint.test(e.hint ?? ""),
      );
      chmodSync(join(tmp.dir, file), file ? 0o600 : 0o700);
      await read();
    });
  }
});

describe("file store: damage", () => {
  it("every single-byte change of tokens.sealed is detected through the store, moved aside, then reads empty", async () => {
    using tmp = tempStoreDir();
    await seed(tmp);
    const path = join(tmp.dir, "tokens.sealed");
    const good = readFileSync(path);
    const ctx = tmp.ctx(INSECURE);
    for (let i = 0; i < good.length; i++) {
      const bad = Buffer.from(good);
      bad[i] = bad[i]! ^ (1 << (i % 8));
      writeFileSync(path, bad, { mode: 0o600 });
      const store = createFileStore(ctx);
      await assert.rejects(store.readSecrets(), (e) => isDamaged(e), `byte ${i} not detected`);
      assert.equal(existsSync(path), false, "damaged file still in place");
      assert.deepEqual((await store.readSecrets()).refreshTokens, [], "a damaged store was half-read");
    }
    // Only the newest KEPT_ASIDE copies stay: the last damaged bytes are among them, older ones are gone.
    const kept = aside(tmp.dir, "tokens.sealed");
    assert.equal(kept.length, KEPT_ASIDE, `kept aside: ${kept.join(", ")}`);
    const last = Buffer.from(good);
    last[good.length - 1] = last[good.length - 1]! ^ (1 << ((good.length - 1) % 8));
    assert.ok(
      kept.some((n) => readFileSync(join(tmp.dir, n)).equals(last)),
      "the newest damaged copy was deleted instead of an old one",
    );
  });

  const damage: [string, (b: Buffer) => Buffer, RegExp][] = [
    ["truncated to half", (b) => b.subarray(0, b.length >> 1), /integrity|truncated/],
    ["truncated to the header", (b) => b.subarray(0, HEADER_BYTES), /truncated/],
    ["empty", () => Buffer.alloc(0), /truncated/],
    [
      "unknown version",
      (b) => Buffer.concat([b.subarray(0, 4), Buffer.from([9]), b.subarray(5)]),
      /version 9/,
    ],
    ["replaced by plaintext JSON", () => Buffer.from('{"refreshTokens":[]}'), /not an azkeep sealed store/],
  ];
  for (const [name, mutate, re] of damage) {
    it(`${name}: one store_damaged error naming the next step; the file is kept aside`, async () => {
      using tmp = tempStoreDir();
      await seed(tmp);
      const path = join(tmp.dir, "tokens.sealed");
      const original = readFileSync(path);
      writeFileSync(path, mutate(original), { mode: 0o600 });
      const store = createFileStore(tmp.ctx(INSECURE));
      await assert.rejects(store.readSecrets(), (e) => isDamaged(e, re));
      const kept = aside(tmp.dir, "tokens.sealed");
      assert.equal(kept.length, 1);
      assert.deepEqual(readFileSync(join(tmp.dir, kept[0]!)), mutate(original));
      // The accounts need sign-in; the next write (a sign-in) works and uses the same provider.
      await store.update((s) => void s.secrets.refreshTokens.push(refreshToken("rt-after")));
      assert.equal((await store.readSecrets()).refreshTokens[0]?.secret, "rt-after");
      assert.equal((await readConfig(tmp.ctx())).store?.key?.provider, "insecure-file");
    });
  }

  it("a missing key (keyring entry gone, reboot): store_damaged saying to sign in; next sign-in makes a new key", async () => {
    using tmp = tempStoreDir();
    const fake = createMemoryProvider({ ctx: tmp.ctx() });
    const options = { provider: "memory" as const, providers: { memory: fake } };
    const store = createFileStore(tmp.ctx(), options);
    await store.update((s) => void s.secrets.refreshTokens.push(refreshToken("rt-x")));
    const before = (await readConfig(tmp.ctx())).store!.key!;
    await fake.deleteKey(before);
    const fresh = createFileStore(tmp.ctx(), options);
    await assert.rejects(fresh.readSecrets(), (e) => isDamaged(e, /key is not in the memory provider/));
    await fresh.update((s) => void s.secrets.refreshTokens.push(refreshToken("rt-y")));
    const after = (await readConfig(tmp.ctx())).store!.key!;
    assert.equal(after.provider, "memory");
    assert.notEqual(after.keyId, before.keyId);
  });

  it("an update on a damaged store (a sign-in after a reboot) moves it aside, warns, and works on an empty store", async () => {
    using tmp = tempStoreDir();
    await seed(tmp);
    const path = join(tmp.dir, "tokens.sealed");
    writeFileSync(path, readFileSync(path).subarray(0, 40), { mode: 0o600 });
    tmp.log.length = 0;
    const store = createFileStore(tmp.ctx());
    const seen = await store.update((s) => {
      const n = s.secrets.refreshTokens.length;
      s.secrets.refreshTokens.push(refreshToken("rt-fresh-sign-in"));
      return n;
    });
    assert.equal(seen, 0, "the change saw a half-read store");
    assert.ok(tmp.log.some((l) => /^WARNING: .*moved aside.*azkeep login/.test(l)));
    assert.equal(aside(tmp.dir, "tokens.sealed").length, 1);
    assert.equal((await store.readSecrets()).refreshTokens[0]?.secret, "rt-fresh-sign-in");
  });

  it("a file system failure is one store_unavailable error naming the path, not a stack trace", async () => {
    using tmp = tempStoreDir();
    await seed(tmp);
    const path = join(tmp.dir, "tokens.sealed");
    rmSync(path);
    mkdirSync(path, { mode: 0o700 });
    await assert.rejects(
      createFileStore(tmp.ctx()).readSecrets(),
      (e: AzkeepError) =>
        e.code === "store_unavailable" && e.message.includes(path) && /is a folder/.test(e.message),
    );
  });

  it("a provider that hands back another key: store_damaged saying so, moved aside", async () => {
    using tmp = tempStoreDir();
    await createFileStore(tmp.ctx(), { provider: "memory" }).update(
      (s) => void s.secrets.refreshTokens.push(refreshToken("rt")),
    );
    const liar: KeyProvider = {
      ...createMemoryProvider({ ctx: tmp.ctx() }),
      getKey: async () => new Uint8Array(32).fill(9),
    };
    const store = createFileStore(tmp.ctx(), { provider: "memory", providers: { memory: liar } });
    await assert.rejects(store.readSecrets(), (e) => isDamaged(e, /not the one that sealed it/));
  });

  it("a provider that cannot answer is store_unavailable and the file is left alone", async () => {
    using tmp = tempStoreDir();
    const broken: KeyProvider = {
      ...createMemoryProvider({ ctx: tmp.ctx() }),
      getKey: () =>
        Promise.reject(new AzkeepError("store_unavailable", "keyring locked", { hint: "unlock it" })),
    };
    await createFileStore(tmp.ctx(), { provider: "memory" }).update(
      (s) => void s.secrets.refreshTokens.push(refreshToken("rt")),
    );
    const store = createFileStore(tmp.ctx(), { provider: "memory", providers: { memory: broken } });
    await assert.rejects(store.readSecrets(), (e: AzkeepError) => e.code === "store_unavailable");
    assert.deepEqual(aside(tmp.dir, "tokens.sealed"), []);
  });

  it("a damaged profile.json is moved aside with the same clear error; the sealed copy then answers", async () => {
    using tmp = tempStoreDir();
    const sealedProfile = await (await seed(tmp)).readProfile();
    writeFileSync(join(tmp.dir, "profile.json"), '{"subscriptions": [', { mode: 0o600 });
    const store = createFileStore(tmp.ctx(INSECURE));
    await assert.rejects(store.readProfile(), (e) => isDamaged(e, /profile/));
    assert.equal(aside(tmp.dir, "profile.json").length, 1);
    // tokens.sealed holds the profile as azkeep last wrote it (integrity.ts): nothing is lost.
    assert.deepEqual(await store.readProfile(), sealedProfile);
    await store.update(() => {});
    assert.deepEqual(JSON.parse(readFileSync(join(tmp.dir, "profile.json"), "utf8")), sealedProfile);
  });
});

describe("file store: passphrase", () => {
  it("a wrong passphrase is refused without moving the store; the right one opens it", async () => {
    using tmp = tempStoreDir();
    await seed(tmp, PASS);
    const wrong = createFileStore(tmp.ctx({ AZKEEP_PASSPHRASE: "not the passphrase" }));
    await assert.rejects(
      wrong.readSecrets(),
      (e: AzkeepError) =>
        e.code === "store_unavailable" &&
        /passphrase does not open/.test(e.message) &&
        /AZKEEP_PASSPHRASE/.test(e.hint ?? ""),
    );
    assert.deepEqual(aside(tmp.dir, "tokens.sealed"), []);
    assert.equal((await createFileStore(tmp.ctx(PASS)).readSecrets()).refreshTokens.length, 1);
  });

  it("no passphrase and no terminal: store_unavailable naming every way to give one", async () => {
    using tmp = tempStoreDir();
    await seed(tmp, PASS);
    await assert.rejects(
      createFileStore(tmp.ctx()).readSecrets(),
      (e: AzkeepError) =>
        e.code === "store_unavailable" &&
        /AZKEEP_PASSPHRASE_FILE/.test(e.hint ?? "") &&
        /--passphrase-file/.test(e.hint ?? ""),
    );
  });

  it("--passphrase-file / AZKEEP_PASSPHRASE_FILE work; scrypt parameters are recorded; short passphrases refused", async () => {
    using tmp = tempStoreDir();
    const file = join(tmp.root, "pass.txt");
    writeFileSync(file, "a file passphrase\n", { mode: 0o600 });
    await seed(tmp, { AZKEEP_STORE_PROVIDER: "passphrase", AZKEEP_PASSPHRASE_FILE: file });
    assert.equal(
      (await createFileStore(tmp.ctx(), { passphraseFile: file }).readSecrets()).refreshTokens.length,
      1,
    );
    assert.deepEqual((await readConfig(tmp.ctx())).store?.key?.scrypt, { N: 32768, r: 8, p: 1 });
    using other = tempStoreDir();
    await assert.rejects(
      seed(other, { AZKEEP_STORE_PROVIDER: "passphrase", AZKEEP_PASSPHRASE: "short" }),
      /at least 8/,
    );
  });
});

describe("file store: provider choice", () => {
  const unavailable = (name: "keyring" | "keyutils"): KeyProvider => ({
    ...createMemoryProvider({ ctx: createNodeContext({ env: {} }) }),
    name,
    createKey: () => Promise.reject(new AzkeepError("store_unavailable", `${name} is not here`)),
  });

  it("automatic: keyring when it answers", async () => {
    using tmp = tempStoreDir();
    const keyring: KeyProvider = { ...createMemoryProvider({ ctx: tmp.ctx() }), name: "keyring" };
    await createFileStore(tmp.ctx(), { providers: { keyring, keyutils: unavailable("keyutils") } }).update(
      (s) => void s.secrets.accessTokens.push(accessToken("a")),
    );
    assert.equal((await readConfig(tmp.ctx())).store?.key?.provider, "keyring");
  });

  it("automatic: keyutils when the keyring does not answer", async () => {
    using tmp = tempStoreDir();
    const keyutils: KeyProvider = { ...createMemoryProvider({ ctx: tmp.ctx() }), name: "keyutils" };
    await createFileStore(tmp.ctx(), { providers: { keyring: unavailable("keyring"), keyutils } }).update(
      (s) => void s.secrets.accessTokens.push(accessToken("a")),
    );
    assert.equal((await readConfig(tmp.ctx())).store?.key?.provider, "keyutils");
  });

  it("automatic: passphrase when one is given and neither keyring answers", async () => {
    using tmp = tempStoreDir();
    const providers = { keyring: unavailable("keyring"), keyutils: unavailable("keyutils") };
    await createFileStore(tmp.ctx({ AZKEEP_PASSPHRASE: PASS.AZKEEP_PASSPHRASE }), { providers }).update(
      (s) => void s.secrets.accessTokens.push(accessToken("a")),
    );
    assert.equal((await readConfig(tmp.ctx())).store?.key?.provider, "passphrase");
  });

  it("automatic: nothing available → one error listing every option; nothing written", async () => {
    using tmp = tempStoreDir();
    const providers = { keyring: unavailable("keyring"), keyutils: unavailable("keyutils") };
    await assert.rejects(
      createFileStore(tmp.ctx(), { providers }).update(
        (s) => void s.secrets.accessTokens.push(accessToken("a")),
      ),
      (e: AzkeepError) =>
        e.code === "store_unavailable" &&
        /keyring: keyring is not here/.test(e.message) &&
        /keyutils: keyutils is not here/.test(e.message) &&
        /passphrase: no terminal/.test(e.message) &&
        /insecure-file/.test(e.hint ?? "") &&
        /AZKEEP_STORE_PROVIDER=memory/.test(e.hint ?? ""),
    );
    assert.equal(existsSync(join(tmp.dir, "tokens.sealed")), false);
  });

  it("an explicit AZKEEP_STORE_PROVIDER never falls back to another provider", async () => {
    using tmp = tempStoreDir();
    await assert.rejects(
      createFileStore(tmp.ctx({ AZKEEP_STORE_PROVIDER: "keyring" }), {
        providers: { keyring: unavailable("keyring") },
      }).update((s) => void s.secrets.accessTokens.push(accessToken("a"))),
      (e: AzkeepError) => e.code === "store_unavailable" && /keyring is not here/.test(e.message),
    );
  });

  it("a bad AZKEEP_STORE_PROVIDER is a usage error listing the names", async () => {
    using tmp = tempStoreDir();
    await assert.rejects(
      openStore(tmp.ctx({ AZKEEP_STORE_PROVIDER: "vault" })),
      (e: AzkeepError) =>
        e.code === "usage" && /keyring, keyutils, passphrase, insecure-file, memory/.test(e.hint ?? ""),
    );
  });

  it("the chosen provider never changes silently: a different AZKEEP_STORE_PROVIDER later is an error naming migrate", async () => {
    using tmp = tempStoreDir();
    await seed(tmp);
    await assert.rejects(
      createFileStore(tmp.ctx(PASS)).update((s) => void s.secrets.accessTokens.push(accessToken("a"))),
      (e: AzkeepError) => e.code === "config" && /azkeep store migrate --to passphrase/.test(e.hint ?? ""),
    );
    assert.equal((await readConfig(tmp.ctx())).store?.key?.provider, "insecure-file");
  });

  it("AZKEEP_STORE_PROVIDER=memory keeps nothing on disk", async () => {
    using tmp = tempStoreDir();
    const store = await openStore(tmp.ctx({ AZKEEP_STORE_PROVIDER: "memory" }));
    await store.update((s) => void s.secrets.refreshTokens.push(refreshToken("rt-mem")));
    assert.equal((await store.readSecrets()).refreshTokens.length, 1);
    assert.equal(existsSync(tmp.dir), false);
    assert.equal((await store.status()).provider, "memory");
  });
});

describe("file store: insecure-file opt-in", () => {
  it("is remembered in config.json and warned about on every use", async () => {
    using tmp = tempStoreDir();
    await seed(tmp);
    const optIn = (await readConfig(tmp.ctx())).store?.insecureFileOptIn;
    assert.equal(optIn?.via, "AZKEEP_STORE_PROVIDER");
    for (let i = 0; i < 3; i++) {
      tmp.log.length = 0;
      await createFileStore(tmp.ctx()).readSecrets(); // later uses need no env: the choice is remembered
      assert.ok(
        tmp.log.some((l) => /^WARNING: .*plain file.*store migrate/.test(l)),
        `use ${i} not warned`,
      );
    }
  });

  it("config.json naming insecure-file without the opt-in is refused for writing", async () => {
    using tmp = tempStoreDir();
    await seed(tmp);
    await updateConfig(tmp.ctx(), (c) => void delete c.store!.insecureFileOptIn);
    await assert.rejects(
      createFileStore(tmp.ctx()).update((s) => void s.secrets.accessTokens.push(accessToken("a"))),
      (e: AzkeepError) => e.code === "store_unavailable" && /opt-in/.test(e.message),
    );
  });
});

describe("file store: migrate", () => {
  it("insecure-file → passphrase → passphrase (new key): content kept, old key deleted, opt-in dropped", async () => {
    using tmp = tempStoreDir();
    await seed(tmp);
    const first = (await readConfig(tmp.ctx())).store!.key!;
    const r = await migrateStore(tmp.ctx({ AZKEEP_PASSPHRASE: PASS.AZKEEP_PASSPHRASE }), "passphrase");
    assert.equal(r.from, "insecure-file");
    assert.equal(r.to, "passphrase");
    let config = await readConfig(tmp.ctx());
    assert.equal(config.store?.key?.provider, "passphrase");
    assert.equal(config.store?.previous, undefined);
    assert.equal(config.store?.insecureFileOptIn, undefined);
    assert.equal(existsSync(join(tmp.dir, "tokens.key")), false, "old key file not deleted");
    assert.notEqual(config.store?.key?.keyId, first.keyId);
    const ctx = tmp.ctx({ AZKEEP_PASSPHRASE: PASS.AZKEEP_PASSPHRASE });
    assert.equal((await createFileStore(ctx).readSecrets()).refreshTokens[0]?.secret, "rt-seed-secret");

    // A new passphrase: AZKEEP_NEW_PASSPHRASE for the new key, AZKEEP_PASSPHRASE opens the old.
    await migrateStore(
      tmp.ctx({ AZKEEP_PASSPHRASE: PASS.AZKEEP_PASSPHRASE, AZKEEP_NEW_PASSPHRASE: "another passphrase" }),
      "passphrase",
    );
    config = await readConfig(tmp.ctx());
    assert.equal(config.store?.key?.provider, "passphrase");
    assert.equal(
      (await createFileStore(tmp.ctx({ AZKEEP_PASSPHRASE: "another passphrase" })).readSecrets())
        .refreshTokens.length,
      1,
    );
    await assert.rejects(createFileStore(ctx).readSecrets(), /passphrase does not open/);
  });

  it("an interrupted migration (config names the new key, file still sealed with the old) opens, and the next write finishes it", async () => {
    using tmp = tempStoreDir();
    const fake = createMemoryProvider({ ctx: tmp.ctx() });
    const options = { provider: "memory" as const, providers: { memory: fake } };
    const store = createFileStore(tmp.ctx(), options);
    await store.update((s) => void s.secrets.refreshTokens.push(refreshToken("rt-old")));
    const old = (await readConfig(tmp.ctx())).store!.key!;
    // Crash after "config names the new key" and before the re-sealed file was renamed in place:
    const kid = Buffer.alloc(16, 7);
    const created = await fake.createKey(kid, "migrate");
    const { keyCheckValue } = await import("../../src/core/store/sealed.js");
    await updateConfig(tmp.ctx(), (c) => {
      c.store!.previous = c.store!.key!;
      c.store!.key = {
        provider: "memory",
        keyId: kid.toString("hex"),
        keyCheck: keyCheckValue(created.key),
        createdAt: "",
      };
    });
    const reader = createFileStore(tmp.ctx(), options);
    assert.equal((await reader.readSecrets()).refreshTokens[0]?.secret, "rt-old");
    assert.match((await reader.status()).warnings.join("\n"), /interrupted/);
    await reader.update((s) => void s.secrets.refreshTokens.push(refreshToken("rt-new")));
    const config = await readConfig(tmp.ctx());
    assert.equal(config.store?.previous, undefined);
    assert.equal(await fake.getKey(old, () => true), undefined, "old key not deleted");
    assert.equal(
      readFileSync(join(tmp.dir, "tokens.sealed")).subarray(5, 21).toString("hex"),
      kid.toString("hex"),
    );
  });

  it("migrate --to memory is a usage error", async () => {
    using tmp = tempStoreDir();
    await assert.rejects(migrateStore(tmp.ctx(), "memory"), (e: AzkeepError) => e.code === "usage");
  });
});

describe("config.json", () => {
  it("keeps fields it does not know and loses no concurrent update", async () => {
    using tmp = tempStoreDir();
    const ctx = tmp.ctx();
    await updateConfig(ctx, (c) => Object.assign(c, { cloud: { active: "AzureCloud" }, n: 0 }));
    await Promise.all(
      Array.from({ length: 20 }, () =>
        updateConfig(ctx, async (c) => {
          const x = c as unknown as { n: number };
          const v = x.n;
          await new Promise((r) => setTimeout(r, 1));
          x.n = v + 1;
        }),
      ),
    );
    await seed(tmp);
    const c = (await readConfig(ctx)) as unknown as { n: number; cloud: { active: string }; version: number };
    assert.equal(c.n, 20);
    assert.equal(c.cloud.active, "AzureCloud");
    assert.equal(c.version, 1);
  });

  it("invalid JSON is one config error saying how to fix it", async () => {
    using tmp = tempStoreDir();
    await seed(tmp);
    writeFileSync(join(tmp.dir, "config.json"), "{oops", { mode: 0o600 });
    await assert.rejects(
      readConfig(tmp.ctx()),
      (e: AzkeepError) => e.code === "config" && /mv /.test(e.hint ?? ""),
    );
  });
});

describe("file store: status", () => {
  it("lists files with modes, what protects what, and warnings", async () => {
    using tmp = tempStoreDir();
    await seed(tmp);
    chmodSync(join(tmp.dir, "profile.json"), 0o644);
    const st = await createFileStore(tmp.ctx()).status();
    assert.equal(st.provider, "insecure-file");
    assert.equal(st.keyAvailable, true);
    assert.ok(st.files.some((f) => f.path.endsWith("tokens.sealed") && f.mode === "0600" && f.exists));
    assert.ok(st.files.some((f) => f.path.endsWith("profile.json") && f.mode === "0644"));
    assert.ok(st.warnings.some((w) => /profile\.json is accessible by other users.*chmod 600/.test(w)));
    assert.ok(st.warnings.some((w) => /plain file/.test(w)));
    assert.ok(
      st.protection?.some((p) => p.file.endsWith("tokens.sealed") && /AES-256-GCM/.test(p.protectedBy)),
    );
  });

  it("before the first write: provider none, and how one will be chosen", async () => {
    using tmp = tempStoreDir();
    const st = await createFileStore(tmp.ctx()).status();
    assert.equal(st.provider, "none");
    assert.match(st.protection?.[0]?.protectedBy ?? "", /first sign-in/);
  });
});
