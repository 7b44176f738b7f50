/**
 * The release log: one JSON line per decision of the agent's release gate (every release and
 * every refusal), append-only, tamper-evident, and rotated so that it stays bounded.
 *
 * Each record carries the MAC of the record before it (`prev`) and its own MAC (`mac`),
 * HMAC-SHA256 under a key that only the unlocked store gives (see `releaseKeys`), so a record
 * edited, removed or put in another order breaks the chain at a named record. A cut at the end
 * leaves a valid chain, so a MACed head (`release.log.head`: the last seq and MAC) is written
 * after every append: a log shorter than its head is named as truncated.
 *
 * Rotation (like logrotate, but one chain): when `release.log` would pass `maxBytes` (8 MiB),
 * the writer renames it to `release.log.1` (`.1` → `.2` …, `keep` = 3 rotated files; the one
 * pushed past `keep` is deleted last, after the new file has its first record) and goes on in a
 * new `release.log`. The chain does not restart: the new file's first record follows the last
 * record of `.1` (its `prev`, the next seq) and carries `opens: { file, keep, prevLatest }` —
 * under the MAC — saying it opens log file number `file` (the first file is 0) of a writer that
 * keeps `keep` older files. The rule a reader applies, and why it is sound:
 * - every file must start with record 1 (`prev` "") or with an `opens` record. Only the writer
 *   makes either, at the start of a file, so a file whose head was cut off starts with an
 *   ordinary record and is named (`cut`), even when every older file was deleted with it;
 * - an `opens` record follows the last record of the file before it (seq and `prev`), else the
 *   break between the two files is named (`removed`, `unlinked`);
 * - file `file` has `min(file, keep)` older files that azkeep has not deleted yet: one of those
 *   missing is named (`rotated-missing`: which file, the records before which seq). Only files
 *   older than that are "rotated away": a note, not a problem.
 * - the head names the last record written, in `release.log` (or, just after a rotation, the
 *   last of `.1`: the `prev` of the new file's first record).
 * The rotation's steps, each a rename or an append, leave at every crash point a log this rule
 * accepts: the current file renamed and no new one yet (the chain ends in `.1`, the head names
 * its last record); the new file written but the head not yet (the head names the `prev` of the
 * new file's first record); the oldest file not yet deleted (one more old file than kept).
 *
 * The agent reads at start (`ReleaseLog.open`) only `release.log` and its head: at most
 * `maxBytes` (a file larger than twice that, or than 16 MiB, was not written by azkeep: it is
 * named `too-large` without being read, and kept aside). The writer counts the bytes it wrote
 * itself, so bytes appended by someone else do not make it rotate (and delete the oldest file)
 * sooner. Reading the whole log (`azkeep agent log`, `doctor`) goes page by page
 * (`readLogPage`): bounded reads, each page under the protocol's frame limit, the chain checked
 * across pages and files.
 *
 * What it holds: time, caller (executable, pid, start time, argv, session, terminal, unit, exec
 * run), request (kind, audience/scopes, tenant, subscription), decision and rule. Never a
 * token: the gate never sees one, and nothing here takes one.
 *
 * Here: the writer (`ReleaseLog`) and the check it makes at start. `log-chain.ts`: the record
 * format, MACs and `ChainCheck`; `log-read.ts`: reading the files page by page.
 *
 * Limits (docs/policy.md): a same-uid program can delete the log, its rotated files and its head
 * together, or roll them all back to an earlier state it copied; `verify` then reports "missing"
 * or an older head, which the running agent notices (it knows its own head) but a later reader
 * cannot tell from a fresh start.
 */
import { appendFile, readdir, rename, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  ChainCheck,
  DEFAULT_KEEP,
  DEFAULT_MAX_BYTES,
  HEAD_FILE,
  LOG_FILE,
  ROTATED,
  describeProblem,
  fileNumber,
  headInput,
  headProblem,
  hmac,
  isRecord,
  recordTexts,
  parseRecord,
  type Head,
  type LogEntry,
  type LogOpening,
  type LogProblem,
  type LogRecord,
  type LogVerification,
} from "./log-chain.js";
import {
  MAX_HEAD_BYTES,
  collectPages,
  edgeLinesSync,
  readLogPage,
  readSmallSync,
  type PageResult,
} from "./log-read.js";
import type { LogPageQuery } from "./protocol.js";

export {
  DEFAULT_KEEP,
  DEFAULT_MAX_BYTES,
  HEAD_FILE,
  LOG_FILE,
  describeProblem,
  filterRecords,
  recordRow,
  type LogCaller,
  type LogDecision,
  type LogEntry,
  type LogFilter,
  type LogOpening,
  type LogProblem,
  type LogRecord,
  type LogRequest,
  type LogVerification,
} from "./log-chain.js";
export {
  MAX_PAGES,
  parseLogQuery,
  readLogPage,
  verifyLogFiles,
  type PageResult,
  type ReadPageOptions,
} from "./log-read.js";
export type { LogCursor, LogPage, LogPageQuery } from "./protocol.js";

