/**
 * Who asks: the agent's view of the process on the other end of a connection, read from /proc
 * (`core/procfs.ts`) from the pid the kernel gave for the socket (SO_PEERCRED), and what the
 * release policy, the prompt and the log need of it.
 *
 * A caller is `(pid, start time)`; its terminal session is `(session id, the session leader's
 * start time, terminal)`, so an approval never passes to a later process that reuses a pid.
 */
import {
  describeProcess,
  type AncestorMemo,
  nodeProcReader,
  readAncestry,
  parseStat,
  readStat,
  type ProcReader,
  type ProcStat,
  type ProcessInfo,
} from "../core/procfs.js";
import type { LogCaller } from "./log.js";
import type { CallerFacts } from "./policy.js";

export interface Caller {
  pid: number;
  info: ProcessInfo;
  /** Parents, nearest first, up to init. */
  parents: ProcessInfo[];
  /** `sid:leaderStart:tty` when the caller has a controlling terminal and a known session leader. */
  sessionKey: string | undefined;
  /** `pid:start` of the caller itself (undefined when unknown). */
  processKey: string | undefined;
  facts: CallerFacts;
  run: { id: string; childPid: number } | undefined;
}

export function identifyCaller(
  pid: number,
  run: { id: string; childPid: number } | undefined,
  reader?: ProcReader,
  memo?: AncestorMemo,
): Caller {
  const a = readAncestry(pid, reader, memo);
  const info = a.chain[0]!;
  const parents = a.chain.slice(1);
  const leader = a.sessionLeader !== undefined ? a.chain[a.sessionLeader] : undefined;
  const known = info.known && pid > 0;
  const sessionKey =
    known && info.tty && leader?.startTime !== undefined
      ? `${info.sid}:${leader.startTime}:${info.tty}`
      : undefined;
  return {
    pid,
    info,
    parents,
    sessionKey,
    processKey: known && info.startTime !== undefined ? `${pid}:${info.startTime}` : undefined,
    run: run ? { id: run.id, childPid: run.childPid } : undefined,
    facts: {
      known,
      exe: info.exe,
      argv: info.argv,
      cwd: info.cwd,
      tty: info.tty,
      unit: info.cgroup.systemdUnit,
      container: info.cgroup.container,
      ancestors: parents.map((p) => p.exe),
      run: run ? { id: run.id } : undefined,
    },
  };
}

/** What the log keeps of a caller (no environment, nothing secret). */
/** The log's view of each caller: one object per caller, so the log encodes it once (`recordTexts`). */
const logCallers = new WeakMap<Caller, LogCaller>();

export function logCaller(c: Caller): LogCaller {
  let l = logCallers.get(c);
  if (l === undefined) logCallers.set(c, (l = makeLogCaller(c)));
  return l;
}

function makeLogCaller(c: Caller): LogCaller {
  const argv = c.info.argv?.slice(0, 32).map((a) => (a.length > 300 ? `${a.slice(0, 300)}…` : a));
  return {
    pid: c.pid,
    startTime: c.info.startTime,
    exe: c.info.exe,
    argv,
    cwd: c.info.cwd,
    sid: c.info.sid,
    tty: c.info.tty,
    unit: c.info.cgroup.systemdUnit,
    container: c.info.cgroup.container,
    parents: c.parents.slice(0, 8).map((p) => `${p.pid} ${p.exe ?? p.comm ?? "?"}`),
    ...(c.run ? { run: c.run } : {}),
  };
}

/** The lines a prompt shows about the caller: the program, then its parent chain. */
export function describeCaller(c: Caller): string[] {
  const lines = [describeProcess(c.info, 160)];
  if (c.info.cwd) lines.push(`  in ${c.info.cwd}`);
  const chain = c.parents
    .slice(0, 5)
    .map((p) => `${p.pid} ${(p.exe ?? p.comm ?? "?").split("/").pop()}`)
    .join(" < ");
  if (chain) lines.push(`  parents: ${chain}${c.parents.length > 5 ? " < …" : ""}`);
  lines.push(`  terminal: ${c.info.tty ?? "none"}${c.info.sid ? `, session ${c.info.sid}` : ""}`);
  if (c.run) lines.push(`  through azkeep exec run ${c.run.id} (child pid ${c.run.childPid})`);
  return lines;
}

