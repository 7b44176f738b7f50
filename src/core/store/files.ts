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
  chmodSync,
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  openSync,
  readSync,
  readdirSync,
  realpathSync,
  renameSync,
  statSync,
  unlinkSync,
  type Stats,
} from "node:fs";
import { dirname, isAbsolute, join } from "node:path";
import { AzkeepError } from "../errors.js";

const CHECK_MODES = process.platform !== "win32";

/**
 * What a file looks like now, to tell whether it changed since it was read: inode (an atomic
 * rename makes a new one), size, mtime and ctime (ms as doubles: sub-microsecond now; ctime
 * cannot be set back by its owner). Undefined when it does not exist. Checked on every answer
 * of the agent, so without BigInts (a third of the front's allocation) or an exception for a
 * missing file.
 */
export function fileSignature(path: string): string | undefined {
  try {
    const st = statSync(path, { throwIfNoEntry: false });
    return st && `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
  } catch {
    return undefined;
  }
}

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
        hint:
          `Another user could read or replace what is in it. If it should be yours, have root run: chown ${uid} ${shq(path)}; ` +
          "otherwise remove it, or point AZKEEP_CONFIG_DIR at a folder of your own.",
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

/**
 * The most azkeep reads of one of its files. Real ones are kilobytes (a store with hundreds of
 * cached tokens stays under 1 MiB). Threat: a planted multi-gigabyte file making every command
 * allocate its size (a 1 GiB tokens.sealed cost 3.1 GB of memory).
 */
export const MAX_FILE_BYTES = 16 * 1024 * 1024;

/** `O_NOFOLLOW | O_NONBLOCK`: never follow a planted symlink, never block on a planted FIFO. */
const OPEN_FLAGS =
  process.platform === "win32"
    ? constants.O_RDONLY
    : constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY;

function kindOf(st: Stats): string {
  if (st.isSymbolicLink()) return "a symbolic link";
  if (st.isDirectory()) return "a folder";
  if (st.isFIFO()) return "a named pipe (FIFO)";
  if (st.isSocket()) return "a socket";
  if (st.isCharacterDevice() || st.isBlockDevice()) return "a device";
  if (st.isFile()) return "a file";
  return "not a regular file";
}

/** A file or folder of azkeep's that is not what azkeep makes: refused, with the command that fixes it. */
function hostile(path: string, what: string, fix: string): AzkeepError {
  return new AzkeepError("store_unavailable", `${path} is ${what}; azkeep refuses to use it.`, {
    hint: fix,
    details: { path, what },
  });
}

/**
 * Checks that the config folder is a usable absolute path. Threats: a relative
 * AZKEEP_CONFIG_DIR (or an empty HOME) putting the store in whatever folder a command runs in.
 */
export function checkDirPath(dir: string): void {
  if (isAbsolute(dir)) return;
  throw new AzkeepError(
    "config",
    `azkeep's config folder '${dir}' is a relative path; it would move with the working folder.`,
    {
      hint: `Set AZKEEP_CONFIG_DIR to an absolute path (e.g. AZKEEP_CONFIG_DIR="$PWD/${dir}"), or unset it to use the default.`,
      details: { path: dir },
    },
  );
}

/**
 * Checks the folder itself (not its parents), without following it: a symlink, something that
 * is not a folder, a folder owned by another user or reachable by other users is refused.
 * Threat: another program pointing the folder elsewhere (a symlink was followed, and its target
 * chmodded and written to). Missing → false.
 */
export function checkDir(dir: string): boolean {
  checkDirPath(dir);
  let st;
  try {
    st = lstatSync(dir);
  } catch (e) {
    if (errno(e) === "ENOENT") return false;
    throw fileError("read", dir, e);
  }
  if (!st.isDirectory()) {
    if (st.isSymbolicLink()) {
      let target = "";
      try {
        target = realpathSync(dir);
      } catch {
        /* dangling */
      }
      throw hostile(
        dir,
        "a symbolic link" + (target ? ` (to ${target})` : ""),
        target
          ? `azkeep does not follow a link for its config folder. If ${target} is yours, point AZKEEP_CONFIG_DIR at it (AZKEEP_CONFIG_DIR=${shq(target)}); otherwise remove the link: rm ${shq(dir)}`
          : `Remove the link: rm ${shq(dir)}`,
      );
    }
    throw hostile(dir, kindOf(st) + ", not a folder", `Move it away: mv ${shq(dir)} ${shq(dir + ".bad")}`);
  }
  checkPrivate(dir, st, true);
  return true;
}

