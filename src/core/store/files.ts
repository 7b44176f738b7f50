/**
 * File handling for the store: private folders and files with modes set explicitly (not left
 * to the umask), a permission check on every read, atomic replacement, and moving a damaged
 * file aside.
 *
 * Reads are synchronous on purpose: they are a handful of small-file syscalls on the
 * `get-access-token` hot path, where a thread-pool round trip per call costs more than it saves.
 */
import {
  promises as fsp,
  closeSync,
  fstatSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  statSync,
  unlinkSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { AzkeepError } from "../errors.js";

const CHECK_MODES = process.platform !== "win32";

/** Quotes a path for the shell commands in hints. */
export function shq(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export function modeString(mode: number): string {
  return "0" + (mode & 0o777).toString(8).padStart(3, "0");
}

/** Whether a process with this pid exists (on this host). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: the process exists but belongs to someone else.
    return errno(e) === "EPERM";
  }
}

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

/**
 * Refuses a file or folder other users can reach, or one owned by another user.
 * Threat: other local users reading (or planting) the store; the Azure CLI leaves
 * azureProfile.json 0644 and ~/.azure 0755 under the default umask.
 */
export function checkPrivate(path: string, st: { mode: number; uid: number }, isDir: boolean): void {
  if (!CHECK_MODES) return;
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) {
    throw new AzkeepError(
      "store_unavailable",
      `${path} belongs to another user (uid ${st.uid}); azkeep refuses to use it.`,
      {
        hint: `Run: chown ${uid} ${shq(path)}   (or point AZKEEP_CONFIG_DIR at your own folder)`,
        details: { path, uid: st.uid },
      },
    );
  }
  if ((st.mode & 0o077) !== 0) {
    const want = isDir ? "700" : "600";
    throw new AzkeepError(
      "store_unavailable",
      `${path} is accessible by other users (mode ${modeString(st.mode)}); azkeep refuses to use it.`,
      { hint: `Run: chmod ${want} ${shq(path)}`, details: { path, mode: modeString(st.mode) } },
    );
  }
}

/** Checks the folder itself (not its parents). Missing → false. */
export function checkDir(dir: string): boolean {
  let st;
  try {
    st = statSync(dir);
  } catch (e) {
    if (errno(e) === "ENOENT") return false;
    throw e;
  }
  checkPrivate(dir, st, true);
  return true;
}

/**
 * Reads a whole file after checking its owner and mode on the open descriptor (no window
 * between check and read). Missing → undefined.
 */
export function readPrivateFile(path: string): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    if (errno(e) === "ENOENT") return undefined;
    throw fileError("read", path, e);
  }
  try {
    checkPrivate(path, fstatSync(fd), false);
    return readFileSync(fd);
  } catch (e) {
    if (e instanceof AzkeepError) throw e;
    throw fileError("read", path, e);
  } finally {
    closeSync(fd);
  }
}

/** A file system failure (EACCES, ENOSPC, EROFS, EISDIR…) as one readable error with the next step. */
export function fileError(what: "read" | "write", path: string, e: unknown): AzkeepError {
  const code = errno(e) ?? "error";
  const reason = (e as Error | undefined)?.message ?? String(e);
  return new AzkeepError("store_unavailable", `azkeep could not ${what} ${path} (${code}).`, {
    hint:
      code === "ENOSPC"
        ? `Free some disk space on the file system of ${dirname(path)}, then run the command again.`
        : `Check that ${dirname(path)} is yours and writable (ls -ld ${shq(dirname(path))}), or point AZKEEP_CONFIG_DIR elsewhere.`,
    cause: e,
    details: { path, code, reason },
  });
}

/** Creates the folder (and missing parents) and sets it to 0700 explicitly. */
export async function ensurePrivateDir(dir: string): Promise<void> {
  try {
    await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw fileError("write", dir, e);
  }
  if (CHECK_MODES) {
    const st = statSync(dir);
    if ((st.mode & 0o777) !== 0o700) await fsp.chmod(dir, 0o700);
  }
}

let tmpCounter = 0;

/**
 * Replaces `path` atomically: temp file in the same folder (0600 set explicitly) → write →
 * fsync → rename → fsync the folder. A reader sees the old or the new file, never a part;
 * after a crash the file is old or new, and the temp file is debris for `removeDebris`.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  try {
    await writeFileAtomicRaw(path, data);
  } catch (e) {
    throw fileError("write", path, e);
  }
}

async function writeFileAtomicRaw(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${++tmpCounter}`;
  const fh = await fsp.open(tmp, "wx", 0o600);
  let renamed = false;
  try {
    await fh.chmod(0o600);
    await fh.writeFile(data);
    await fh.sync();
    await fh.close();
    await fsp.rename(tmp, path);
    renamed = true;
  } finally {
    if (!renamed) {
      await fh.close().catch(() => {});
      await fsp.unlink(tmp).catch(() => {});
    }
  }
  await fsyncDir(dirname(path));
}

async function fsyncDir(dir: string): Promise<void> {
  if (process.platform === "win32") return;
  const fh = await fsp.open(dir, "r");
  try {
    await fh.sync();
  } catch {
    /* some filesystems refuse fsync on a folder */
  } finally {
    await fh.close();
  }
}

/**
 * Moves a damaged file aside as `<name>.damaged-<timestamp>` (never deletes it: the user may
 * recover it) and returns the new path. Missing → undefined.
 */
export function moveAside(path: string, nowMs: number): string | undefined {
  const stamp = new Date(nowMs).toISOString().replace(/[:.]/g, "-");
  let target = `${path}.damaged-${stamp}`;
  for (let i = 1; ; i++) {
    try {
      statSync(target);
      target = `${path}.damaged-${stamp}-${i}`;
    } catch {
      break;
    }
  }
  try {
    renameSync(path, target);
    return target;
  } catch (e) {
    if (errno(e) === "ENOENT") return undefined;
    throw e;
  }
}

/**
 * Removes temp files and lock-attempt files left by processes that died (SIGKILL, power loss)
 * in `dir`. Only files whose creating pid is gone are removed, so a live writer is untouched.
 */
export function removeDebris(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /\.(?:tmp-|lock\.)(\d+)-[0-9a-f]+$/.exec(name);
    if (!m?.[1]) continue;
    if (pidAlive(Number(m[1]))) continue;
    try {
      unlinkSync(join(dir, name));
    } catch {
      /* raced with another cleaner */
    }
  }
}
