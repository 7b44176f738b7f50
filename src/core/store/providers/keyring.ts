/**
 * The `keyring` key provider: the OS keyring through @napi-rs/keyring — Secret Service
 * (gnome-keyring, KWallet) on Linux, the Keychain on macOS, Credential Manager on Windows.
 * The entry is service `azkeep`, account `store-key-<key id>`, the secret = the 32-byte key.
 *
 * Reads on Linux go through a small pure-JS Secret Service client (`secret-service.ts`: one
 * D-Bus connection, "plain" session, SearchItems on the same attributes the native module
 * writes, Item.GetSecret) — ~2 ms instead of ~23 ms. When that client cannot decide (a locked
 * item, a prompt, several matches, an error it does not know) the native module reads instead;
 * writes and deletes always use it.
 *
 * Every call has a timeout. On Linux the native module is touched only after a pure-JS probe
 * (`dbus-probe.ts`) has seen the Secret Service answer on the session bus: the module connects
 * synchronously and uncancellably, and on a bus that never answers it would hang the command
 * (and even its exit) forever. The module is imported lazily, only by this provider (~10 ms).
 * A timeout or a refusal is `store_unavailable` (the store is left alone); only "no such
 * entry" means the key is missing.
 */
import type * as Keyring from "@napi-rs/keyring";
import { AzkeepError } from "../../errors.js";
import { packKey, unpackKey } from "../generation.js";
import type { KeyProvider, KeyRecord, KeyWithGeneration, ProviderContext } from "../provider.js";

export const KEYRING_SERVICE = "azkeep";

function account(keyIdHex: string): string {
  return `store-key-${keyIdHex}`;
}

function backendName(): string {
  if (process.platform === "darwin") return "macOS Keychain";
  if (process.platform === "win32") return "Windows Credential Manager";
  return "Secret Service (e.g. gnome-keyring)";
}

function unavailable(message: string, cause?: unknown): AzkeepError {
  return new AzkeepError("store_unavailable", message, {
    hint:
      process.platform === "linux"
        ? "Unlock your keyring (or start gnome-keyring in this session), or choose another key provider: " +
          "`azkeep store migrate --to keyutils` (or passphrase). See docs/store.md."
        : "Unlock your keyring, or choose another key provider: `azkeep store migrate --to passphrase`.",
    cause,
  });
}

async function withTimeout<T>(
  ms: number,
  what: string,
  run: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(unavailable(`The OS keyring (${backendName()}) did not answer within ${ms} ms (${what}).`));
    }, ms);
  });
  try {
    return await Promise.race([run(controller.signal), timeout]);
  } catch (e) {
    if (e instanceof AzkeepError) throw e;
    throw unavailable(`The OS keyring (${backendName()}) refused to ${what}: ${(e as Error).message}`, e);
  } finally {
    clearTimeout(timer);
  }
}

export function createKeyringProvider(pctx: ProviderContext, opts: { timeoutMs?: number } = {}): KeyProvider {
  const timeoutMs = opts.timeoutMs ?? pctx.options.keyringTimeoutMs ?? 5000;
  let ready: Promise<typeof Keyring> | undefined;
  const load = (): Promise<typeof Keyring> =>
    (ready ??= (async () => {
      if (process.platform === "linux") {
        const { probeSecretService } = await import("./dbus-probe.js");
        const probe = await probeSecretService(pctx.ctx.env, timeoutMs);
        if (!probe.ok) throw unavailable(`The OS keyring is not usable: ${probe.reason}.`);
      }
      try {
        return await import("@napi-rs/keyring");
      } catch (e) {
        throw unavailable(
          "The OS keyring module (@napi-rs/keyring) could not be loaded on this platform.",
          e,
        );
      }
    })());
  const entry = async (keyIdHex: string): Promise<Keyring.AsyncEntry> => {
    const mod = await load();
    try {
      return new mod.AsyncEntry(KEYRING_SERVICE, account(keyIdHex), { linux: { store: "secret-service" } });
    } catch (e) {
      throw unavailable(`The OS keyring (${backendName()}) is not reachable: ${(e as Error).message}`, e);
    }
  };
  const provider: KeyProvider = {
    name: "keyring",
    async createKey(kid) {
      const key = pctx.ctx.random.bytes(32);
      const e = await entry(kid.toString("hex"));
      await withTimeout(timeoutMs, "store the key", (signal) => e.setSecret(key, signal));
      // Read it back: some backends accept a write they cannot serve (no default collection).
      const back = await withTimeout(timeoutMs, "read the key back", (signal) => e.getSecret(signal));
      if (!back || !Buffer.from(back).equals(Buffer.from(key)))
        throw unavailable(`The OS keyring (${backendName()}) did not keep the key it was given.`);
      return { key };
    },
    async getKey(record: KeyRecord) {
      return (await readKey(record))?.key;
    },
    readKey,
    async setGeneration(record, key, generation) {
      // The same entry, rewritten: key ‖ generation (`generation.ts`). The Secret Service,
      // the Keychain and Credential Manager replace an item's secret as a whole.
      const e = await entry(record.keyId);
      await withTimeout(timeoutMs, "record the store's generation", (signal) =>
        e.setSecret(packKey(key, generation), signal),
      );
    },
    async deleteKey(record) {
      const e = await entry(record.keyId);
      return withTimeout(timeoutMs, "delete the key", (signal) => e.deleteCredential(signal));
    },
    describe: (record) =>
      `the key is in the OS keyring (${backendName()}), service "${KEYRING_SERVICE}", account "${account(record?.keyId ?? "<key id>")}"`,
  };
  return provider;

  /** The entry's payload, split into the key and the generation kept with it (one read). */
  async function readKey(record: KeyRecord): Promise<KeyWithGeneration | undefined> {
    if (process.platform === "linux") {
      // The hot path: read with the pure-JS client; the native module only when it cannot decide.
      const { lookupSecret } = await import("./secret-service.js");
      const r = await lookupSecret(
        pctx.ctx.env,
        { service: KEYRING_SERVICE, username: account(record.keyId) },
        timeoutMs,
      );
      if (r.kind === "found") return unpackKey(r.secret);
      if (r.kind === "missing") return undefined;
      if (r.kind === "unavailable") throw unavailable(`The OS keyring is not usable: ${r.reason}.`);
      pctx.ctx.logger.debug(`keyring: reading through @napi-rs/keyring (${r.reason})`);
    }
    const e = await entry(record.keyId);
    const secret = await withTimeout(timeoutMs, "read the key", (signal) => e.getSecret(signal));
    return secret ? unpackKey(new Uint8Array(secret)) : undefined;
  }
}