/**
 * `reader`, except that the caller's own stat and cmdline are read through the files held open
 * for it (a read from offset 0 of an open file: no open and close, and never another process
 * that got the pid meanwhile). Remembers the cmdline text read, which the re-checks compare with.
 */
function throughHeld(
  reader: ProcReader,
  pid: number,
  held: { stat: number | undefined; cmdline: number | undefined } | undefined,
): ProcReader & { cmdlineText: string | undefined } {
  const statPath = `/proc/${pid}/stat`;
  const cmdlinePath = `/proc/${pid}/cmdline`;
  const reread = reader.reread?.bind(reader);
  const own: ProcReader & { cmdlineText: string | undefined } = {
    cmdlineText: undefined,
    readLink: (path) => reader.readLink(path),
    readFile: (path) => {
      if (path === statPath && held?.stat !== undefined && reread) return reread(held.stat);
      if (path !== cmdlinePath) return reader.readFile(path);
      const text = held?.cmdline !== undefined && reread ? reread(held.cmdline) : reader.readFile(path);
      own.cmdlineText = text;
      return text;
    },
  };
  return own;
}

/** The most /proc files the cache holds open for callers (two per caller). */
export const MAX_HELD_FILES = 256;

/** The most ancestors whose stat the cache holds open (one file each). */
export const MAX_HELD_ANCESTORS = 64;

/** How long an ancestor is remembered (re-checked at each use all the same). */
const ANCESTOR_MS = 60_000;

interface AncestorEntry {
  info: ProcessInfo;
  at: number;
  /** Its stat, held open (`ProcReader.hold`). */
  stat?: number | undefined;
}

interface Entry {
  caller: Caller;
  /** argv as read at identification. */
  cmdlineText: string | undefined;
  at: number;
  /** The process's stat and cmdline, held open (`ProcReader.hold`). */
  stat?: number | undefined;
  cmdline?: number | undefined;
}

/**
 * Callers seen in the last few seconds, so that a client asking 1,000 times a second on one
 * connection does not have its whole ancestry read from /proc each time. A hit is used only
 * when the process is provably the same and unchanged in what the policy matches: the same
 * start time, session and terminal (a reused pid, a `setsid`, are misses), the same executable,
 * working folder and argv — read again each time, between two reads of its stat, as
 * `readProcess` does. Parents may have exited since; they are what they were at the first read.
 */
export class CallerCache {
  private entries = new Map<string, Entry>();
  private lastSweep = 0;
  /** /proc files held open by the entries. */
  private heldFiles = 0;
  /**
   * Ancestors of recent callers (re-checked at each use: see `AncestorMemo`), for a minute, the
   * first MAX_HELD_ANCESTORS with their stat held open: every new process of a shell has the
   * same few parents, each re-checked with one read instead of an open, a read and a close.
   */
  private ancestors = new Map<number, AncestorEntry>();
  private heldAncestors = 0;
  private readonly memo: AncestorMemo = {
    get: (pid) => {
      const e = this.ancestors.get(pid);
      if (e && this.now() - e.at < ANCESTOR_MS) return e.info;
      if (e) this.forgetAncestor(pid);
      return undefined;
    },
    set: (info) => {
      this.forgetAncestor(info.pid);
      if (this.ancestors.size >= this.maxEntries) this.forgetAncestors();
      const e: AncestorEntry = { info, at: this.now() };
      if (this.reader.hold && this.reader.reread && this.heldAncestors < MAX_HELD_ANCESTORS) {
        const fd = this.reader.hold(`/proc/${info.pid}/stat`);
        if (fd !== undefined) {
          // Held after the read: kept only when it is the same process (not a pid reused since).
          if (this.statThrough(fd)?.startTime === info.startTime) {
            e.stat = fd;
            this.heldAncestors++;
          } else this.reader.release?.(fd);
        }
      }
      this.ancestors.set(info.pid, e);
    },
    heldStat: (pid) => {
      const fd = this.ancestors.get(pid)?.stat;
      if (fd === undefined || !this.reader.reread) return undefined;
      const stat = this.statThrough(fd);
      return { stat: stat?.pid === pid ? stat : undefined };
    },
  };

  constructor(
    private readonly reader: ProcReader = nodeProcReader,
    private readonly now: () => number = Date.now,
    private readonly maxAgeMs = 5_000,
    private readonly maxEntries = 512,
  ) {}

