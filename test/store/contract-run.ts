/**
 * Runs the key-provider and store contracts against a real environment, inside a child
 * process that `providers.test.ts` starts under `dbus-run-session` (gnome-keyring) or
 * `keyctl session`. AZKEEP_CONTRACT_PROVIDER picks the provider, AZKEEP_CONTRACT_BACKEND the
 * keyutils backend.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, it } from "node:test";
import { readConfig } from "../../src/core/config.js";
import { createFileStore } from "../../src/core/store/file-store.js";
import type { ProviderName, StoreOptions } from "../../src/core/store/provider.js";
import { createKeyringProvider } from "../../src/core/store/providers/keyring.js";
import { createKeyutilsProvider } from "../../src/core/store/providers/keyutils.js";
import { accessToken, providerContract, storeContract } from "./contract.js";
import { tempStoreDir } from "./helpers.js";

const name = process.env.AZKEEP_CONTRACT_PROVIDER as ProviderName;
const backend = process.env.AZKEEP_CONTRACT_BACKEND as "keyctl" | "napi" | undefined;
const tmp = tempStoreDir();
after(async () => {
  // Remove the store's key from the real keyring (the kernel's persistent keyring outlives us).
  const config = await readConfig(tmp.ctx());
  const rec = config.store?.key;
  if (rec?.provider === "keyring") await createKeyringProvider(pctx()).deleteKey(rec);
  if (rec?.provider === "keyutils") await createKeyutilsProvider(pctx()).deleteKey(rec);
  tmp[Symbol.dispose]();
});
const options: StoreOptions = {
  provider: name,
  ...(backend ? { keyutilsBackend: backend } : {}),
  keyringTimeoutMs: 20_000,
};
const pctx = () => ({ ctx: tmp.ctx(process.env), configDir: tmp.dir, options });
const label = backend ? `${name} (${backend})` : name;

if (name === "keyring")
  providerContract(label, () => createKeyringProvider(pctx()), { configDir: tmp.dir, generation: true });
else if (name === "keyutils")
  providerContract(label, () => createKeyutilsProvider(pctx()), { configDir: tmp.dir, generation: true });
else throw new Error(`contract-run: unknown provider ${name}`);

storeContract(
  label,
  () => createFileStore(tmp.ctx({ ...process.env, AZKEEP_CONFIG_DIR: tmp.dir }), options),
  {
    configDir: tmp.dir,
    provider: name,
    generation: true,
  },
);

if (name === "keyring") {
  it("keyring: the key is a real Secret Service item (secret-tool sees it), under service azkeep", async () => {
    const p = createKeyringProvider(pctx());
    const kid = Buffer.alloc(16, 0xab);
    await p.createKey(kid, "first");
    try {
      const r = spawnSync("secret-tool", ["search", "--all", "service", "azkeep"], { encoding: "utf8" });
      assert.match(
        r.stdout + r.stderr,
        new RegExp(`attribute\\.username = store-key-${kid.toString("hex")}`),
      );
    } finally {
      await p.deleteKey({ provider: "keyring", keyId: kid.toString("hex"), keyCheck: "", createdAt: "" });
    }
  });
}

if (name === "keyutils") {
  const sh = (script: string) => spawnSync("sh", ["-c", script], { encoding: "utf8" });
  const fromNewSession = (desc: string) =>
    sh(`keyctl session - sh -c 'keyctl get_persistent @s >/dev/null; keyctl pipe %user:${desc} >/dev/null'`)
      .status === 0;
  it(`keyutils (${label}): each write re-links the key into the persistent keyring, so a new login session finds it`, async () => {
    const store = createFileStore(tmp.ctx({ ...process.env, AZKEEP_CONFIG_DIR: tmp.dir }), options);
    await store.update((s) => void (s.profile.installationId = "renew"));
    await store.update((s) => void s.secrets.accessTokens.splice(0));
    const rec = (await readConfig(tmp.ctx())).store!.key!;
    const desc = `azkeep:${rec.keyId}`;
    assert.equal(fromNewSession(desc), true, "a new session cannot read the key");
    // As if the persistent keyring had expired: drop the link.
    const p = sh("keyctl get_persistent @s").stdout.trim();
    const id = sh(`keyctl search @s user ${desc}`).stdout.trim();
    assert.equal(sh(`keyctl unlink ${id} ${p}`).status, 0);
    assert.equal(fromNewSession(desc), false, "the key is still reachable from a new session");
    await store.update((s) => void s.secrets.accessTokens.push(accessToken("renew")));
    await store.update((s) => void (s.secrets.refreshTokens = []));
    assert.equal(fromNewSession(desc), true, "the write did not renew the persistent link");
  });

  if (backend === "keyctl") {
    it("keyutils (keyctl): a read in the session that wrote the key runs keyctl once (`keyctl pipe`)", async () => {
      // A `keyctl` first on PATH that logs its arguments and runs the real one.
      const real = sh("command -v keyctl").stdout.trim();
      const bin = join(tmp.root, "logged-bin");
      const log = join(tmp.root, "keyctl.log");
      mkdirSync(bin, { recursive: true });
      writeFileSync(join(bin, "keyctl"), `#!/bin/sh\necho "$1" >> '${log}'\nexec '${real}' "$@"\n`, {
        mode: 0o755,
      });
      const env = { ...process.env, PATH: `${bin}:${process.env.PATH ?? ""}` };
      const logged = () => (existsSync(log) ? readFileSync(log, "utf8").trim().split("\n") : []);
      const kid = Buffer.alloc(16, 0xcd);
      const rec = { provider: "keyutils" as const, keyId: kid.toString("hex"), keyCheck: "", createdAt: "" };
      const writer = createKeyutilsProvider({ ...pctx(), ctx: tmp.ctx(env) });
      const { key } = await writer.createKey(kid, "first");
      try {
        rmSync(log, { force: true });
        const reader = createKeyutilsProvider({ ...pctx(), ctx: tmp.ctx(env) });
        const got = await reader.getKey(rec, () => true);
        assert.deepEqual(Buffer.from(got!), Buffer.from(key));
        assert.deepEqual(logged(), ["pipe"]);
        // A key that is not there: the persistent keyring is tried once more, then "missing".
        rmSync(log, { force: true });
        const missing = await reader.getKey(
          { ...rec, keyId: Buffer.alloc(16, 0xce).toString("hex") },
          () => true,
        );
        assert.equal(missing, undefined);
        assert.deepEqual(logged(), ["pipe", "get_persistent", "pipe"]);
      } finally {
        await writer.deleteKey(rec);
      }
    });
  }
}
