/**
 * The contract every key provider and every Store must keep. Registered by
 * `providers.test.ts` for the in-process providers and by `contract-run.ts` inside the real
 * environments (gnome-keyring under dbus-run-session, the kernel keyring under keyctl session).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { AzkeepError } from "../../src/core/errors.js";
import type { KeyProvider, KeyRecord } from "../../src/core/store/provider.js";
import { keyCheckValue, kidHex } from "../../src/core/store/sealed.js";
import type { AccessTokenEntry, RefreshTokenEntry, Store, StoreState } from "../../src/core/store/types.js";

export interface ProviderContractOptions {
  /** Derived keys (passphrase): nothing is stored, so "missing" cannot be observed. */
  derived?: boolean;
  /** Where the provider must not leave the key (the config folder), unless it is insecure-file. */
  configDir?: string;
  keyMayBeOnDisk?: boolean;
  /** The provider keeps the store's generation beside the key (keyring, keyutils). */
  generation?: boolean;
}

function recordOf(
  provider: KeyProvider,
  kid: Buffer,
  key: Uint8Array,
  scrypt?: KeyRecord["scrypt"],
): KeyRecord {
  return {
    provider: provider.name,
    keyId: kidHex(kid),
    keyCheck: keyCheckValue(key),
    createdAt: new Date().toISOString(),
    ...(scrypt ? { scrypt } : {}),
  };
}

const check = (r: KeyRecord) => (k: Uint8Array) => keyCheckValue(k) === r.keyCheck;

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(p);
    }
  };
  try {
    walk(dir);
  } catch {
    /* missing */
  }
  return out;
}

export function providerContract(
  label: string,
  make: () => KeyProvider | Promise<KeyProvider>,
  opts: ProviderContractOptions = {},
): void {
  describe(`key provider contract: ${label}`, () => {
    it("creates a 32-byte key and gives the same bytes back, also to a new instance", async () => {
      const p = await make();
      const kid = randomBytes(16);
      const created = await p.createKey(kid, "first");
      assert.equal(created.key.length, 32);
      const rec = recordOf(p, kid, created.key, created.scrypt);
      try {
        assert.deepEqual(Buffer.from((await p.getKey(rec, check(rec)))!), Buffer.from(created.key));
        const fresh = await make();
        assert.deepEqual(Buffer.from((await fresh.getKey(rec, check(rec)))!), Buffer.from(created.key));
      } finally {
        await p.deleteKey(rec);
      }
    });

    it("different key ids give independent keys", async () => {
      const p = await make();
      const [k1, k2] = [randomBytes(16), randomBytes(16)];
      const a = await p.createKey(k1, "first");
      const b = await p.createKey(k2, "first");
      const ra = recordOf(p, k1, a.key, a.scrypt);
      const rb = recordOf(p, k2, b.key, b.scrypt);
      try {
        assert.notDeepEqual(Buffer.from(a.key), Buffer.from(b.key));
        assert.deepEqual(Buffer.from((await p.getKey(ra, check(ra)))!), Buffer.from(a.key));
        assert.deepEqual(Buffer.from((await p.getKey(rb, check(rb)))!), Buffer.from(b.key));
      } finally {
        await p.deleteKey(ra);
        await p.deleteKey(rb);
      }
    });

    if (!opts.derived) {
      it("a key that was never stored is undefined (not an error)", async () => {
        const p = await make();
        const rec: KeyRecord = {
          provider: p.name,
          keyId: kidHex(randomBytes(16)),
          keyCheck: "x",
          createdAt: "",
        };
        assert.equal(await p.getKey(rec, () => true), undefined);
      });

      it("delete removes the key: then undefined, and a second delete says false", async () => {
        const p = await make();
        const kid = randomBytes(16);
        const created = await p.createKey(kid, "first");
        const rec = recordOf(p, kid, created.key);
        assert.equal(await p.deleteKey(rec), true);
        assert.equal(await (await make()).getKey(rec, check(rec)), undefined);
        assert.equal(await p.deleteKey(rec), false);
      });
    } else {
      it("a wrong secret is refused with store_unavailable, never taken for a missing key", async () => {
        const p = await make();
        const rec: KeyRecord = {
          provider: p.name,
          keyId: kidHex(randomBytes(16)),
          keyCheck: "nope",
          createdAt: "",
        };
        await assert.rejects(
          p.getKey(rec, () => false),
          (e: AzkeepError) => e.code === "store_unavailable",
        );
      });
    }

    if (opts.configDir && !opts.keyMayBeOnDisk) {
      it("leaves no copy of the key in the config folder", async () => {
        const p = await make();
        const kid = randomBytes(16);
        const created = await p.createKey(kid, "first");
        const rec = recordOf(p, kid, created.key, created.scrypt);
        try {
          const needles = [
            Buffer.from(created.key),
            Buffer.from(Buffer.from(created.key).toString("base64")),
            Buffer.from(Buffer.from(created.key).toString("hex")),
          ];
          for (const f of filesUnder(opts.configDir!)) {
            const content = readFileSync(f);
            for (const n of needles) assert.equal(content.indexOf(n), -1, `key found in ${f}`);
          }
        } finally {
          await p.deleteKey(rec);
        }
      });
    }

    it("describes what protects the key", async () => {
      const p = await make();
      assert.match(p.describe(), /key/);
    });

    if (opts.generation) {
      it("keeps the store's generation beside the key: one read gives both, the key unchanged", async () => {
        const p = await make();
        assert.ok(
          p.readKey !== undefined && p.setGeneration !== undefined,
          `${p.name} must keep a generation`,
        );
        const kid = randomBytes(16);
        const created = await p.createKey(kid, "first");
        const rec = recordOf(p, kid, created.key);
        try {
          // A key made before azkeep kept generations (or just now): no generation yet.
          const first = await p.readKey(rec, check(rec));
          assert.deepEqual(Buffer.from(first!.key), Buffer.from(created.key));
          assert.equal(first!.generation, undefined);
          for (const g of [1, 7, 2 ** 40]) {
            await p.setGeneration(rec, created.key, g);
            const fresh = await make();
            const got = await fresh.readKey!(rec, check(rec));
            assert.deepEqual(Buffer.from(got!.key), Buffer.from(created.key), "the key is unchanged");
            assert.equal(got!.generation, g);
            // getKey still gives the 32-byte key alone.
            assert.deepEqual(Buffer.from((await fresh.getKey(rec, check(rec)))!), Buffer.from(created.key));
          }
        } finally {
          await p.deleteKey(rec);
        }
        assert.equal(await (await make()).readKey!(rec, check(rec)), undefined, "deleted with its key");
      });
    } else {
      it("keeps no generation outside the folder (no place for one): readKey/setGeneration absent", async () => {
        const p = await make();
        assert.equal("setGeneration" in p, false);
      });
    }
  });
}

