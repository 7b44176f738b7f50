/**
 * The sealed store on disk: `profile.json` (no secrets) and `tokens.sealed` (AES-256-GCM) in
 * azkeep's config folder, with the data key in a key provider.
 *
 * - Reads take no lock: files are only ever replaced by rename, so a reader sees a whole old
 *   or a whole new file. Every read checks the folder's and the file's owner and mode.
 * - `update` holds `store.lock` across re-read → change → write (temp → fsync → rename →
 *   fsync folder). tokens.sealed is written before profile.json, so a crash between the two
 *   leaves new tokens with the old profile (an unused token, never a listed account whose
 *   token is half-written).
 * - Damage (any changed byte, truncation, unknown version, missing key) is one
 *   `store_damaged` error whose hint is the command to run; the file is moved aside under the
 *   lock — only if it is still the bytes that failed, so a file another process just replaced
 *   is never moved — and is never used half-read.
 */
import { join } from "node:path";
import { CONFIG_LOCK, configPath, readConfig, updateConfig, type AzkeepConfig } from "../config.js";
import type { Context } from "../context.js";
import { AzkeepError } from "../errors.js";
import { emptyProfile, type Profile } from "../profile/types.js";
import type { RepairReport } from "./repair.js";
import { profileProblem } from "./shape.js";
import {
  checkDir,
  ensurePrivateDir,
  moveAside,
  readPrivateFile,
  removeDebris,
  shq,
  writeFileAtomic,
} from "./files.js";
import {
  TamperFound,
  bindUnbound,
  canonical,
  cloudLookup,
  sameJson,
  digest,
  mirrorCovers,
  protectedConfig,
  tamperedError,
  verifyConfig,
  verifyProfile,
  withSealedSections,
} from "./integrity.js";
import type { KeyProvider, KeyRecord, ProviderName, StoreOptions } from "./provider.js";
import { chooseProvider, loadProvider, requestedProvider } from "./providers/index.js";
import {
  keyCheckValue,
  kidHex,
  KID_BYTES,
  parseHeader,
  seal,
  SealError,
  unseal,
  NONCE_BYTES,
} from "./sealed.js";
import { emptySecrets, type Secrets, type Store, type StoreState, type StoreStatus } from "./types.js";

export const PROFILE_FILE = "profile.json";
export const SEALED_FILE = "tokens.sealed";
export const STORE_LOCK = "store.lock";

const SIGN_IN_HINT =
  "Run `azkeep login` to sign in again (service principals: `azkeep login --service-principal …`).";
const REPAIR_HINT =
  "Run `azkeep store repair` to rebuild the account list from the sealed credentials (then `azkeep account list --refresh` " +
  "for the subscriptions), or sign in again with `azkeep login`.";
const hintFor = (file: string) => (file.endsWith(PROFILE_FILE) ? REPAIR_HINT : SIGN_IN_HINT);

/** Why a file was found damaged, for the message. */
type Damage =
  | { kind: "sealed"; error: SealError }
  | { kind: "key_missing"; record: KeyRecord }
  | { kind: "key_wrong"; record: KeyRecord }
  | { kind: "unknown_key"; kid: string }
  | { kind: "profile"; reason: string };

class DamageFound extends Error {
  constructor(
    readonly file: string,
    readonly bytes: Buffer,
    readonly damage: Damage,
  ) {
    super("damaged");
  }
}

function damageMessage(file: string, d: Damage): string {
  switch (d.kind) {
    case "sealed":
      if (d.error.reason === "unknown_version")
        return `The token store ${file} was written by another azkeep version: ${d.error.message}.`;
      return `The token store ${file} is damaged: ${d.error.message}.`;
    case "key_missing":
      return (
        `The token store ${file} cannot be opened: its key is not in the ${d.record.provider} provider ` +
        "(after a reboot for keyutils, or the folder was copied from another machine, user or HOME)."
      );
    case "key_wrong":
      return `The token store ${file} cannot be opened: the key in the ${d.record.provider} provider is not the one that sealed it.`;
    case "unknown_key":
      return `The token store ${file} is sealed with key ${d.kid}, which config.json does not name (the file was changed, or config.json replaced).`;
    case "profile":
      return `The profile ${file} is damaged: ${d.reason}.`;
  }
}

function sameBytes(a: Buffer | undefined, b: Buffer): boolean {
  return a !== undefined && a.equals(b);
}

function parseProfile(raw: Buffer): Profile | string {
  let value: unknown;
  try {
    // The Azure CLI writes a byte-order mark; azkeep never does, but tolerates one.
    value = JSON.parse(raw.toString("utf8").replace(/^\uFEFF/, ""));
  } catch {
    return "it is not valid JSON";
  }
  const problem = profileProblem(value);
  return problem ? `it has the wrong shape (${problem})` : (value as Profile);
}

function validSecrets(value: unknown): value is Secrets {
  const s = value as Secrets | null;
  return (
    s !== null &&
    typeof s === "object" &&
    s.version === 1 &&
    Array.isArray(s.refreshTokens) &&
    Array.isArray(s.accessTokens) &&
    Array.isArray(s.servicePrincipals)
  );
}

