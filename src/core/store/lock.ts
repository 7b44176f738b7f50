/**
 * A small cross-process lock: a file created atomically with `link(2)` (so it is never seen
 * empty), holding its owner's pid, host and a random token.
 *
 * Threat it stops: two processes doing read-modify-write on the store at once and one losing
 * the other's update (the Azure CLI's truncate-in-place cache gave false "run az login" errors
 * this way). A lock left by a crashed process is recovered: same host and the pid is gone, or
 * no heartbeat for `staleMs`. Breaking a stale lock happens under a second short-lived lock so
 * two waiters cannot both break it and then delete each other's fresh lock.
 */
import { randomBytes } from "node:crypto";
import { promises as fsp } from "node:fs";
import type { Clock } from "../context.js";
import { AzkeepError } from "../errors.js";
import { pidAlive, readOwnFile, shq } from "./files.js";

export interface LockOptions {
  clock: Clock;
  /** Give up after this long (default 60 s): one ERROR naming the lock file and its owner. */
  timeoutMs?: number;
  /** A lock whose heartbeat is older than this is stale even if its owner looks alive (default 30 s). */
  staleMs?: number;
  /** How often the holder refreshes the lock's mtime (default staleMs / 4). */
  heartbeatMs?: number;
  signal?: AbortSignal;
}

interface Owner {
  pid: number;
  host: string;
  token: string;
  /** Epoch ms, for people reading the file. */
  since: number;
}

let HOST = "";

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

async function touch(path: string, nowMs: number): Promise<void> {
  const t = nowMs / 1000;
  await fsp.utimes(path, t, t);
}

/**
 * Reads the lock's owner without following a symlink or blocking on a FIFO (threat: a planted
 * `store.lock` FIFO hung every write, a dangling symlink stalled writes for the whole timeout):
 * anything but a regular file of ours is refused at once, with the `rm` that clears it.
 */
async function readOwner(path: string): Promise<{ owner: Owner | undefined; mtimeMs: number } | undefined> {
  const read = readOwnFile(path, 4096);
  if (!read) return undefined;
  let owner: Owner | undefined;
  try {
    owner = JSON.parse(read.bytes.toString("utf8")) as Owner;
  } catch {
    owner = undefined;
  }
  return { owner, mtimeMs: read.mtimeMs };
}

function isStale(info: { owner: Owner | undefined; mtimeMs: number }, now: number, staleMs: number): boolean {
  if (now - info.mtimeMs > staleMs) return true;
  const o = info.owner;
  return o !== undefined && o.host === HOST && o.pid !== process.pid && !pidAlive(o.pid);
}

/** Breaks `path` if it still holds the lock we saw as stale (token), under `path.break`. */
async function breakStale(path: string, staleToken: string | undefined, staleMtime: number, now: number) {
  const breaker = `${path}.break`;
  try {
    await fsp.mkdir(breaker, { mode: 0o700 });
  } catch (e) {
    if (errno(e) !== "EEXIST") throw e;
    // A breaker left by a process killed inside this tiny section: remove it after 10 s.
    const planted = await fsp.lstat(breaker).then(
      (st) => !st.isDirectory(),
      () => false,
    );
    if (planted)
      throw new AzkeepError(
        "store_unavailable",
        `${breaker} is not a folder azkeep made; azkeep refuses to use it.`,
        {
          hint: `Remove it: rm ${shq(breaker)}`,
        },
      );
    try {
      const st = await fsp.lstat(breaker);
      if (now - st.mtimeMs > 10_000) await fsp.rmdir(breaker);
    } catch {
      /* gone meanwhile */
    }
    return;
  }
  try {
    const again = await readOwner(path);
    if (again && again.owner?.token === staleToken && again.mtimeMs === staleMtime) await fsp.unlink(path);
  } catch (e) {
    if (errno(e) !== "ENOENT") throw e;
  } finally {
    await fsp.rmdir(breaker).catch(() => {});
  }
}

/**
 * Runs `fn` while holding the lock file `path`. Waiters poll with jittered backoff; the holder
 * refreshes the file's mtime as a heartbeat. Release removes the file only if it is still ours.
 */
export async function withLock<T>(path: string, fn: () => Promise<T>, options: LockOptions): Promise<T> {
  HOST ||= (await import("node:os")).hostname();
  const { clock } = options;
  const timeoutMs = options.timeoutMs ?? 60_000;
  const staleMs = options.staleMs ?? 30_000;
  const heartbeatMs = options.heartbeatMs ?? Math.max(250, Math.floor(staleMs / 4));
  const owner: Owner = { pid: process.pid, host: HOST, token: randomBytes(12).toString("hex"), since: 0 };
  const start = clock.now();
  owner.since = start;
  const tmp = `${path}.${process.pid}-${owner.token}`;
  await fsp.writeFile(tmp, JSON.stringify(owner), { mode: 0o600, flag: "wx" });
  // Times are in the Context's clock domain: the heartbeat sets mtime from it too.
  await touch(tmp, clock.now());
  let delay = 2;
  let lastSeen: Owner | undefined;
  try {
    for (;;) {
      options.signal?.throwIfAborted();
      try {
        await fsp.link(tmp, path);
        break;
      } catch (e) {
        if (errno(e) !== "EEXIST") throw e;
      }
      const now = clock.now();
      const info = await readOwner(path);
      if (info) {
        lastSeen = info.owner;
        if (isStale(info, now, staleMs)) {
          await breakStale(path, info.owner?.token, info.mtimeMs, now);
          continue;
        }
      }
      if (now - start > timeoutMs) {
        const who = lastSeen ? ` (held by process ${lastSeen.pid} on ${lastSeen.host})` : "";
        throw new AzkeepError(
          "config",
          `Timed out after ${Math.round(timeoutMs / 1000)} s waiting for the lock ${path}${who}.`,
          {
            hint: `If no other azkeep is running, remove the lock file: rm ${shq(path)}`,
            details: { lock: path },
          },
        );
      }
      await clock.sleep(delay + Math.floor(Math.random() * delay), options.signal);
      delay = Math.min(delay * 2, 50);
    }
  } finally {
    await fsp.unlink(tmp).catch(() => {});
  }

  const beat = setInterval(() => void touch(path, clock.now()).catch(() => {}), heartbeatMs);
  beat.unref();
  try {
    return await fn();
  } finally {
    clearInterval(beat);
    try {
      const info = await readOwner(path);
      if (info?.owner?.token === owner.token) await fsp.unlink(path);
    } catch {
      /* best effort: a stale-broken lock is someone else's now */
    }
  }
}
