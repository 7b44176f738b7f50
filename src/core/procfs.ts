/**
 * Who is this process? Reads a pid's identity from Linux `/proc`: the executable's real path,
 * argv, start time, the parent chain, session, controlling terminal and cgroup.
 *
 * Used by the agent's release policy (who asks for a token) and by `azkeep exec` (is this
 * caller a descendant of the child it launched). Every read goes through a small
 * {@link ProcReader} so tests can fake `/proc`; the real one is {@link nodeProcReader}.
 *
 * Threats this module is written against:
 * - **pid reuse**: a pid alone names no process. A process is `(pid, startTime)`, where the
 *   start time is field 22 of `/proc/PID/stat` (clock ticks since boot). {@link readProcess}
 *   reads `stat` before and after the other files and refuses a result when the start time
 *   changed in between (the pid was reused while it read).
 * - **a process describing itself**: `comm` and argv are written by the process and prove
 *   nothing; `exe` is the kernel's link to the file it executes (a script shows its
 *   interpreter). Callers decide on `exe` and ancestry, and show argv to the person.
 * - **failures**: anything that cannot be read yields `undefined` fields and `known: false`;
 *   callers must treat such a process as unknown, never as trusted.
 */

import { closeSync, openSync, readSync, readlinkSync } from "node:fs";

/** The kinds of access to `/proc` this module needs; each returns undefined on failure. */
export interface ProcReader {
  readFile(path: string): string | undefined;
  readLink(path: string): string | undefined;
  /**
   * Optional: opens a `/proc/PID/…` file to be read again later (`reread`). An open file of
   * `/proc/PID` belongs to that process, not to its number: once the process has ended, reads
   * fail, even when a new process has the same pid. `release` closes it.
   */
  hold?(path: string): number | undefined;
  reread?(handle: number): string | undefined;
  release?(handle: number): void;
}

/** One buffer for every /proc read: the agent reads a caller's files one after another. */
let procBuffer: Buffer | undefined;

/**
 * Reads a /proc file with open, read and close: a third of the system calls of `readFileSync`
 * (which also asks `fstat` for a size /proc does not have, and reads until a read gives 0), and
 * no allocation per read. The agent reads ~20 of these for each new caller, on the path of every
 * token it releases.
 *
 * A read shorter than the buffer is the whole file: the files read here (`stat`,
 * `cgroup`: one seq_file record each; `cmdline`) are given whole by one read that has room for
 * them. Not for files of many records (`maps`, `mountinfo`), whose reads stop at a record.
 */