/** What a read found: the sealed truth, and the plain files as they are on disk. */
interface VerifiedState {
  profile: Profile;
  secrets: Secrets;
  /** config.json with its protected sections as sealed. */
  config: AzkeepConfig;
  onDisk: { profile?: Profile; config: AzkeepConfig };
  /** tokens.sealed exists (and opened). */
  sealed: boolean;
  /** Sealed by azkeep 0.1: no mirror, credentials unbound. */
  upgrade: boolean;
}

export interface FileStore extends Store {
  readSettings(): Promise<Record<string, unknown>>;
  updateSettings<T>(change: (config: Record<string, unknown>) => T | Promise<T>): Promise<T>;
  /** profile.json as it is on disk, not checked against the seal (which stays sealed). */
  readPlainProfile(): Promise<Profile>;
  /** Re-seals under a new key of `to` (`store migrate`). See `migrateStore`. */
  migrate(to: ProviderName): Promise<{ from: ProviderName | undefined; to: ProviderName; keyId: string }>;
  /** The provider instance for a name (status, doctor). */
  provider(name: ProviderName): Promise<KeyProvider>;
  /**
   * `store repair`: finds the key again from the seal's header, rebuilds the account list. See
   * `repair.ts`. `acceptRollback`: open a tokens.sealed older than its provider's recorded
   * generation (a backup put back on purpose) and seal it as the newest.
   */
  repair(options?: { acceptRollback?: boolean }): Promise<RepairReport>;
}