/** The largest rotation size accepted. */
const MAX_MAX_BYTES = 64 * 1024 * 1024;

/** How often the agent writes its pending records (and the head): see `ReleaseLog.drain`. */
export const WRITE_EVERY_MS = 100;

export interface ReleaseLogOptions {
  /** Rotate `release.log` before it passes this many bytes (default 8 MiB, at most 64 MiB). */
  maxBytes?: number;
  /** Rotated files kept (default 3). */
  keep?: number;
  /** Pending records are written at most this long after they are made (default `WRITE_EVERY_MS`). */
  writeEveryMs?: number;
}

/** A segment of the write queue: lines for one file, rotating first when `rotate`. */
interface Segment {
  rotate: boolean;
  lines: string[];
  /** The last record's; its MAC is made at the write. */
  head: Omit<Head, "hmac">;
}

/** What `open` found: where the chain goes on, or the problem. */
interface OpenState {
  seq: number;
  mac: string;
  file: number;
  size: number;
  latest: number;
  /** The next record starts a file (the chain goes on from `.1`). */
  opening: boolean;
  problem?: LogProblem;
}

/**
 * Checks `release.log` and its head only (never the rotated files, except the last line of
 * `.1` when `release.log` is gone after a rotation): what the agent needs to go on writing.
 */
function openCheck(dir: string, key: Uint8Array, maxBytes: number): OpenState {
  const fresh: OpenState = { seq: 0, mac: "", file: 0, size: 0, latest: 0, opening: false };
  const limit = Math.max(2 * maxBytes, 2 * DEFAULT_MAX_BYTES);
  const text = readSmallSync(join(dir, LOG_FILE), limit);
  if (text && !Buffer.isBuffer(text))
    return { ...fresh, problem: { kind: "too-large", size: text.size, limit } };
  const headRaw = readSmallSync(join(dir, HEAD_FILE), MAX_HEAD_BYTES);
  const headText =
    headRaw === undefined ? undefined : Buffer.isBuffer(headRaw) ? headRaw.toString("utf8") : "";
  const chain = new ChainCheck(key, undefined, () => true);
  chain.beginFile(LOG_FILE, "start");
  const body = text ?? Buffer.alloc(0);
  const lines = body.toString("utf8").split("\n");
  const tail = lines.pop();
  let ok = true;
  for (let i = 0; i < lines.length && ok; i++) ok = chain.line(lines[i]!, i + 1);
  if (ok && tail) {
    chain.problems.push({ kind: "edited", seq: (chain.last?.seq ?? 0) + 1, line: lines.length + 1 });
    ok = false;
  }
  if (chain.problems[0]) return { ...fresh, problem: chain.problems[0] };
  const first = chain.records[0];
  if (first) {
    const p = headProblem(
      headText,
      key,
      chain.last,
      (seq) => chain.records.find((r) => r.seq === seq)?.mac,
      first,
      undefined,
    );
    if (p) return { ...fresh, problem: p };
    let latest = 0;
    for (const r of chain.records) latest = Math.max(latest, Date.parse(r.time) || 0);
    return {
      seq: chain.last!.seq,
      mac: chain.last!.mac,
      file: fileNumber(first) ?? 0,
      size: body.length,
      latest,
      opening: false,
    };
  }
  // No record in release.log: a first start, or a crash (or a stop) right after a rotation.
  const edges = edgeLinesSync(join(dir, `${LOG_FILE}.1`));
  if (!edges) {
    const p = headProblem(headText, key, undefined, () => undefined, undefined, undefined);
    return p ? { ...fresh, problem: p } : fresh;
  }
  const lastRec = edges.last !== undefined ? parseRecord(edges.last, key) : "malformed";
  const firstRec = edges.first !== undefined ? parseRecord(edges.first, key) : "malformed";
  if (!isRecord(lastRec) || !isRecord(firstRec) || fileNumber(firstRec) === undefined)
    return { ...fresh, problem: { kind: "edited", seq: undefined, line: 1, file: `${LOG_FILE}.1` } };
  const p = headProblem(
    headText,
    key,
    { seq: lastRec.seq, mac: lastRec.mac },
    () => undefined,
    undefined,
    undefined,
  );
  if (p) return { ...fresh, problem: p };
  return {
    seq: lastRec.seq,
    mac: lastRec.mac,
    file: fileNumber(firstRec)! + 1,
    size: 0,
    latest: 0,
    opening: true,
  };
}

/**
 * The agent's writer. Appends are queued and written in order in the background, so a decision
 * does not wait for the disk; `flush()` waits for them (tests, stop). Rotation and reads of the
 * log (`readPage`) run in the same queue: nothing is appended while a file is renamed or read.
 */