export function refreshToken(secret: string, i = 0): RefreshTokenEntry {
  return {
    homeAccountId: `uid${i}.utid`,
    username: `user${i}@contoso.com`,
    clientId: "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
    environment: "login.microsoftonline.com",
    cloud: "AzureCloud",
    homeTenantId: "11111111-1111-1111-1111-111111111111",
    secret,
    familyId: "1",
    lastModified: 1_700_000_000,
  };
}

export function accessToken(secret: string, i = 0): AccessTokenEntry {
  return {
    homeAccountId: `uid${i}.utid`,
    principal: `user${i}@contoso.com`,
    clientId: "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
    environment: "login.microsoftonline.com",
    cloud: "AzureCloud",
    tenantId: "11111111-1111-1111-1111-111111111111",
    target: "https://management.core.windows.net//.default",
    secret,
    tokenType: "Bearer",
    expiresOn: 1_700_003_600,
    cachedAt: 1_700_000_000,
  };
}

/** A signed-in user0: their refresh token (`secret`) and their default subscription. */
export function signIn(state: StoreState, secret: string): void {
  state.secrets.refreshTokens.push(refreshToken(secret));
  state.profile.subscriptions.push({
    id: "sub-1",
    name: "Dev",
    state: "Enabled",
    user: { name: "user0@contoso.com", type: "user" },
    isDefault: true,
    tenantId: "t",
    environmentName: "AzureCloud",
  });
}

export interface StoreContractOptions {
  /** Folder to search for secrets after writes (file stores). */
  configDir?: string;
  provider: string;
  /** Whether an older tokens.sealed put back must be refused (the provider keeps a generation). */
  generation?: boolean;
}

