/**
 * The `keyutils` key provider: the Linux kernel key-management facility, for headless machines.
 *
 * The key is a `user` key described `azkeep:<key id>`, added to the session keyring and linked
 * into the user's persistent keyring — the same layout as @napi-rs/keyring's keyutils backend,
 * so both backends here read each other's keys:
 * - session keyring: gone when the login session ends;
 * - persistent keyring: survives logout, expires after `/proc/sys/kernel/keys/persistent_keyring_expiry`
 *   seconds without use (3 days by default; each write renews it) and never survives a reboot.
 * After a reboot the key is gone: the store cannot be opened and azkeep says to sign in again.
 *
 * Backends: the `keyctl` command (Debian `keyutils`; ~2 ms per call; a cached read in the
 * session that wrote the key is one call, `keyctl pipe`) when it is on PATH, else
 * the kernel calls inside @napi-rs/keyring (~10 ms to load the native module). The key goes to
 * `keyctl` on standard input, never on its command line. The key's permissions are the
 * kernel default: only processes that possess it (through the session keyring) can read it.
 */
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";
import type * as ChildProcess from "node:child_process";
import type * as Keyring from "@napi-rs/keyring";
import { AzkeepError } from "../../errors.js";
import { packKey, unpackKey } from "../generation.js";
import type { KeyProvider, KeyRecord, ProviderContext } from "../provider.js";

export function keyDescription(keyIdHex: string): string {
  return `azkeep:${keyIdHex}`;
}

const HINT =
  "Run azkeep inside a session keyring (`keyctl session`, or log in through PAM with pam_keyinit), " +
  "or choose another provider: `azkeep store migrate --to passphrase`. See docs/store.md.";

function unavailable(message: string, cause?: unknown): AzkeepError {
  return new AzkeepError("store_unavailable", message, { hint: HINT, cause });
}

function deniedError(detail: string): AzkeepError {
  return new AzkeepError(
    "store_unavailable",
    `The kernel keyring holds the store's key, but this process may not read it (keyctl: ${detail}); the store was left as it is.`,
    {
      hint:
        "Run the command in the login session that signed in (or one that possesses its keyring: `keyctl get_persistent @s`), " +
        "or from there move the store to a provider usable here: `azkeep store migrate --to passphrase`.",
    },
  );
}

interface Backend {
  add(desc: string, key: Uint8Array): void;
  /** undefined = not found. */
  read(desc: string): Uint8Array | undefined;
  /** Replaces the payload of the key (found as `read` finds it). */
  update(desc: string, payload: Uint8Array): void;
  remove(desc: string): boolean;
  /** Renews the persistent keyring's expiry and (re-)links the key into it. Best effort. */
  renew(desc: string): void;
}

type SpawnSync = typeof ChildProcess.spawnSync;