export class ReleaseLog {
  private seq = 0;
  private lastMac = "";
  /** The current file's number, its size as this writer knows it (its own bytes), its latest record time. */
  private file = 0;
  private size = 0;
  private latest = 0;
  private opening = false;
  /** The last seq on disk (appended by this writer, or found at open). */
  private written = 0;
  private queue: Promise<void> = Promise.resolve();
  private pending: Segment[] = [];
  private drainQueued = false;
  private writeTimer: ReturnType<typeof setTimeout> | undefined;
  /** Entries whose records are made at the next turn of the event loop (see `append`). */
  private entries: LogEntry[] = [];
  private scheduled: Promise<void> | undefined;
  private readonly dir: string;
  private readonly logPath: string;
  private readonly headPath: string;
  private readonly maxBytes: number;
  private readonly keep: number;
  private readonly writeEveryMs: number;
  /** Set when the log on disk was found broken at open: the agent says so in every record's reason. */
  readonly problem: string | undefined;

  private constructor(
    dir: string,
    private readonly key: Uint8Array,
    private readonly now: () => number,
    options: ReleaseLogOptions,
  ) {
    this.dir = dir;
    this.logPath = join(dir, LOG_FILE);
    this.headPath = join(dir, HEAD_FILE);
    // At most 64 MiB: the agent reads `release.log` whole when it opens it.
    this.maxBytes = Math.min(MAX_MAX_BYTES, Math.max(1, Math.floor(options.maxBytes ?? DEFAULT_MAX_BYTES)));
    this.keep = Math.max(1, Math.floor(options.keep ?? DEFAULT_KEEP));
    this.writeEveryMs = Math.max(0, options.writeEveryMs ?? WRITE_EVERY_MS);
    const found = openCheck(dir, key, this.maxBytes);
    this.problem = found.problem ? describeProblem(found.problem) : undefined;
    if (found.problem) {
      // Keep the evidence: the broken log (and the rotated files of its chain) is moved aside,
      // a new chain starts after it.
      this.queue = this.moveAside();
      return;
    }
    this.seq = found.seq;
    this.lastMac = found.mac;
    this.written = found.seq;
    this.file = found.file;
    this.size = found.size;
    this.latest = found.latest;
    this.opening = found.opening;
  }

  private async moveAside(): Promise<void> {
    const aside = `${this.logPath}.broken-${new Date(this.now()).toISOString().replace(/[:.]/g, "")}`;
    await rename(this.logPath, aside).catch(() => {});
    await rename(this.headPath, `${aside}.head`).catch(() => {});
    const names = await readdir(this.dir).catch(() => [] as string[]);
    for (const n of names) {
      const m = ROTATED.exec(n);
      if (m) await rename(join(this.dir, n), `${aside}.${m[1]}`).catch(() => {});
    }
  }

  /**
   * Opens the log in `dir`: `release.log` and its head verified once (not the rotated files); a
   * broken one is kept aside with its rotated files, and a new chain starts.
   */
  static open(
    dir: string,
    key: Uint8Array,
    now: () => number = Date.now,
    options: ReleaseLogOptions = {},
  ): ReleaseLog {
    return new ReleaseLog(dir, key, now, options);
  }

  /**
   * Appends one record, in order. The record itself (its sequence number, the MAC chain) is made
   * after the current turn of the event loop — after the answer that the decision let through
   * is written — so a release does not wait for two HMACs and a JSON encoding; its time is the
   * time of the call. `flush()` waits for it.
   */
  append(entry: LogEntry): void {
    this.entries.push(entry.at !== undefined ? entry : { ...entry, at: this.now() });
    this.scheduled ??= new Promise<void>((resolve) =>
      setImmediate(() => {
        this.scheduled = undefined;
        for (const e of this.entries.splice(0)) this.seal(e);
        resolve();
      }),
    );
  }

  private line(base: Omit<LogRecord, "mac">): { record: LogRecord; text: string } {
    let mac = "";
    const { line } = recordTexts(base, (input) => (mac = hmac(this.key, input)));
    return { record: { ...base, mac }, text: `${line}\n` };
  }