/**
 * Opens a file for reading without following a symlink or blocking on a FIFO (a symlink, socket
 * or device in its place is named, with the fix). Missing → undefined. The caller closes.
 */
function openRegular(path: string): number | undefined {
  try {
    return openSync(path, OPEN_FLAGS);
  } catch (e) {
    const code = errno(e);
    if (code === "ENOENT") return undefined;
    if (code === "ELOOP" || code === "EMLINK")
      throw hostile(path, "a symbolic link", `azkeep never makes links; remove it: rm ${shq(path)}`);
    if (code === "ENXIO") throw hostile(path, "a socket or device", `Remove it: rm ${shq(path)}`);
    throw fileError("read", path, e);
  }
}

/**
 * Opens one of azkeep's files for reading without following a symlink or blocking on a FIFO,
 * and checks on the open descriptor (no window between check and read) that it is a regular
 * file, ours, private and not over the size limit. Missing → undefined. The caller closes.
 */
function openChecked(path: string, maxBytes: number): { fd: number; size: number } | undefined {
  const fd = openRegular(path);
  if (fd === undefined) return undefined;
  try {
    const st = fstatSync(fd);
    if (!st.isFile())
      throw hostile(path, kindOf(st), `azkeep only makes regular files; remove it: rm ${shq(path)}`);
    checkPrivate(path, st, false);
    if (st.size > maxBytes)
      throw hostile(
        path,
        `${st.size} bytes, over the ${maxBytes}-byte limit`,
        `No file of azkeep's is this large; move it aside: mv ${shq(path)} ${shq(path + ".bad")}`,
      );
    return { fd, size: st.size };
  } catch (e) {
    closeSync(fd);
    if (e instanceof AzkeepError) throw e;
    throw fileError("read", path, e);
  }
}

/**
 * Reads a whole file of azkeep's (see `openChecked`), at most `maxBytes` even if it grows while
 * being read. Missing → undefined.
 */
export function readPrivateFile(path: string, maxBytes = MAX_FILE_BYTES): Buffer | undefined {
  const opened = openChecked(path, maxBytes);
  if (!opened) return undefined;
  const { fd, size } = opened;
  try {
    const buf = Buffer.allocUnsafe(Math.min(size, maxBytes) + 1);
    let n = 0;
    for (;;) {
      const r = readSync(fd, buf, n, buf.length - n, null);
      if (r === 0) break;
      n += r;
      if (n === buf.length) {
        if (n > maxBytes)
          throw hostile(
            path,
            `over the ${maxBytes}-byte limit`,
            `Move it aside: mv ${shq(path)} ${shq(path + ".bad")}`,
          );
        break;
      }
    }
    return buf.subarray(0, n);
  } catch (e) {
    if (e instanceof AzkeepError) throw e;
    throw fileError("read", path, e);
  } finally {
    closeSync(fd);
  }
}

/**
 * Like `readPrivateFile` for a file whose mode is not azkeep's to check (a lock file being
 * created by another process): no symlink, no FIFO, regular, ours, size-capped.
 * Returns the bytes and the mtime read from the same descriptor.
 */
export function readOwnFile(path: string, maxBytes: number): { bytes: Buffer; mtimeMs: number } | undefined {
  const fd = openRegular(path);
  if (fd === undefined) return undefined;
  try {
    const st = fstatSync(fd);
    if (!st.isFile())
      throw hostile(path, kindOf(st), `azkeep only makes regular files; remove it: rm ${shq(path)}`);
    const uid = process.getuid?.();
    if (CHECK_MODES && uid !== undefined && st.uid !== uid)
      throw hostile(path, `owned by another user (uid ${st.uid})`, `Remove it: rm ${shq(path)}`);
    const buf = Buffer.allocUnsafe(maxBytes);
    const n = readSync(fd, buf, 0, maxBytes, null);
    return { bytes: buf.subarray(0, n), mtimeMs: st.mtimeMs };
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
        : code === "EROFS"
          ? `${dirname(path)} is on a read-only file system: point AZKEEP_CONFIG_DIR at a writable folder of yours.`
          : `Check that ${dirname(path)} is yours and writable (ls -ld ${shq(dirname(path))}), or point AZKEEP_CONFIG_DIR elsewhere.`,
    cause: e,
    details: { path, code, reason },
  });
}