  identify(pid: number, run: { id: string; childPid: number } | undefined): Caller {
    const key = `${pid}|${run?.id ?? ""}|${run?.childPid ?? ""}`;
    const hit = this.entries.get(key);
    const t = this.now();
    if (hit && t - hit.at < this.maxAgeMs && this.unchanged(pid, hit)) return hit.caller;
    if (hit) this.drop(key, hit);
    if (t - this.lastSweep >= this.maxAgeMs) this.sweep(t);
    // Held before the identification: a process that ends meanwhile fails its first re-check.
    // At most MAX_HELD_FILES open at once (the agent's own sockets must never run short of
    // descriptors); callers beyond them are re-checked by path, as without `hold`.
    const held =
      this.reader.hold && this.heldFiles + 2 <= MAX_HELD_FILES
        ? { stat: this.reader.hold(`/proc/${pid}/stat`), cmdline: this.reader.hold(`/proc/${pid}/cmdline`) }
        : undefined;
    if (held) this.heldFiles += Number(held.stat !== undefined) + Number(held.cmdline !== undefined);
    const own = throughHeld(this.reader, pid, held);
    const caller = identifyCaller(pid, run, own, this.memo);
    if (caller.facts.known) {
      if (this.entries.size >= this.maxEntries) this.clear();
      this.entries.set(key, { caller, cmdlineText: own.cmdlineText, at: t, ...held });
    } else if (held) this.releaseHeld(held);
    return caller;
  }

  /** A stat held open (`ProcReader.hold`), read again: undefined once its process has ended. */
  private statThrough(fd: number): ProcStat | undefined {
    const text = this.reader.reread?.(fd);
    return text === undefined ? undefined : parseStat(text);
  }

  clear(): void {
    for (const [key, e] of this.entries) this.drop(key, e);
    this.forgetAncestors();
  }

  private forgetAncestor(pid: number): void {
    const e = this.ancestors.get(pid);
    if (!e) return;
    this.ancestors.delete(pid);
    if (e.stat !== undefined) {
      this.reader.release?.(e.stat);
      this.heldAncestors--;
    }
  }

  private forgetAncestors(): void {
    for (const pid of [...this.ancestors.keys()]) this.forgetAncestor(pid);
  }

  /** Forgets entries too old to be used, and closes what they held. */
  private sweep(t: number): void {
    this.lastSweep = t;
    for (const [key, e] of this.entries) if (t - e.at >= this.maxAgeMs) this.drop(key, e);
    // Ancestors past their minute, with their held files: a shell that ended long ago must not
    // keep its slot (nor its file) from the shells in use now.
    for (const [pid, e] of this.ancestors) if (t - e.at >= ANCESTOR_MS) this.forgetAncestor(pid);
  }

  private drop(key: string, e: Entry): void {
    this.entries.delete(key);
    this.releaseHeld(e);
  }

  private releaseHeld(h: { stat?: number | undefined; cmdline?: number | undefined }): void {
    for (const fd of [h.stat, h.cmdline])
      if (fd !== undefined) {
        this.reader.release?.(fd);
        this.heldFiles--;
      }
  }

  /**
   * The process is the one identified, unchanged: its stat (start time, session, terminal,
   * parent) before and after reading its executable, folder and argv. With files held open
   * (`ProcReader.hold`) a reused pid cannot even be read, and each re-check is five system
   * calls instead of thirteen (a third of the front's time at 1,000 answers a second).
   */
  private unchanged(pid: number, e: Entry): boolean {
    const c = e.caller;
    const r = this.reader;
    const same = (s: ProcStat | undefined) =>
      s !== undefined &&
      s.pid === pid &&
      s.startTime === c.info.startTime &&
      s.sid === c.info.sid &&
      s.ttyNr === c.info.ttyNr &&
      s.ppid === c.info.ppid;
    const stat = (): ProcStat | undefined => {
      if (e.stat === undefined || !r.reread) return readStat(pid, r);
      return this.statThrough(e.stat);
    };
    const cmdline = () =>
      e.cmdline !== undefined && r.reread ? r.reread(e.cmdline) : r.readFile(`/proc/${pid}/cmdline`);
    if (!same(stat())) return false;
    const ok =
      r.readLink(`/proc/${pid}/exe`) === c.info.exe &&
      r.readLink(`/proc/${pid}/cwd`) === c.info.cwd &&
      e.cmdlineText !== undefined &&
      cmdline() === e.cmdlineText;
    return ok && same(stat());
  }
}