export function createFileStore(ctx: Context, options: StoreOptions = {}): FileStore {
  const dir = ctx.paths.configDir;
  const sealedPath = join(dir, SEALED_FILE);
  const profilePath = join(dir, PROFILE_FILE);
  const lockPath = join(dir, STORE_LOCK);
  const keys = new Map<string, Uint8Array>();
  const providers = new Map<ProviderName, Promise<KeyProvider>>();
  let warnedInsecure = false;

  const pctx = { ctx, configDir: dir, options };
  const provider = (name: ProviderName): Promise<KeyProvider> => {
    let p = providers.get(name);
    if (!p) {
      p = loadProvider(name, pctx);
      providers.set(name, p);
    }
    return p;
  };
  // The lock module is loaded only by writers (and damage handling): reads never need it.
  const lock = async <T>(fn: () => Promise<T>): Promise<T> => {
    const { withLock } = await import("./lock.js");
    const signal = ctx.signal;
    return withLock(lockPath, fn, {
      clock: ctx.clock,
      ...(signal ? { signal } : {}),
      ...(options.lockTimeoutMs !== undefined ? { timeoutMs: options.lockTimeoutMs } : {}),
    });
  };

  function warnIfInsecure(p: KeyProvider): void {
    if (p.name !== "insecure-file" || warnedInsecure) return;
    warnedInsecure = true;
    for (const w of p.warnings?.() ?? []) ctx.logger.warn(w);
  }

  /** The key of a record: cached per key id; undefined when the provider says it is gone. */
  async function keyOf(record: KeyRecord): Promise<Uint8Array | undefined> {
    const cached = keys.get(record.keyId);
    if (cached) return cached;
    const p = await provider(record.provider);
    warnIfInsecure(p);
    const verify = (k: Uint8Array) => keyCheckValue(k) === record.keyCheck;
    if (p.readKey) {
      // The generation comes in the same read as the key (rollback detection, no extra call).
      const got = await p.readKey(record, verify);
      if (got) {
        keys.set(record.keyId, got.key);
        noteCounter(record.keyId, got.generation ?? null, true);
      }
      return got?.key;
    }
    const key = await p.getKey(record, verify);
    if (key) keys.set(record.keyId, key);
    return key;
  }

  // ---- Rollback detection (issue 8 item 8; `generation.ts`, docs/store.md "Rollback").
  /**
   * Per key id: the generation the provider holds (null: none kept yet), and whether that value
   * was read from the provider by the current open (so the check needs no second read).
   */
  const counters = new Map<string, { value: number | null; fresh: boolean }>();
  /** The highest generation this process has seen sealed or recorded, per key id. */
  const highest = new Map<string, number>();
  /** The sealed bytes last found not rolled back: the same bytes need no new provider read. */
  let checkedSealed: Buffer | undefined;
  /** A provider that keeps generations but holds none yet for this store (an upgrade). */
  let counterMissing = false;
  /** The store whose provider holds no generation yet (recorded once, under the lock). */
  let missingFor: { record: KeyRecord; generation: number } | undefined;
  /** `store repair --accept-rollback`: open an older store on purpose. */
  let acceptRollback = false;
  /** What `repair --accept-rollback` found: the sealed generation and the provider's. */
  let rolledBack: { generation: number; counter: number } | undefined;

  function noteCounter(keyId: string, value: number | null, fresh: boolean): void {
    counters.set(keyId, { value, fresh });
    if (value !== null) highest.set(keyId, Math.max(highest.get(keyId) ?? 0, value));
  }

  /**
   * Refuses a tokens.sealed older than the generation its key provider recorded: an earlier
   * copy put back (with profile.json) by a program that could read the folder but not the key
   * would otherwise undo a `logout`. Providers with no place outside the folder (passphrase,
   * insecure-file): only what this process saw — the agent's vault, which lives for hours,
   * refuses a file older than one it opened or wrote; a new process cannot tell.
   */
  async function checkRollback(record: KeyRecord, raw: Buffer, secrets: Secrets): Promise<void> {
    if (checkedSealed?.equals(raw)) return;
    const p = await provider(record.provider);
    const kept = p.readKey !== undefined && p.setGeneration !== undefined;
    let c = counters.get(record.keyId);
    if (kept && !c?.fresh) {
      // The key was cached by an earlier open (a long-lived process: the agent's vault, or a
      // write re-reading a file that changed): ask the provider again, once per new file.
      const got = await p.readKey!(record, (k) => keyCheckValue(k) === record.keyCheck);
      noteCounter(record.keyId, got?.generation ?? null, true);
      c = counters.get(record.keyId);
    }
    if (c) c.fresh = false;
    const sealedGen = secrets.generation ?? 0;
    const seen = highest.get(record.keyId) ?? 0;
    const known = Math.max(c?.value ?? 0, seen);
    counterMissing = kept && (c?.value === null || c?.value === undefined);
    if (sealedGen < known && !acceptRollback) {
      const byProvider = (c?.value ?? 0) >= seen && kept;
      throw new AzkeepError(
        "store_tampered",
        `${sealedPath} is older than the last token store azkeep wrote (generation ${sealedGen}; ` +
          (byProvider
            ? `the ${record.provider} key provider recorded ${known}`
            : `this process${ctx.env.AZKEEP_AGENT_VAULT === "1" ? ", the azkeep agent," : ""} opened ${known} before`) +
          "): an earlier copy of tokens.sealed and profile.json was put back, which would undo sign-ins and logouts made since. azkeep did not use it and changed nothing.",
        {
          hint:
            (byProvider
              ? "If you put it back on purpose (a backup), run `azkeep store repair --accept-rollback` to use it. "
              : "If you put it back on purpose (a backup), restart the agent (`azkeep agent stop && azkeep agent start`) to use it. ") +
            `Otherwise move both files aside (\`mv ${shq(sealedPath)} ${shq(sealedPath + ".rollback")} && mv ${shq(profilePath)} ${shq(profilePath + ".rollback")}\`) and sign in again with \`azkeep login\`.`,
          details: { file: sealedPath, generation: sealedGen, recorded: known, provider: record.provider },
        },
      );
    }
    if (sealedGen < known) rolledBack = { generation: sealedGen, counter: known };
    if (counterMissing) missingFor = { record, generation: sealedGen };
    checkedSealed = raw;
    highest.set(record.keyId, Math.max(seen, sealedGen));
  }

  /**
   * A store written before its provider kept a generation (an upgrade): record the sealed one
   * now, once, under the lock (no re-seal). Silent: a provider that cannot be written now is
   * asked again by the next process, and the next write records it anyway.
   */
  async function establishCounter(): Promise<void> {
    try {
      await lock(async () => {
        checkedSealed = undefined;
        await readLocked(readStateRaw);
        const m = missingFor;
        const key = m && keys.get(m.record.keyId);
        if (!counterMissing || !m || !key) return;
        await (await provider(m.record.provider)).setGeneration?.(m.record, key, m.generation);
        noteCounter(m.record.keyId, m.generation, false);
        counterMissing = false;
        missingFor = undefined;
        ctx.logger.debug(
          `token store: the ${m.record.provider} provider now records generation ${m.generation}`,
        );
      });
    } catch (e) {
      ctx.logger.debug(`token store: the store's generation was not recorded yet: ${(e as Error).message}`);
    }
  }

  /**
   * The generation the next seal under `keyId` gets: above everything sealed or recorded, and
   * never below the clock (ms) — so a store started afresh (the file deleted or set aside as
   * damaged, then a sign-in) is newer than every file before it, even to a process that knew
   * a high generation (the agent) and a provider that keeps none.
   */
  function nextGeneration(keyId: string, sealed: number | undefined): number {
    return Math.max(
      Math.max(sealed ?? 0, counters.get(keyId)?.value ?? 0, highest.get(keyId) ?? 0) + 1,
      Math.floor(ctx.clock.now()),
    );
  }

  /**
   * After tokens.sealed with `generation` is renamed in place: the provider records it. Never
   * before the rename — a crash between the two leaves the counter one behind (accepted: the
   * file is newer), never ahead (which would refuse a good store, or force accepting
   * counter − 1, and a rollback by exactly one write — a `logout` — would pass).
   */
  async function recordGeneration(
    sealWith: { record: KeyRecord; key: Uint8Array },
    generation: number,
    bytes: Buffer,
  ): Promise<void> {
    checkedSealed = bytes;
    highest.set(sealWith.record.keyId, Math.max(highest.get(sealWith.record.keyId) ?? 0, generation));
    const p = await provider(sealWith.record.provider);
    if (!p.setGeneration) return;
    try {
      await p.setGeneration(sealWith.record, sealWith.key, generation);
      noteCounter(sealWith.record.keyId, generation, false);
      counterMissing = false;
    } catch (e) {
      ctx.logger.warn(
        `The ${p.name} key provider could not record the token store's generation (${(e as Error).message}); ` +
          "rollback detection is behind until the next write.",
      );
    }
  }

  function recordFor(config: AzkeepConfig, kid: string): KeyRecord | undefined {
    const s = config.store;
    if (s?.key?.keyId === kid) return s.key;
    if (s?.previous?.keyId === kid) return s.previous;
    return undefined;
  }

  /** Opens sealed bytes; DamageFound for anything that makes them unusable. */
  async function openSealed(raw: Buffer): Promise<Secrets> {
    let kid: string;
    let sealedUnder: string | undefined;
    try {
      const h = parseHeader(raw);
      kid = kidHex(h.kid);
      sealedUnder = h.provider;
    } catch (e) {
      if (e instanceof SealError) throw new DamageFound(sealedPath, raw, { kind: "sealed", error: e });
      throw e;
    }
    let config = await readConfig(ctx);
    let record = recordFor(config, kid);
    // A migration may have replaced both files between our two reads: look once more.
    if (!record) record = recordFor((config = await readConfig(ctx)), kid);
    // config.json names another key: the header was changed (or config.json replaced) — damage.
    if (!record && config.store?.key) throw new DamageFound(sealedPath, raw, { kind: "unknown_key", kid });
    // config.json lost (or moved aside for its wrong shape): the sealed file may be whole and
    // its key still in its provider; not a definite loss, so it is never set aside.
    if (!record)
      throw new AzkeepError(
        "config",
        `The token store ${sealedPath} is sealed with key ${kid}, and config.json names no key (lost or moved aside); the store was left as it is.`,
        {
          hint: "Run `azkeep store repair` to find its key again from the key providers (it changes nothing it cannot open).",
          details: { file: sealedPath, keyId: kid },
        },
      );
    const key = await keyOf(record);
    // The header (authenticated) names the provider that holds the key. config.json naming
    // another one that does not hold the key was edited outside azkeep (a passphrase store
    // presented as a keyutils one "lost after a reboot"): not damage, so nothing is set aside
    // or replaced. (When config.json's provider does hold the key, the header byte changed:
    // the unseal below fails as for any other changed byte.)
    if (!key && sealedUnder !== undefined && sealedUnder !== record.provider)
      throw new AzkeepError(
        "config",
        `config.json names the ${record.provider} key provider for the token store, but ${sealedPath} was sealed under the ${sealedUnder} provider: config.json was changed outside azkeep. Nothing was changed or replaced.`,
        {
          hint: `Set "provider" back to "${sealedUnder}" in config.json's store.key, or move config.json aside and run \`azkeep store repair\`. To change providers, use \`azkeep store migrate --to PROVIDER\`.`,
          details: {
            file: sealedPath,
            keyId: kid,
            configProvider: record.provider,
            sealedProvider: sealedUnder,
          },
        },
      );
    if (!key) throw new DamageFound(sealedPath, raw, { kind: "key_missing", record });
    let plain: Buffer;
    try {
      plain = unseal(raw, () => key);
    } catch (e) {
      if (!(e instanceof SealError)) throw e;
      // Only now (the rare path) tell "the provider holds another key" from "the file changed".
      if (e.reason === "auth_failed" && keyCheckValue(key) !== record.keyCheck) {
        keys.delete(record.keyId);
        throw new DamageFound(sealedPath, raw, { kind: "key_wrong", record });
      }
      throw new DamageFound(sealedPath, raw, { kind: "sealed", error: e });
    }
    let value: unknown;
    try {
      value = JSON.parse(plain.toString("utf8"));
    } catch {
      value = undefined;
    }
    ctx.logger.debug(`token store: opened ${sealedPath} with key ${kid} (${record.provider})`);
    if (!validSecrets(value))
      throw new DamageFound(sealedPath, raw, {
        kind: "sealed",
        error: new SealError("bad_content", "its content is not a token store this azkeep understands"),
      });
    await checkRollback(record, raw, value);
    return value;
  }

  function readProfileRaw(): Profile {
    if (!checkDir(dir)) return emptyProfile();
    const raw = readPrivateFile(profilePath);
    if (!raw) return emptyProfile();
    const p = parseProfile(raw);
    if (typeof p === "string") throw new DamageFound(profilePath, raw, { kind: "profile", reason: p });
    return p;
  }

  async function readSecretsRaw(): Promise<Secrets> {
    if (!checkDir(dir)) return emptySecrets();
    const raw = readPrivateFile(sealedPath);
    if (!raw) return emptySecrets();
    return openSealed(raw);
  }

  /** profile.json as it is on disk; undefined when missing. */
  function readProfileFile(): Profile | undefined {
    const raw = readPrivateFile(profilePath);
    if (!raw) return undefined;
    const p = parseProfile(raw);
    if (typeof p === "string") throw new DamageFound(profilePath, raw, { kind: "profile", reason: p });
    return p;
  }

  /**
   * Both files and config.json, checked against the seal's mirror: what is returned is the
   * sealed content (`integrity.ts`). An edit made outside azkeep throws `store_tampered`.
   */
  async function readStateRaw(): Promise<VerifiedState> {
    if (!checkDir(dir))
      return {
        profile: emptyProfile(),
        secrets: emptySecrets(),
        config: { version: 1 },
        onDisk: { config: { version: 1 } },
        sealed: false,
        upgrade: false,
      };
    const config = await readConfig(ctx);
    const rawSealed = readPrivateFile(sealedPath);
    const secrets = rawSealed ? await openSealed(rawSealed) : emptySecrets();
    const profileFile = readProfileFile();
    const onDisk = { config, ...(profileFile ? { profile: profileFile } : {}) };
    const m = secrets.mirror;
    if (m) {
      const found: TamperFound[] = [];
      let profile = m.profile;
      try {
        profile = verifyProfile(m, profileFile);
      } catch (e) {
        if (!(e instanceof TamperFound)) throw e;
        found.push(e);
      }
      try {
        verifyConfig(m, config as unknown as Record<string, unknown>);
      } catch (e) {
        if (!(e instanceof TamperFound)) throw e;
        found.push(e);
      }
      if (found.length) throw tamperedError(found);
      {
        return {
          profile,
          secrets,
          config: withSealedSections(
            config as unknown as Record<string, unknown>,
            m,
          ) as unknown as AzkeepConfig,
          onDisk,
          sealed: true,
          // Sealed before a part of config.json was protected: seal it now (once).
          upgrade: !mirrorCovers(m),
        };
      }
    }
    // No mirror: nothing sealed yet, or a store written by azkeep 0.1 (bound on the next write).
    return {
      profile: profileFile ?? emptyProfile(),
      secrets,
      config,
      onDisk,
      sealed: rawSealed !== undefined,
      upgrade: rawSealed !== undefined,
    };
  }

  /** Lock-free reads: one read shared by the calls made together (profile, secrets, settings). */
  let inflight: Promise<VerifiedState> | undefined;
  async function readState(): Promise<VerifiedState> {
    if (!inflight) {
      inflight = readWithRecovery(readStateRaw).catch(async (e: unknown) => {
        // The files were read one after the other without the lock: a writer may have renamed
        // one between. Check once more under the lock, where no writer is active.
        if (!(e instanceof AzkeepError) || e.code !== "store_tampered") throw e;
        return lock(() => readLocked(readStateRaw));
      });
      void inflight.then(
        () => (inflight = undefined),
        () => (inflight = undefined),
      );
    }
    const st = await inflight;
    if (counterMissing && st.sealed && !st.upgrade) await establishCounter();
    if (st.upgrade) {
      // A 0.1 store: bind its credentials and seal the mirror now, then read what was written.
      await store.update(() => {});
      inflight = undefined;
      return readWithRecovery(readStateRaw);
    }
    return st;
  }

  /**
   * The state a write starts from, under the lock. Damage is settled (moved aside) and shown as
   * a warning, and the read is repeated without the damaged file — a sign-in after a reboot
   * (keyutils) or a damaged file just works; tampering is not damage and stops the write.
   */
  async function readForWrite(): Promise<VerifiedState> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await readLocked(readStateRaw);
      } catch (e) {
        if (!(e instanceof AzkeepError) || e.code !== "store_damaged" || attempt >= 2) throw e;
        ctx.logger.warn(`${e.message} ${e.hint ?? ""}`.trim());
      }
    }
  }

  /** Binds what is unbound, sets the mirror and the generation, and seals. */
  async function sealState(
    secrets: Secrets,
    profile: Profile,
    config: AzkeepConfig,
    onDisk: VerifiedState["onDisk"],
    sealWith?: { record: KeyRecord; key: Uint8Array },
  ): Promise<void> {
    const cfg = config as unknown as Record<string, unknown>;
    bindUnbound(secrets, cloudLookup(cfg), "sign-in");
    secrets.mirror = {
      version: 1,
      profile,
      config: protectedConfig(cfg),
      previous: {
        ...(onDisk.profile ? { profile: digest(onDisk.profile) } : {}),
        config: digest(protectedConfig(onDisk.config as unknown as Record<string, unknown>)),
      },
    };
    const withKey = sealWith ?? (await writeKey());
    secrets.generation = nextGeneration(withKey.record.keyId, secrets.generation);
    const bytes = await writeSealed(secrets, withKey);
    await recordGeneration(withKey, secrets.generation, bytes);
    await finishMigration();
    await (await provider(withKey.record.provider)).renew?.(withKey.record);
  }

  /** Moves the damaged file aside (if unchanged) and throws the one clear error. Caller holds the lock. */
  function settleDamage(d: DamageFound): never | "changed" {
    const now = readPrivateFile(d.file);
    if (!sameBytes(now, d.bytes)) return "changed";
    const aside = moveAside(d.file, ctx.clock.now());
    const what =
      d.file === sealedPath
        ? "your accounts need to sign in again"
        : "run `azkeep store repair` to rebuild the account list from the sealed credentials";
    throw new AzkeepError(
      "store_damaged",
      `${damageMessage(d.file, d.damage)} It was moved aside to ${aside}; ${what}.`,
      {
        hint: hintFor(d.file),
        details: { file: d.file, movedTo: aside, reason: d.damage.kind },
      },
    );
  }

  /** Runs a lock-free read; on damage, settles it under the lock, re-reading if the file changed. */
  async function readWithRecovery<T>(read: () => T | Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await read();
      } catch (e) {
        if (!(e instanceof DamageFound)) throw e;
        // "changed": another process replaced the file after we read it; read the new one.
        if ((await lock(async () => settleDamage(e))) === "changed" && attempt < 5) continue;
        throw new AzkeepError("store_damaged", damageMessage(e.file, e.damage), { hint: hintFor(e.file) });
      }
    }
  }

  /** Inside the lock: read, settling damage in place (the lock is already ours). */
  async function readLocked<T>(read: () => T | Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (e) {
      if (!(e instanceof DamageFound)) throw e;
      settleDamage(e); // throws unless the file changed, which cannot happen under the lock
      return read();
    }
  }

  /** The key to seal with: the configured one, or a new one (first write, or the key is gone). */
  async function writeKey(): Promise<{ record: KeyRecord; key: Uint8Array }> {
    const config = await readConfig(ctx);
    const current = config.store?.key;
    const requested = requestedProvider(ctx, options);
    if (current) {
      if (requested && requested !== current.provider && requested !== "memory") {
        throw new AzkeepError(
          "config",
          `The token store uses the ${current.provider} provider; ${requested} was asked for (AZKEEP_STORE_PROVIDER). azkeep never changes it silently.`,
          {
            hint: `Run \`azkeep store migrate --to ${requested}\` to change it, or unset AZKEEP_STORE_PROVIDER.`,
          },
        );
      }
      if (current.provider === "insecure-file" && !config.store?.insecureFileOptIn) {
        throw new AzkeepError(
          "store_unavailable",
          "config.json names the insecure-file provider without the explicit opt-in.",
          {
            hint: "Run `azkeep store migrate --to insecure-file` to opt in explicitly, or pick a safer provider with `azkeep store migrate --to keyring`.",
          },
        );
      }
      const key = await keyOf(current);
      if (key) return { record: current, key };
      // The key is gone (reboot, new machine) and the store it sealed was moved aside: same
      // provider, new key. The provider itself never changes here.
      return createKey(await provider(current.provider), "first");
    }
    if (requested) return createKey(await provider(requested), "first", "AZKEEP_STORE_PROVIDER");
    return chooseProvider(pctx, (p) => createKey(p, "first", "automatic"));
  }

  async function createKey(
    p: KeyProvider,
    purpose: "first" | "migrate",
    via = "store migrate",
  ): Promise<{ record: KeyRecord; key: Uint8Array }> {
    const kid = Buffer.from(ctx.random.bytes(KID_BYTES));
    const created = await p.createKey(kid, purpose);
    const record: KeyRecord = {
      provider: p.name,
      keyId: kidHex(kid),
      keyCheck: keyCheckValue(created.key),
      createdAt: new Date(ctx.clock.now()).toISOString(),
      ...(created.scrypt ? { scrypt: created.scrypt } : {}),
    };
    keys.set(record.keyId, created.key);
    await updateConfig(ctx, (c) => {
      const s = (c.store ??= {});
      if (purpose === "migrate" && s.key) s.previous = s.key;
      s.key = record;
      if (p.name === "insecure-file") s.insecureFileOptIn ??= { at: record.createdAt, via };
    });
    warnIfInsecure(p);
    return { record, key: created.key };
  }

  async function writeSealed(
    secrets: Secrets,
    sealWith: { record: KeyRecord; key: Uint8Array },
  ): Promise<Buffer> {
    const bytes = seal(
      Buffer.from(JSON.stringify(secrets), "utf8"),
      sealWith.key,
      Buffer.from(sealWith.record.keyId, "hex"),
      ctx.random.bytes(NONCE_BYTES),
      sealWith.record.provider,
    );
    await writeFileAtomic(sealedPath, bytes);
    ctx.logger.debug(
      `token store: sealed ${sealedPath} with key ${sealWith.record.keyId} (${sealWith.record.provider}), generation ${secrets.generation ?? 0}`,
    );
    return bytes;
  }

  /** After tokens.sealed is sealed with the current key, the previous key can go. */
  async function finishMigration(): Promise<void> {
    const config = await readConfig(ctx);
    const prev = config.store?.previous;
    if (!prev) return;
    if (prev.keyId !== config.store?.key?.keyId) {
      try {
        await (await provider(prev.provider)).deleteKey(prev);
      } catch (e) {
        ctx.logger.warn(
          `The old key (${prev.provider}, id ${prev.keyId}) could not be deleted: ${(e as Error).message}. ` +
            "It no longer opens anything; remove it from the provider by hand.",
        );
      }
    }
    keys.delete(prev.keyId);
    await updateConfig(ctx, (c) => {
      if (c.store?.previous?.keyId === prev.keyId) delete c.store.previous;
      if (c.store?.key?.provider !== "insecure-file") delete c.store?.insecureFileOptIn;
    });
  }

  const store: FileStore = {
    configDir: dir,

    readProfile: async () => (await readState()).profile,
    readSecrets: async () => (await readState()).secrets,
    readSettings: async () => (await readState()).config as unknown as Record<string, unknown>,
    readPlainProfile: async () => (checkDir(dir) ? (readProfileFile() ?? emptyProfile()) : emptyProfile()),

    async update<T>(change: (state: StoreState) => T | Promise<T>): Promise<T> {
      await ensurePrivateDir(dir);
      return lock(async () => {
        removeDebris(dir);
        const st = await readForWrite();
        const { profile, secrets } = st;
        // A 0.1 store: its credentials are bound to the clouds they name, where consistent.
        if (st.upgrade)
          bindUnbound(secrets, cloudLookup(st.config as unknown as Record<string, unknown>), "upgrade");
        const before = { secrets: JSON.stringify(secrets), profile: canonical(profile) };
        const draft: StoreState = { profile, secrets };
        const result = await change(draft);
        const mirrorStale =
          !draft.secrets.mirror ||
          canonical(draft.secrets.mirror.profile) !== canonical(draft.profile) ||
          canonical(draft.secrets.mirror.config) !==
            canonical(protectedConfig(st.config as unknown as Record<string, unknown>)) ||
          draft.secrets.refreshTokens.some((r) => !r.bound) ||
          draft.secrets.servicePrincipals.some((p) => !p.bound);
        const empty =
          !st.sealed &&
          draft.secrets.refreshTokens.length === 0 &&
          draft.secrets.servicePrincipals.length === 0 &&
          draft.secrets.accessTokens.length === 0 &&
          draft.profile.subscriptions.length === 0;
        if (!empty && (mirrorStale || JSON.stringify(draft.secrets) !== before.secrets))
          await sealState(draft.secrets, draft.profile, st.config, st.onDisk);
        if (!st.onDisk.profile || canonical(st.onDisk.profile) !== canonical(draft.profile))
          if (!(empty && !st.onDisk.profile))
            await writeFileAtomic(profilePath, JSON.stringify(draft.profile, null, 2) + "\n");
        return result;
      });
    },

    async updateSettings<T>(change: (config: Record<string, unknown>) => T | Promise<T>): Promise<T> {
      await ensurePrivateDir(dir);
      return lock(async () => {
        removeDebris(dir);
        const st = await readForWrite();
        const { withLock } = await import("./lock.js");
        return withLock(
          join(dir, CONFIG_LOCK),
          async () => {
            const onDisk = await readConfig(ctx);
            // The verified view: protected sections as sealed, the rest as on disk now.
            const draft = structuredClone(
              st.secrets.mirror
                ? withSealedSections(onDisk as unknown as Record<string, unknown>, st.secrets.mirror)
                : (onDisk as unknown as Record<string, unknown>),
            );
            const beforeView = canonical(protectedConfig(draft));
            const result = await change(draft);
            draft.version = 1;
            const view = canonical(protectedConfig(draft));
            // Also when the mirror lags the file (agent-only mode turned on in the file first).
            const lagging = st.secrets.mirror !== undefined && canonical(st.secrets.mirror.config) !== view;
            if (st.sealed && (view !== beforeView || lagging)) {
              // Sealed first: a crash before config.json is renamed leaves the old file, whose
              // digest the mirror keeps as `previous`. Never makes a key here (config.lock is ours).
              const record = onDisk.store?.key;
              const key = record ? await keyOf(record) : undefined;
              if (record && key)
                await sealState(st.secrets, st.profile, draft as unknown as AzkeepConfig, st.onDisk, {
                  record,
                  key,
                });
            }
            if (canonical(draft) !== canonical(onDisk))
              await writeFileAtomic(configPath(ctx), JSON.stringify(draft, null, 2) + "\n");
            return result;
          },
          {
            clock: ctx.clock,
            ...(options.lockTimeoutMs !== undefined ? { timeoutMs: options.lockTimeoutMs } : {}),
          },
        );
      });
    },

    async prepareWrite() {
      await ensurePrivateDir(dir);
      await lock(async () => {
        // Damage that a sign-in would settle anyway (a key lost for good) is settled now; a store
        // that cannot be opened here (provider unavailable, wrong passphrase) fails now.
        // Tampering is not damage: it stops the sign-in here, before any flow starts.
        await readForWrite();
        await writeKey();
      });
    },

    async migrate(to) {
      if (to === "memory")
        throw new AzkeepError(
          "usage",
          "The memory provider keeps nothing on disk, so there is nothing to migrate to.",
          {
            hint: "For a job that should leave nothing behind, set AZKEEP_STORE_PROVIDER=memory instead.",
          },
        );
      await ensurePrivateDir(dir);
      return lock(async () => {
        removeDebris(dir);
        const config = await readConfig(ctx);
        const from = config.store?.key;
        // Re-sealing needs the old key: read before anything changes (damage ends here).
        const secrets = await readLocked(readSecretsRaw);
        const target = await provider(to);
        const oldGen = from ? nextGeneration(from.keyId, secrets.generation) : undefined;
        const created = await createKey(target, "migrate", "store migrate");
        // The new key starts where the old one was: an older file stays refused.
        secrets.generation = Math.max(oldGen ?? 0, nextGeneration(created.record.keyId, secrets.generation));
        await recordGeneration(created, secrets.generation, await writeSealed(secrets, created));
        await finishMigration();
        return { from: from?.provider, to, keyId: created.record.keyId };
      });
    },

    provider,

    async repair(repairOptions: { acceptRollback?: boolean } = {}): Promise<RepairReport> {
      const { findKey, restoreAccounts } = await import("./repair.js");
      await ensurePrivateDir(dir);
      return lock(async () => {
        removeDebris(dir);
        const report: RepairReport = { config: "no store", accountsAdded: [], next: "" };
        let config: AzkeepConfig;
        try {
          config = await readConfig(ctx);
        } catch (e) {
          if (!(e instanceof AzkeepError) || e.code !== "config") throw e;
          const moved = moveAside(configPath(ctx), ctx.clock.now());
          if (moved) report.configMovedTo = moved;
          config = { version: 1 };
        }
        const raw = readPrivateFile(sealedPath);
        let secrets = emptySecrets();
        if (raw) {
          let kid: string;
          try {
            kid = kidHex(parseHeader(raw).kid);
          } catch (e) {
            if (e instanceof SealError)
              settleDamage(new DamageFound(sealedPath, raw, { kind: "sealed", error: e }));
            throw e;
          }
          report.config = "kept";
          if (!recordFor(config, kid)) {
            const order: ProviderName[] = ["keyring", "keyutils", "insecure-file"];
            const { passphraseConfigured } = await import("./providers/passphrase.js");
            if (passphraseConfigured(pctx) || ctx.prompter.interactive) order.push("passphrase");
            const found = await findKey(
              ctx,
              raw,
              kid,
              order
                .filter((n) => n !== "keyutils" || process.platform === "linux")
                .map((name) => ({ name, load: () => provider(name) })),
            );
            keys.set(found.record.keyId, found.key);
            await updateConfig(ctx, (c) => {
              // The key config.json named (if any) opens nothing here; it is not deleted either.
              const st = (c.store ??= {});
              st.key = found.record;
              if (found.record.provider === "insecure-file")
                st.insecureFileOptIn ??= { at: found.record.createdAt, via: "store repair" };
            });
            report.config = "rebuilt";
            report.keyFoundIn = found.record.provider;
          }
          // An older store put back: opened only when the person says so, then sealed above the
          // recorded generation, so that it is the newest from now on.
          acceptRollback = repairOptions.acceptRollback === true;
          try {
            checkedSealed = undefined;
            secrets = await readLocked(readSecretsRaw);
          } finally {
            acceptRollback = false;
          }
          const back = rolledBack;
          rolledBack = undefined;
          if (back) {
            const sealWith = await writeKey();
            secrets.generation = nextGeneration(sealWith.record.keyId, secrets.generation);
            await recordGeneration(sealWith, secrets.generation, await writeSealed(secrets, sealWith));
            report.rollbackAccepted = { generation: back.generation, recorded: back.counter };
          }
        }
        let profile: Profile;
        try {
          profile = readProfileRaw();
        } catch (e) {
          if (!(e instanceof DamageFound)) throw e;
          const moved = moveAside(e.file, ctx.clock.now());
          if (moved) report.profileMovedTo = moved;
          profile = emptyProfile();
        }
        const m = secrets.mirror;
        if (m) {
          // The seal holds the files as azkeep last wrote them: put them back as they were.
          report.restoredFromSeal = [];
          if (!sameJson(profile, m.profile)) {
            await writeFileAtomic(profilePath, JSON.stringify(m.profile, null, 2) + "\n");
            report.restoredFromSeal.push(profilePath);
          }
          const { withLock } = await import("./lock.js");
          await withLock(
            join(dir, CONFIG_LOCK),
            async () => {
              const onDisk = await readConfig(ctx);
              const fixed = withSealedSections(onDisk as unknown as Record<string, unknown>, m);
              if (!sameJson(fixed, onDisk)) {
                await writeFileAtomic(configPath(ctx), JSON.stringify(fixed, null, 2) + "\n");
                report.restoredFromSeal!.push(configPath(ctx));
              }
            },
            { clock: ctx.clock },
          );
          report.next = report.rollbackAccepted
            ? "The older token store is in use again, with the sign-ins it holds; run `azkeep logout` for any you had signed out."
            : report.restoredFromSeal.length
              ? "Nothing else to do: the files are as azkeep last wrote them."
              : "Nothing else to do.";
          return report;
        }
        report.accountsAdded = restoreAccounts(profile, secrets);
        if (report.accountsAdded.length || report.profileMovedTo)
          await writeFileAtomic(profilePath, JSON.stringify(profile, null, 2) + "\n");
        report.next = report.accountsAdded.length
          ? "Run `azkeep account list --refresh` to find the subscriptions of the restored accounts."
          : "Nothing else to do.";
        return report;
      });
    },

    async status(): Promise<StoreStatus> {
      const { storeStatus } = await import("./status.js");
      return storeStatus(ctx, store);
    },
  };
  return store;
}