export function storeContract(
  label: string,
  make: () => Store | Promise<Store>,
  opts: StoreContractOptions,
): void {
  describe(`store contract: ${label}`, () => {
    it("reads empty before anything is written", async () => {
      const s = await make();
      const secrets = await s.readSecrets();
      assert.deepEqual(secrets.refreshTokens, []);
      assert.ok(Array.isArray((await s.readProfile()).subscriptions));
    });

    it("update round-trips secrets and profile; a new instance reads the same", async () => {
      const s = await make();
      const rt = `rt-${randomBytes(12).toString("hex")}`;
      const r = await s.update((st) => {
        st.secrets.refreshTokens.push(refreshToken(rt));
        st.profile.subscriptions.push({
          id: "00000000-0000-0000-0000-00000000000a",
          name: "Contoso Dev",
          state: "Enabled",
          user: { name: "user0@contoso.com", type: "user" },
          isDefault: true,
          tenantId: "11111111-1111-1111-1111-111111111111",
          environmentName: "AzureCloud",
        });
        return "result";
      });
      assert.equal(r, "result");
      for (const reader of [s, await make()]) {
        assert.ok((await reader.readSecrets()).refreshTokens.some((t) => t.secret === rt));
        assert.ok((await reader.readProfile()).subscriptions.some((x) => x.name === "Contoso Dev"));
      }
    });

    it("a change that throws writes nothing", async () => {
      const s = await make();
      const before = JSON.stringify(await s.readSecrets());
      await assert.rejects(
        s.update((st) => {
          st.secrets.accessTokens.push(accessToken("never-stored"));
          throw new Error("boom");
        }),
        /boom/,
      );
      assert.equal(JSON.stringify(await s.readSecrets()), before);
    });

    it("concurrent updates in one process lose nothing", async () => {
      const s = await make();
      const n0 = (await s.readSecrets()).accessTokens.length;
      await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          s.update(async (st) => {
            await new Promise((r) => setTimeout(r, 1));
            st.secrets.accessTokens.push(accessToken(`at-concurrent-${i}`, i));
          }),
        ),
      );
      assert.equal((await s.readSecrets()).accessTokens.length, n0 + 12);
    });

    if (opts.configDir) {
      it("no token or secret string appears in any file of the config folder", async () => {
        const s = await make();
        const secrets = [
          `rt-needle-${randomBytes(8).toString("hex")}`,
          `at-needle-${randomBytes(8).toString("hex")}`,
          `sp-needle-${randomBytes(8).toString("hex")}`,
        ];
        await s.update((st) => {
          st.secrets.refreshTokens.push(refreshToken(secrets[0]!, 7));
          st.secrets.accessTokens.push(accessToken(secrets[1]!, 7));
          st.secrets.servicePrincipals.push({
            clientId: "22222222-2222-2222-2222-222222222222",
            tenantId: "11111111-1111-1111-1111-111111111111",
            cloud: "AzureCloud",
            credential: { kind: "secret", secret: secrets[2]! },
          });
        });
        const files = filesUnder(opts.configDir!);
        assert.ok(files.some((f) => f.endsWith("tokens.sealed")));
        for (const f of files) {
          const content = readFileSync(f);
          for (const x of secrets) assert.equal(content.indexOf(x), -1, `${x} found in ${f}`);
        }
      });

      it("files are 0600 and the folder 0700", async () => {
        const s = await make();
        await s.update((st) => void st.secrets.accessTokens.push(accessToken("mode-check")));
        assert.equal(statSync(opts.configDir!).mode & 0o777, 0o700);
        for (const f of filesUnder(opts.configDir!)) assert.equal(statSync(f).mode & 0o777, 0o600, f);
      });
    }

    it("status names the provider", async () => {
      const s = await make();
      const st = await s.status();
      assert.equal(st.provider, opts.provider);
    });

    if (opts.configDir && opts.generation !== undefined) {
      it(
        opts.generation
          ? "an older tokens.sealed + profile.json put back is refused (store_tampered), left as it is"
          : "an older tokens.sealed + profile.json put back opens (no place for a generation outside the folder)",
        async () => {
          const s = await make();
          await s.update((st) => void st.secrets.accessTokens.push(accessToken("before-logout", 41)));
          const sealed = join(opts.configDir!, "tokens.sealed");
          const profile = join(opts.configDir!, "profile.json");
          const old = { sealed: readFileSync(sealed), profile: readFileSync(profile) };
          await s.update((st) => {
            st.secrets.accessTokens = st.secrets.accessTokens.filter((a) => a.secret !== "before-logout");
          });
          writeFileSync(sealed, old.sealed);
          writeFileSync(profile, old.profile);
          for (const reader of [s, await make()]) {
            // Without a place outside the folder only a process that saw the newer file can
            // tell (a long-lived one: the agent's vault); a new process opens the old copy.
            if (opts.generation || reader === s)
              await assert.rejects(reader.readSecrets(), (e: AzkeepError) => {
                assert.equal(e.code, "store_tampered");
                assert.match(e.message, /older than the last token store azkeep wrote/);
                assert.match(
                  e.hint ?? "",
                  opts.generation
                    ? /azkeep store repair --accept-rollback/
                    : /azkeep agent stop && azkeep agent start/,
                );
                return true;
              });
            else
              assert.ok((await reader.readSecrets()).accessTokens.some((a) => a.secret === "before-logout"));
          }
          assert.deepEqual(readFileSync(sealed), old.sealed, "left as it is");
          if (opts.generation) {
            await assert.rejects(
              s.update(() => {}),
              (e: AzkeepError) => e.code === "store_tampered",
              "nothing is written over it",
            );
            assert.deepEqual(readFileSync(sealed), old.sealed);
          }
          // Tidy for the next case: a write by azkeep on a store that opens.
          writeFileSync(sealed, old.sealed);
          if (opts.generation) {
            const fs = s as Store & { repair?(o: { acceptRollback: boolean }): Promise<unknown> };
            await fs.repair?.({ acceptRollback: true });
            assert.ok(
              (await (await make()).readSecrets()).accessTokens.some((a) => a.secret === "before-logout"),
            );
          }
        },
      );
    }
  });
}