function keyctlBackend(
  pctx: ProviderContext,
  timeoutMs: number,
  spawnSync: SpawnSync,
  keyctl: string,
): Backend {
  const env = { PATH: pctx.ctx.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", LC_ALL: "C" };
  const run = (args: string[], input?: Uint8Array) => {
    const r = spawnSync(keyctl, args, { input, env, timeout: timeoutMs, maxBuffer: 1 << 16 });
    if (r.error)
      throw unavailable(`The kernel keyring could not be used (keyctl: ${r.error.message}).`, r.error);
    return { ok: r.status === 0, stdout: r.stdout, stderr: r.stderr.toString("utf8").trim() };
  };
  const notFound = (stderr: string) =>
    /Can't find|not available|No such|expired|revoked|Key has been/i.test(stderr);
  const denied = (stderr: string) => /Permission denied/i.test(stderr);
  const linkPersistent = () => {
    // Links the persistent keyring into the session (renewing its expiry); absent on some kernels.
    const p = run(["get_persistent", "@s"]);
    return p.ok ? p.stdout.toString("utf8").trim() : undefined;
  };
  const pipe = (desc: string) => run(["pipe", `%user:${desc}`]);
  return {
    add(desc, key) {
      const r = run(["padd", "user", desc, "@s"], key);
      if (!r.ok) throw unavailable(`The kernel keyring refused the key (keyctl: ${r.stderr}).`);
      const id = r.stdout.toString("utf8").trim();
      const persistent = linkPersistent();
      if (persistent) run(["link", id, persistent]);
    },
    read(desc) {
      // The common case is one spawn: `keyctl pipe` finds the key through the session keyring.
      let r = pipe(desc);
      // In a new login session the key is reachable only once the persistent keyring is linked
      // in; until then the kernel says "not found" or, having found it, "permission denied".
      // Linking it (two more spawns) makes every later read in this session one spawn again.
      if (!r.ok && (notFound(r.stderr) || denied(r.stderr)) && linkPersistent() !== undefined) r = pipe(desc);
      if (r.ok) return new Uint8Array(r.stdout);
      if (notFound(r.stderr)) return undefined;
      // Found, but this process may not read it (another login session's keyring, or changed
      // permissions): not a loss — the session that holds it still can. Saying "missing" here
      // set the store aside and broke that session too.
      if (denied(r.stderr)) throw deniedError(r.stderr);
      throw unavailable(`The kernel keyring could not be read (keyctl: ${r.stderr}).`);
    },
    update(desc, payload) {
      // One spawn: the kernel replaces the payload of that key object atomically, wherever it
      // is linked (session and persistent keyring). Found as `pipe` finds it.
      const r = run(["pupdate", `%user:${desc}`], payload);
      if (r.ok) return;
      if (denied(r.stderr)) throw deniedError(r.stderr);
      throw unavailable(`The kernel keyring refused to update the key (keyctl: ${r.stderr}).`);
    },
    renew(desc) {
      const persistent = linkPersistent();
      if (!persistent) return;
      const found = run(["search", "@s", "user", desc]);
      if (found.ok) run(["link", found.stdout.toString("utf8").trim(), persistent]);
    },
    remove(desc) {
      linkPersistent();
      const r = run(["invalidate", `%user:${desc}`]);
      if (r.ok) return true;
      if (notFound(r.stderr)) return false;
      throw unavailable(`The kernel keyring refused to delete the key (keyctl: ${r.stderr}).`);
    },
  };
}

async function napiBackend(): Promise<Backend> {
  let mod: typeof Keyring;
  try {
    mod = await import("@napi-rs/keyring");
  } catch (e) {
    throw unavailable("Neither `keyctl` (Debian package keyutils) nor @napi-rs/keyring is available.", e);
  }
  const entry = (desc: string) =>
    mod.Entry.withTarget(desc, "azkeep", desc, { linux: { store: "keyutils" } });
  const wrap = <T>(what: string, f: () => T): T => {
    try {
      return f();
    } catch (e) {
      if (e instanceof AzkeepError) throw e;
      throw unavailable(`The kernel keyring refused to ${what}: ${(e as Error).message}`, e);
    }
  };
  return {
    add: (desc, key) => wrap("store the key", () => entry(desc).setSecret(key)),
    read: (desc) =>
      wrap("read the key", () => {
        try {
          const s = entry(desc).getSecret();
          return s ? new Uint8Array(s) : undefined;
        } catch (e) {
          if (/no (matching )?entry|not found/i.test((e as Error).message)) return undefined;
          if (/permission denied|EACCES/i.test((e as Error).message)) throw deniedError((e as Error).message);
          throw e;
        }
      }),
    update: (desc, payload) => wrap("update the key", () => entry(desc).setSecret(payload)),
    // keyring-rs re-links the key into the session and persistent keyrings on every read.
    renew: (desc) => void entry(desc).getSecret(),
    remove: (desc) =>
      wrap("delete the key", () => {
        try {
          return entry(desc).deleteCredential();
        } catch (e) {
          if (/no (matching )?entry|not found/i.test((e as Error).message)) return false;
          throw e;
        }
      }),
  };
}

/**
 * Looks `keyctl` up on PATH without spawning anything (this runs on the hot path); its absolute
 * path is then spawned, so the child does not walk PATH again.
 */
function findKeyctl(pctx: ProviderContext): string | undefined {
  const path = pctx.ctx.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin";
  for (const dir of path.split(delimiter)) {
    const file = join(dir || ".", "keyctl");
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      /* next */
    }
  }
  return undefined;
}

export function createKeyutilsProvider(pctx: ProviderContext): KeyProvider {
  const timeoutMs = pctx.options.keyringTimeoutMs ?? 5000;
  let backend: Promise<Backend> | undefined;
  const get = (): Promise<Backend> =>
    (backend ??= (async () => {
      if (process.platform !== "linux")
        throw unavailable("The kernel keyring (keyutils) exists only on Linux.");
      const choice = pctx.options.keyutilsBackend;
      const keyctl = choice === "napi" ? undefined : findKeyctl(pctx);
      if (choice === "keyctl" || keyctl !== undefined) {
        // Loaded here, not at start-up (a static import would cost every command in a one-file bundle).
        const { spawnSync } = await import("node:child_process");
        return keyctlBackend(pctx, timeoutMs, spawnSync, keyctl ?? "keyctl");
      }
      return napiBackend();
    })());
  return {
    name: "keyutils",
    async createKey(kid) {
      const b = await get();
      const key = pctx.ctx.random.bytes(32);
      const desc = keyDescription(kid.toString("hex"));
      b.add(desc, key);
      // Read it back: a session keyring that silently drops links (some containers) must not
      // be chosen, or the next command would find no key.
      const back = b.read(desc);
      if (!back || !Buffer.from(back).equals(Buffer.from(key))) {
        try {
          b.remove(desc);
        } catch {
          /* nothing to clean */
        }
        throw unavailable(
          "The kernel keyring accepted the key but cannot give it back in this session " +
            "(typical in containers without a session keyring).",
        );
      }
      return { key };
    },
    async getKey(record: KeyRecord) {
      const payload = (await get()).read(keyDescription(record.keyId));
      return payload && unpackKey(payload).key;
    },
    // The generation is in the key's own payload: the one `keyctl pipe` of a read gives both.
    async readKey(record: KeyRecord) {
      const payload = (await get()).read(keyDescription(record.keyId));
      return payload && unpackKey(payload);
    },
    async setGeneration(record, key, generation) {
      (await get()).update(keyDescription(record.keyId), packKey(key, generation));
    },
    async deleteKey(record) {
      return (await get()).remove(keyDescription(record.keyId));
    },
    async renew(record) {
      try {
        (await get()).renew(keyDescription(record.keyId));
      } catch {
        /* best effort: the key is still readable from this session */
      }
    },
    describe: (record) =>
      `the key is in the Linux kernel keyring (session + persistent keyring, key "${keyDescription(record?.keyId ?? "<key id>")}"); ` +
      "it does not survive a reboot — after one, sign in again",
  };
}
