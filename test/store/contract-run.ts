/**
 * Runs the key-provider and store contracts against a real environment, inside a child
 * process that `providers.test.ts` starts under `dbus-run-session` (gnome-keyring) or
 * `keyctl session`. AZKEEP_CONTRACT_PROVIDER picks the provider, AZKEEP_CONTRACT_BACKEND the
 * keyutils backend.
 */
import { after } from "node:test";
import { readConfig } from "../../src/core/config.js";
import { createFileStore } from "../../src/core/store/file-store.js";
import type { ProviderName, StoreOptions } from "../../src/core/store/provider.js";
import { createKeyringProvider } from "../../src/core/store/providers/keyring.js";
import { createKeyutilsProvider } from "../../src/core/store/providers/keyutils.js";
import { providerContract, storeContract } from "./contract.js";
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

if (name === "keyring") providerContract(label, () => createKeyringProvider(pctx()), { configDir: tmp.dir });
else if (name === "keyutils")
  providerContract(label, () => createKeyutilsProvider(pctx()), { configDir: tmp.dir });
else throw new Error(`contract-run: unknown provider ${name}`);

storeContract(
  label,
  () => createFileStore(tmp.ctx({ ...process.env, AZKEEP_CONFIG_DIR: tmp.dir }), options),
  {
    configDir: tmp.dir,
    provider: name,
  },
);

if (name === "keyring") {
  const { it } = await import("node:test");
  const { spawnSync } = await import("node:child_process");
  const assert = (await import("node:assert/strict")).default;
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