  /**
   * Makes the record of `entry` (chained to the previous one) and queues its write. A record
   * that would take the file past `maxBytes` starts the next file (a rotation before its write).
   */
  private seal(entry: LogEntry): LogRecord {
    const at = entry.at ?? this.now();
    const base: Omit<LogRecord, "mac"> = {
      seq: this.seq + 1,
      time: new Date(at).toISOString(),
      prev: this.lastMac,
      caller: entry.caller,
      request: entry.request,
      decision: entry.decision,
      rule: entry.rule,
      ...(entry.reason !== undefined ? { reason: entry.reason } : {}),
    };
    let made = this.line(base);
    const rotate = this.size > 0 && this.size + Buffer.byteLength(made.text) > this.maxBytes;
    if (rotate || this.opening) {
      if (rotate) this.file++;
      const opens: LogOpening = {
        file: this.file,
        keep: this.keep,
        ...(rotate && this.latest > 0 ? { prevLatest: new Date(this.latest).toISOString() } : {}),
      };
      made = this.line({ ...base, opens });
      this.size = 0;
      this.latest = 0;
      this.opening = false;
    }
    const { record, text } = made;
    this.seq = record.seq;
    this.lastMac = record.mac;
    this.size += Buffer.byteLength(text);
    this.latest = Math.max(this.latest, at);
    // The head's own MAC is made at the write, for the last record only.
    const head = { seq: record.seq, mac: record.mac };
    const last = this.pending.at(-1);
    if (last && !rotate) {
      last.lines.push(text);
      last.head = head;
    } else this.pending.push({ rotate, lines: [text], head });
    if (!this.drainQueued) {
      this.drainQueued = true;
      this.writeTimer = setTimeout(() => this.startDrain(), this.writeEveryMs);
    }
    return record;
  }

  /** Queues the write of what is pending (now, not at the timer: `flush`). */
  private startDrain(): void {
    if (!this.writeTimer) return;
    clearTimeout(this.writeTimer);
    this.writeTimer = undefined;
    this.queue = this.queue.then(() => this.drain());
  }

  /**
   * Writes every record appended since the last write in one append per file, then the head of
   * its last record: at most every `writeEveryMs` (at 1,000 decisions a second, ten writes a
   * second, not three file operations a decision: those took a third of the front's time and
   * were the tail of its answer latency, docs/benchmarks.md). The head is never ahead of the
   * log; behind it is what a crash between the two leaves anyway. An agent killed (SIGKILL)
   * loses the records of its last `writeEveryMs`; a stop and a lock write them first. A
   * rotation renames first (`.N` → `.N+1` from the oldest, then `release.log` → `.1`), appends
   * to the new file, writes the head, and only then deletes the file past `keep`.
   */
  private async drain(): Promise<void> {
    this.drainQueued = false;
    const segments = this.pending;
    this.pending = [];
    const headTmp = `${this.headPath}.tmp`;
    for (const s of segments) {
      try {
        if (s.rotate) await this.shift();
        await appendFile(this.logPath, s.lines.join(""), { mode: 0o600 });
        this.written = s.head.seq;
        const signed: Head = { ...s.head, hmac: hmac(this.key, headInput(s.head.seq, s.head.mac)) };
        await writeFile(headTmp, JSON.stringify(signed), { mode: 0o600 });
        await rename(headTmp, this.headPath);
        if (s.rotate) await unlink(join(this.dir, `${LOG_FILE}.${this.keep + 1}`)).catch(() => {});
      } catch {
        /* a full disk must not stop the agent answering; the next verify names the gap */
      }
    }
  }

  /** Renames the rotated files one up (oldest first, so none is overwritten but the one past `keep`), then the log to `.1`. */
  private async shift(): Promise<void> {
    for (let n = this.keep; n >= 1; n--)
      await rename(join(this.dir, `${LOG_FILE}.${n}`), join(this.dir, `${LOG_FILE}.${n + 1}`)).catch(
        () => {},
      );
    await rename(this.logPath, join(this.dir, `${LOG_FILE}.1`)).catch(() => {});
  }

  /** Resolves when every queued append is on disk. */
  async flush(): Promise<void> {
    await this.scheduled;
    this.startDrain();
    await this.queue;
  }

  /**
   * One page of the log as it is on disk now (`readLogPage`), read in the write queue: after the
   * records appended so far, with nothing renamed or appended while it reads. The last page
   * also checks the log against the head this writer knows it wrote (a log rolled back together
   * with its head file).
   */
  async readPage(q: LogPageQuery = {}): Promise<PageResult> {
    await this.scheduled;
    this.startDrain();
    const run = this.queue.then(() =>
      readLogPage(this.dir, this.key, q, { keep: this.keep, knownSeq: this.written }),
    );
    this.queue = run.then(
      () => {},
      () => {},
    );
    return run;
  }

  /** Reads the whole log as it is on disk now and checks it against the key. */
  async verify(): Promise<LogVerification> {
    return collectPages((page) => this.readPage(page ? { page } : {}));
  }
}

/** `AZKEEP_RELEASE_LOG_MAX_BYTES` (a positive integer), or undefined for the default. */
export function maxBytesFromEnv(env: Readonly<Record<string, string | undefined>>): number | undefined {
  const v = env.AZKEEP_RELEASE_LOG_MAX_BYTES;
  return v && /^[1-9][0-9]{0,15}$/.test(v) ? Number(v) : undefined;
}
