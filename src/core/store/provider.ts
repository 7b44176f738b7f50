/**
 * Key providers: where the store's 32-byte data key lives. One interface, one contract test
 * suite (`test/store/provider-contract.ts`) run against every implementation.
 */
import type { Context } from "../context.js";

export const PROVIDER_NAMES = ["keyring", "keyutils", "passphrase", "insecure-file", "memory"] as const;
export type ProviderName = (typeof PROVIDER_NAMES)[number];

export function isProviderName(s: string): s is ProviderName {
  return (PROVIDER_NAMES as readonly string[]).includes(s);
}

/** scrypt parameters of a passphrase-derived key (remembered in config.json, not secret). */
export interface ScryptParams {
  /** CPU/memory cost, a power of two. */
  N: number;
  r: number;
  p: number;
}

/** What config.json remembers about one data key. Nothing in it is secret. */
export interface KeyRecord {
  provider: ProviderName;
  /** 32 hex characters; also in the sealed file's header. */
  keyId: string;
  /** See `keyCheckValue`: tells a wrong key (passphrase) from a damaged file. */
  keyCheck: string;
  /** ISO time the key was created. */
  createdAt: string;
  scrypt?: ScryptParams;
}

/** Options a caller (CLI command, agent, test) gives the store and its providers. */
export interface StoreOptions {
  /**
   * The provider for the first write, overriding automatic choice (keyring → keyutils →
   * passphrase on a terminal). `AZKEEP_STORE_PROVIDER` does the same from the environment.
   */
  provider?: ProviderName;
  /** A passphrase file (`--passphrase-file`); `AZKEEP_PASSPHRASE_FILE` does the same. */
  passphraseFile?: string;
  /** The new passphrase's file when re-sealing from one passphrase to another (`store migrate`). */
  newPassphraseFile?: string;
  /** Timeout for each OS keyring call (default 5000 ms). */
  keyringTimeoutMs?: number;
  /** How long the automatic choice waits for the OS keyring to answer (default 3000 ms). */
  keyringProbeTimeoutMs?: number;
  /** Lock wait limit (default 60 s). */
  lockTimeoutMs?: number;
  /** keyutils: force the `keyctl` command or the @napi-rs/keyring backend (tests). */
  keyutilsBackend?: "keyctl" | "napi";
  /** Replaces a provider implementation (tests and embedding); keyed by name. */
  providers?: Partial<Record<ProviderName, KeyProvider>>;
}

export interface ProviderContext {
  ctx: Context;
  configDir: string;
  options: StoreOptions;
}

export interface CreatedKey {
  key: Uint8Array;
  /** Settings to remember with the key record (scrypt parameters). */
  scrypt?: ScryptParams;
}

/** A data key and, where its provider keeps one, the generation of the last store sealed with it. */
export interface KeyWithGeneration {
  key: Uint8Array;
  generation?: number;
}

export interface KeyProvider {
  readonly name: ProviderName;
  /**
   * Makes a new data key named `kid` and stores it in the provider (the passphrase provider
   * derives it instead, and may ask for the passphrase twice). Throws `store_unavailable`
   * when the provider cannot be used here.
   */
  createKey(kid: Buffer, purpose: "first" | "migrate"): Promise<CreatedKey>;
  /**
   * The key of `record`. `undefined` means the provider answered and the key is definitively
   * not there (another machine, a reboot for keyutils, a fresh HOME): the store is then
   * unreadable. A provider that cannot answer (timeout, locked, no daemon) throws
   * `store_unavailable` instead, and the store file is left alone. `verify` lets an
   * interactive provider ask again after a wrong passphrase.
   */
  getKey(record: KeyRecord, verify: (key: Uint8Array) => boolean): Promise<Uint8Array | undefined>;
  /**
   * Rollback detection (keyring, keyutils): the key and the store's write generation that the
   * provider keeps in the same entry (`generation.ts`: key ‖ "AZG1" ‖ generation), in ONE read
   * — the hot path pays nothing for it. `generation` is undefined for an entry written before
   * azkeep kept one (upgraded on the next write). Providers that cannot keep a number outside
   * the config folder (passphrase, insecure-file, memory) leave this and `setGeneration` out.
   */
  readKey?(record: KeyRecord, verify: (key: Uint8Array) => boolean): Promise<KeyWithGeneration | undefined>;
  /**
   * Records `generation` beside `key` (rewrites the entry: same key, new number). Called after
   * tokens.sealed with that generation is renamed in place, under the store lock. Throws
   * `store_unavailable` when the provider cannot be written now.
   */
  setGeneration?(record: KeyRecord, key: Uint8Array, generation: number): Promise<void>;
  /** Deletes the key; false when it was not there. */
  deleteKey(record: KeyRecord): Promise<boolean>;
  /**
   * Called after each write of the store: a provider whose keys expire when unused (the kernel's
   * persistent keyring) renews the key's lifetime here. Best effort, never throws.
   */
  renew?(record: KeyRecord): Promise<void>;
  /** One line for `store status`: what protects the key. */
  describe(record?: KeyRecord): string;
  /** Warnings `store status` and every use should show (insecure-file). */
  warnings?(): string[];
}
