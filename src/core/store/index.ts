/**
 * The sealed store: open it with `openStore(ctx)` and use the `Store` port (`types.ts`).
 *
 * ```ts
 * const store = await openStore(ctx);
 * const secrets = await store.readSecrets();          // no lock, never a partial file
 * await store.update((s) => { s.secrets.accessTokens.push(entry); });   // locked RMW
 * ```
 *
 * Layout, format, providers and threat model: docs/store.md.
 */
import { readConfig } from "../config.js";
import type { Context } from "../context.js";
import { AzkeepError } from "../errors.js";
import { createFileStore, type FileStore } from "./file-store.js";
import { createMemoryStore } from "./memory.js";
import type { ProviderName, StoreOptions } from "./provider.js";
import { requestedProvider } from "./providers/index.js";
import type { Store } from "./types.js";

export type { FileStore } from "./file-store.js";
export { PROFILE_FILE, SEALED_FILE, STORE_LOCK } from "./file-store.js";
export { PROVIDER_NAMES, isProviderName } from "./provider.js";
export type { KeyProvider, KeyRecord, ProviderName, ScryptParams, StoreOptions } from "./provider.js";
export { createMemoryStore } from "./memory.js";
export * from "./types.js";

/**
 * Opens the store of `ctx.paths.configDir`. Cheap: nothing is read until a method is called,
 * and only the key provider in use is loaded. With `AZKEEP_STORE_PROVIDER=memory` (or
 * `options.provider: "memory"`) the store lives in this process only and nothing touches disk.
 */
export async function openStore(ctx: Context, options: StoreOptions = {}): Promise<Store> {
  if (requestedProvider(ctx, options) === "memory") {
    ctx.logger.debug("token store: memory (nothing is kept on disk)");
    return createMemoryStore();
  }
  const store = createFileStore(ctx, options);
  // The agent's vault is the one process that may unseal an agent-only store.
  return ctx.env.AZKEEP_AGENT_VAULT === "1" ? store : agentOnlyGuard(ctx, store);
}

/**
 * Agent-only mode (`store.mode` in config.json, set by `azkeep agent start --agent-only`): this
 * process must not unseal the store; the profile (no secrets) stays readable.
 */
function agentOnlyGuard(ctx: Context, store: FileStore): Store {
  const agentOnly = async () => (await readConfig(ctx)).store?.mode === "agent-only";
  const check = async () => {
    if (await agentOnly()) {
      throw new AzkeepError(
        "store_unavailable",
        "The token store is in agent-only mode and no azkeep agent runs.",
        {
          hint: "Run `azkeep agent start` (and `azkeep agent unlock` with a passphrase) to start it.",
        },
      );
    }
  };
  return {
    configDir: store.configDir,
    // Checking the profile and config.json against the seal unseals it: in agent-only mode this
    // process shows them as they are on disk (it cannot send anything: it cannot unseal).
    readProfile: async () => ((await agentOnly()) ? store.readPlainProfile() : store.readProfile()),
    readSecrets: async () => {
      await check();
      return store.readSecrets();
    },
    update: async (change) => {
      await check();
      return store.update(change);
    },
    prepareWrite: async () => {
      await check();
      return store.prepareWrite?.();
    },
    status: () => store.status(),
    readSettings: async () =>
      (await agentOnly())
        ? ((await readConfig(ctx)) as unknown as Record<string, unknown>)
        : store.readSettings(),
    updateSettings: async (change) => {
      await check();
      return store.updateSettings(change);
    },
  };
}

/** The on-disk store with its extra operations (`migrate`, `provider`), for `store` commands and `doctor`. */
export async function openFileStore(ctx: Context, options: StoreOptions = {}): Promise<FileStore> {
  return createFileStore(ctx, options);
}

/**
 * Re-seals the store under a new key of provider `to` (the same provider makes a new key):
 * new key → config.json names it (the old one kept as `previous`) → tokens.sealed re-sealed →
 * old key deleted → `previous` dropped. A crash at any step leaves a store that opens, and the
 * next write finishes the job.
 */
export async function migrateStore(
  ctx: Context,
  to: ProviderName,
  options: StoreOptions = {},
): Promise<{ from: ProviderName | undefined; to: ProviderName; keyId: string }> {
  return createFileStore(ctx, options).migrate(to);
}