/**
 * Creates the folder (and missing parents, each 0700) and sets it to 0700 explicitly; an
 * existing folder is checked as on every read (no symlink, ours, private) and never chmodded
 * when it is not ours. Parents are created one by one, a bounded walk: Node's recursive mkdir
 * loops forever at full CPU under /proc, where mkdir says ENOENT with the parent present.
 */
export async function ensurePrivateDir(dir: string): Promise<void> {
  checkDirPath(dir);
  if (checkDirOrMissing(dir)) return;
  const missing: string[] = [];
  for (let d = dir; ;) {
    let st: Stats | undefined;
    try {
      st = statSync(d);
    } catch (e) {
      if (errno(e) !== "ENOENT" && errno(e) !== "ENOTDIR") throw fileError("write", d, e);
    }
    if (st) {
      if (!st.isDirectory())
        throw fileError("write", d, Object.assign(new Error("not a folder"), { code: "ENOTDIR" }));
      break;
    }
    missing.unshift(d);
    const parent = dirname(d);
    if (parent === d) break;
    d = parent;
  }
  for (const d of missing) {
    try {
      await fsp.mkdir(d, { mode: 0o700 });
    } catch (e) {
      if (errno(e) === "EEXIST") continue;
      if (errno(e) === "ENOENT")
        throw new AzkeepError(
          "store_unavailable",
          `azkeep could not create ${d}: its file system does not allow new folders there.`,
          {
            hint: "Point AZKEEP_CONFIG_DIR at a folder of yours on a normal, writable file system.",
            cause: e,
            details: { path: d },
          },
        );
      throw fileError("write", d, e);
    }
  }
  if (!checkDirOrMissing(dir))
    throw fileError("write", dir, Object.assign(new Error("vanished"), { code: "ENOENT" }));
}

/** `checkDir`, except that a folder of ours with a wrong mode is set to 0700 rather than refused. */
function checkDirOrMissing(dir: string): boolean {
  let st;
  try {
    st = lstatSync(dir);
  } catch (e) {
    if (errno(e) === "ENOENT") return false;
    throw fileError("write", dir, e);
  }
  // Readable by others but writable only by us (a 0755 left by an older tool or the umask): made
  // private. Writable by others: refused, since anyone in the group may have planted files.
  if (
    CHECK_MODES &&
    st.isDirectory() &&
    (st.mode & 0o777) !== 0o700 &&
    (st.mode & 0o022) === 0 &&
    st.uid === process.getuid?.()
  ) {
    try {
      chmodSync(dir, 0o700);
    } catch (e) {
      throw fileError("write", dir, e);
    }
  }
  return checkDir(dir);
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

/** How many damaged copies of one file are kept aside; older ones are deleted at the next set-aside. */
export const KEPT_ASIDE = 3;

/**
 * Moves a damaged file aside as `<name>.damaged-<timestamp>` (the user may recover it) and
 * returns the new path. Missing → undefined. Only the newest {@link KEPT_ASIDE} copies of that
 * file are kept: a store that is damaged again and again (a hostile writer, a failing disk) does
 * not fill the folder with useless sealed copies.
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
  } catch (e) {
    if (errno(e) === "ENOENT") return undefined;
    throw e;
  }
  pruneAside(path);
  return target;
}

/** Deletes all but the newest {@link KEPT_ASIDE} `<path>.damaged-*` regular files (best effort). */
function pruneAside(path: string): void {
  const dir = dirname(path);
  const prefix = `${path.slice(dir.length + 1)}.damaged-`;
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.startsWith(prefix));
  } catch {
    return;
  }
  // `<stamp>` or `<stamp>-<i>`: the ISO stamp sorts as text, the index as a number.
  const key = (n: string): [string, number] => {
    const m = /^(.*?Z)(?:-(\d+))?$/.exec(n.slice(prefix.length));
    return m ? [m[1]!, Number(m[2] ?? 0)] : [n, 0];
  };
  names.sort((a, b) => {
    const [sa, ia] = key(a);
    const [sb, ib] = key(b);
    return sa < sb ? -1 : sa > sb ? 1 : ia - ib;
  });
  for (const n of names.slice(0, Math.max(0, names.length - KEPT_ASIDE))) {
    const f = join(dir, n);
    try {
      if (lstatSync(f).isFile()) unlinkSync(f);
    } catch {
      /* gone already, or not ours to delete */
    }
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