function readProcFile(path: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    return undefined;
  }
  try {
    return readWhole(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads an open /proc file from its start (pread at 0): a fresh one (`readProcFile`) or one held
 * open (`hold`/`reread`); a short read is the whole file. Were one ever cut short, the caller
 * would see a change and read the process afresh.
 */
function readWhole(fd: number): string | undefined {
  try {
    const buf = (procBuffer ??= Buffer.allocUnsafe(16_384));
    let text = "";
    for (let at = 0; ;) {
      const n = readSync(fd, buf, 0, buf.length, at);
      text += buf.toString("latin1", 0, n);
      if (n < buf.length) return text;
      at += n;
    }
  } catch {
    return undefined;
  }
}

export const nodeProcReader: ProcReader = {
  readFile: readProcFile,
  hold(path) {
    try {
      return openSync(path, "r");
    } catch {
      return undefined;
    }
  },
  reread: readWhole,
  release(fd) {
    try {
      closeSync(fd);
    } catch {
      /* closed */
    }
  },
  readLink(path) {
    try {
      return readlinkSync(path);
    } catch {
      return undefined;
    }
  },
};

/** The fields of `/proc/PID/stat` this module uses. */
export interface ProcStat {
  pid: number;
  /** The kernel's `comm` (at most 15 bytes, set by the process itself: a hint, not proof). */
  comm: string;
  state: string;
  ppid: number;
  pgid: number;
  /** Session id (the pid of the session leader). */
  sid: number;
  /** The controlling terminal as the kernel's device number; 0 = none. */
  ttyNr: number;
  /** Field 22: clock ticks after boot when the process started. */
  startTime: number;
}

/** Parses `/proc/PID/stat`; the comm field may hold spaces and parentheses. */
export function parseStat(text: string): ProcStat | undefined {
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  if (open < 0 || close < open) return undefined;
  const pid = Number(text.slice(0, open).trim());
  const comm = text.slice(open + 1, close);
  // Fields after comm, counted from field 3 (state); the kernel separates them by one space
  // (`split(" ", 20)`: the fields up to start time, without scanning the rest).
  const rest =
    text.charCodeAt(close + 1) === 32 && text.charCodeAt(close + 2) !== 32
      ? text.slice(close + 2).split(" ", 20)
      : text
          .slice(close + 1)
          .trim()
          .split(/\s+/);
  const field = (n: number): number => Number(rest[n - 3]);
  const stat: ProcStat = {
    pid,
    comm,
    state: rest[0] ?? "?",
    ppid: field(4),
    pgid: field(5),
    sid: field(6),
    ttyNr: field(7),
    startTime: field(22),
  };
  for (const v of [stat.pid, stat.ppid, stat.pgid, stat.sid, stat.ttyNr, stat.startTime])
    if (!Number.isSafeInteger(v)) return undefined;
  return stat;
}

/**
 * Names a controlling terminal from its device number (`tty_nr`), as `ps` does:
 * `/dev/pts/N` for pseudo-terminals, `/dev/ttyN` for virtual consoles. 0 → undefined.
 */
export function ttyName(ttyNr: number): string | undefined {
  if (!ttyNr) return undefined;
  const major = (ttyNr >> 8) & 0xfff;
  const minor = (ttyNr & 0xff) | ((ttyNr >> 12) & 0xfff00);
  if (major >= 136 && major <= 143) return `/dev/pts/${(major - 136) * 256 + minor}`;
  if (major === 4) return minor < 64 ? `/dev/tty${minor}` : `/dev/ttyS${minor - 64}`;
  if (major === 5 && minor === 0) return "/dev/tty";
  if (major === 5 && minor === 1) return "/dev/console";
  return `tty ${major}:${minor}`;
}

export interface CgroupInfo {
  /** The unified (v2) path, else the systemd (v1 name=systemd) path; undefined when unreadable. */
  path: string | undefined;
  /** The innermost systemd unit in the path (`cron.service`, `session-3.scope`, `app-…scope`). */
  systemdUnit: string | undefined;
  /** A container runtime's id when the path says it runs in one (docker, podman, kubepods, lxc). */
  container: string | undefined;
}

/** Reads what `/proc/PID/cgroup` says about the unit and container. */
export function parseCgroup(text: string | undefined): CgroupInfo {
  if (text === undefined) return { path: undefined, systemdUnit: undefined, container: undefined };
  let v2: string | undefined;
  let v1: string | undefined;
  for (const line of text.split("\n")) {
    const first = line.indexOf(":");
    const second = line.indexOf(":", first + 1);
    if (first < 0 || second < 0) continue;
    const id = line.slice(0, first);
    const controllers = line.slice(first + 1, second);
    const path = line.slice(second + 1);
    if (id === "0" && controllers === "") v2 = path;
    else if (controllers === "name=systemd") v1 = path;
  }
  // A v2 path of "/" next to a real v1 systemd path (hybrid hierarchy) says nothing.
  const path = v2 !== undefined && v2 !== "/" ? v2 : (v1 ?? v2);
  let systemdUnit: string | undefined;
  let container: string | undefined;
  if (path) {
    const parts = path.split("/").filter(Boolean);
    for (let i = parts.length - 1; i >= 0; i--) {
      const p = parts[i]!;
      if (/\.(service|scope)$/.test(p)) {
        systemdUnit = p;
        break;
      }
    }
    const m =
      /(?:docker|libpod|crio|containerd)-([0-9a-f]{12,})\.scope/.exec(path) ??
      /\/(?:docker|lxc|libpod)\/([^/]+)/.exec(path) ??
      /kubepods[^/]*\/.*?pod[^/]*\/([0-9a-f]{12,})/.exec(path);
    if (m) container = m[1];
  }
  return { path, systemdUnit, container };
}

/** One process, identified by pid and start time; undefined fields were unreadable. */
export interface ProcessInfo {
  pid: number;
  /** Field 22 of stat; with the pid, the identity of the process (undefined = unknown). */
  startTime: number | undefined;
  /** The real path of the executable (`/proc/PID/exe`), " (deleted)" kept when the kernel says so. */
  exe: string | undefined;
  /** argv from `/proc/PID/cmdline` (the process may have rewritten it: show it, do not trust it). */
  argv: string[] | undefined;
  comm: string | undefined;
  ppid: number | undefined;
  pgid: number | undefined;
  sid: number | undefined;
  /** The controlling terminal's path, or undefined when it has none. */
  tty: string | undefined;
  ttyNr: number | undefined;
  cwd: string | undefined;
  cgroup: CgroupInfo;
  /** True when stat, exe and argv were all read and the start time did not change meanwhile. */
  known: boolean;
}

function unknownProcess(pid: number): ProcessInfo {
  return {
    pid,
    startTime: undefined,
    exe: undefined,
    argv: undefined,
    comm: undefined,
    ppid: undefined,
    pgid: undefined,
    sid: undefined,
    tty: undefined,
    ttyNr: undefined,
    cwd: undefined,
    cgroup: { path: undefined, systemdUnit: undefined, container: undefined },
    known: false,
  };
}

function validPid(pid: number): boolean {
  return Number.isSafeInteger(pid) && pid > 0;
}

/** Reads stat only: the cheap check of "is this still the same process" and its parent. */
export function readStat(pid: number, reader: ProcReader = nodeProcReader): ProcStat | undefined {
  if (!validPid(pid)) return undefined;
  const text = reader.readFile(`/proc/${pid}/stat`);
  if (text === undefined) return undefined;
  const stat = parseStat(text);
  return stat && stat.pid === pid ? stat : undefined;
}

/** The start time of `pid` now, or undefined when it is gone or unreadable. */
export function startTimeOf(pid: number, reader: ProcReader = nodeProcReader): number | undefined {
  return readStat(pid, reader)?.startTime;
}

/** True when `pid` is still the process that started at `startTime` (a reused pid is not). */
export function isSameProcess(
  pid: number,
  startTime: number | undefined,
  reader: ProcReader = nodeProcReader,
): boolean {
  if (startTime === undefined) return false;
  return startTimeOf(pid, reader) === startTime;
}

export interface ReadOptions {
  /** Skip cwd and cgroup (ancestors need neither for a decision). */
  brief?: boolean;
}

/** Reads one process. A pid that is gone, unreadable or reused meanwhile gives `known: false`. */
export function readProcess(
  pid: number,
  reader: ProcReader = nodeProcReader,
  options: ReadOptions = {},
): ProcessInfo {
  const info = unknownProcess(pid);
  const before = readStat(pid, reader);
  if (!before) return info;
  info.startTime = before.startTime;
  info.comm = before.comm;
  info.ppid = before.ppid;
  info.pgid = before.pgid;
  info.sid = before.sid;
  info.ttyNr = before.ttyNr;
  info.tty = ttyName(before.ttyNr);
  info.exe = reader.readLink(`/proc/${pid}/exe`);
  const cmdline = reader.readFile(`/proc/${pid}/cmdline`);
  if (cmdline !== undefined) {
    const parts = cmdline.split("\0");
    if (parts.length > 0 && parts[parts.length - 1] === "") parts.pop();
    info.argv = parts;
  }
  if (!options.brief) {
    info.cwd = reader.readLink(`/proc/${pid}/cwd`);
    info.cgroup = parseCgroup(reader.readFile(`/proc/${pid}/cgroup`));
  }
  // The pid may have exited and been reused between the first read and now: then what was read
  // may mix two processes, so none of it is trusted.
  const after = readStat(pid, reader);
  if (!after || after.startTime !== before.startTime) return unknownProcess(pid);
  // A zombie has no exe or cmdline; a kernel thread has no exe: neither is a known caller.
  info.known = info.exe !== undefined && info.argv !== undefined && info.argv.length > 0;
  return info;
}

/** Most ancestors read for one caller: no real tree is this deep; a loop in a fake is bounded. */
export const MAX_ANCESTRY = 64;

export interface ProcessChain {
  /** The process itself, then its parent, grand-parent, … up to init (pid 1) or the first unreadable one. */
  chain: ProcessInfo[];
  /** The index in `chain` of the session leader (the process whose pid is the session id). */
  sessionLeader: number | undefined;
  /** True when every link up to pid 1 (or a process whose parent is 0) was read and known. */
  complete: boolean;
}

/**
 * Ancestors read recently, so that every new process of one shell does not have the shell, its
 * terminal emulator and their parents read again in full. A remembered ancestor is used only
 * after its stat is read afresh (same start time: not a reused pid; its parent, session and
 * terminal from now) and its executable link still says the same (an `exec` is a miss).
 * Ancestors that were read but are not known (init or sshd, whose executable another user cannot
 * read; a zombie) are remembered too, and stay unknown: only their start time and executable link
 * are compared, as for the others.
 */
export interface AncestorMemo {
  get(pid: number): ProcessInfo | undefined;
  set(info: ProcessInfo): void;
  /**
   * Optional: the remembered process's stat read again through a file held open for it
   * (`ProcReader.hold`: one read, no open and close, and never a later process with its pid):
   * `{ stat: undefined }` once that process has ended; undefined when nothing is held for it
   * (its stat is read by path then).
   */
  heldStat?(pid: number): { stat: ProcStat | undefined } | undefined;
}

/** A parent of a caller: from `memo` when it is provably the same process, else read briefly. */
function readParent(pid: number, reader: ProcReader, memo: AncestorMemo | undefined): ProcessInfo {
  const seen = memo?.get(pid);
  if (seen && seen.startTime !== undefined) {
    const held = memo?.heldStat?.(pid);
    const now = held ? held.stat : readStat(pid, reader);
    if (now && now.startTime === seen.startTime && reader.readLink(`/proc/${pid}/exe`) === seen.exe) {
      return {
        ...seen,
        comm: now.comm,
        ppid: now.ppid,
        pgid: now.pgid,
        sid: now.sid,
        ttyNr: now.ttyNr,
        tty: ttyName(now.ttyNr),
      };
    }
  }
  const info = readProcess(pid, reader, { brief: true });
  if (info.startTime !== undefined) memo?.set(info);
  return info;
}

/**
 * Reads the parent chain of `pid` up to init. Ancestors are read briefly (no cwd/cgroup), or
 * taken from `memo` (see {@link AncestorMemo}). A parent that started after its child is not
 * its parent (the real one exited and the pid was reused): the walk stops there and the chain
 * is incomplete.
 */
export function readAncestry(
  pid: number,
  reader: ProcReader = nodeProcReader,
  memo?: AncestorMemo,
): ProcessChain {
  const first = readProcess(pid, reader);
  const chain: ProcessInfo[] = [first];
  let complete = first.known;
  let cur = first;
  while (chain.length < MAX_ANCESTRY) {
    const ppid = cur.ppid;
    if (ppid === undefined) {
      complete = false;
      break;
    }
    if (ppid === 0) break; // init or a kernel thread: the top
    const parent = readParent(ppid, reader, memo);
    if (parent.startTime === undefined || (cur.startTime !== undefined && parent.startTime > cur.startTime)) {
      complete = false;
      break;
    }
    chain.push(parent);
    if (!parent.known && parent.pid !== 1) complete = false;
    cur = parent;
    if (parent.pid === 1) break;
  }
  if (chain.length >= MAX_ANCESTRY) complete = false;
  const sid = first.sid;
  const idx = sid === undefined ? -1 : chain.findIndex((p) => p.pid === sid);
  return { chain, sessionLeader: idx >= 0 ? idx : undefined, complete };
}

/**
 * True when `pid` is `ancestorPid` itself or runs below it. With `ancestorStartTime` the
 * ancestor must also be the same process (not a later process that reuses its pid). A chain
 * broken by an unreadable link answers false: unknown is never trusted.
 */
export function isDescendantOf(
  pid: number,
  ancestorPid: number,
  reader: ProcReader = nodeProcReader,
  ancestorStartTime?: number,
): boolean {
  if (!validPid(pid) || !validPid(ancestorPid)) return false;
  let cur = readStat(pid, reader);
  for (let i = 0; cur && i < MAX_ANCESTRY; i++) {
    if (cur.pid === ancestorPid)
      return ancestorStartTime === undefined || cur.startTime === ancestorStartTime;
    if (cur.ppid === 0) return false;
    const parent = readStat(cur.ppid, reader);
    // A "parent" younger than its child is a reused pid: the real parent is gone.
    if (!parent || parent.startTime > cur.startTime) return false;
    cur = parent;
  }
  return false;
}

/** Shows a process in one line for prompts and logs: `pid 123 /usr/bin/terraform plan -x`. */
export function describeProcess(p: ProcessInfo, maxArgv = 200): string {
  const exe = p.exe ?? "(unknown executable)";
  let args = (p.argv ?? []).slice(1).join(" ");
  if (args.length > maxArgv) args = `${args.slice(0, maxArgv)}…`;
  // Control characters in argv could rewrite a terminal prompt: show them escaped.
  const safe = `${exe}${args ? ` ${args}` : ""}`.replace(
    // eslint-disable-next-line no-control-regex
    /[\u0000-\u001f\u007f-\u009f]/g,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
  return `pid ${p.pid} ${safe}`;
}
