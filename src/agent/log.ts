/**
 * The release log: one JSON line per decision of the agent's release gate (every release and
 * every refusal), append-only and tamper-evident.
 *
 * Each record carries the MAC of the record before it (`prev`) and its own MAC (`mac`),
 * HMAC-SHA256 under a key that only the unlocked store gives (see `releaseKeys`), so a record
 * edited, removed or put in another order breaks the chain at a named record. A cut at the end
 * leaves a valid chain, so a MACed head (`release.log.head`: the last seq and MAC) is written
 * after every append: a log shorter than its head is named as truncated.
 *
 * What it holds: time, caller (executable, pid, start time, argv, session, terminal, unit, exec
 * run), request (kind, audience/scopes, tenant, subscription), decision and rule. Never a
 * token: the gate never sees one, and nothing here takes one.
 *
 * Limits (docs/policy.md): a same-uid program can delete the log and its head together or roll
 * both back to an earlier state it copied; `verify` then reports "missing" or an older head,
 * which the running agent notices (it knows its own head) but a later reader cannot tell from a
 * fresh start.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { appendFile, readFile, rename, writeFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { join } from "node:path";

export const LOG_FILE = "release.log";
export const HEAD_FILE = "release.log.head";

/** How often the agent writes its pending records (and the head): see `ReleaseLog.drain`. */
export const WRITE_EVERY_MS = 100;

export interface LogCaller {
  pid: number;
  startTime?: number | undefined;
  exe?: string | undefined;
  argv?: string[] | undefined;
  cwd?: string | undefined;
  sid?: number | undefined;
  tty?: string | undefined;
  unit?: string | undefined;
  container?: string | undefined;
  /** `pid exe` of each ancestor up to init, nearest first. */
  parents?: string[] | undefined;
  /** The `azkeep exec` run this request came through. */
  run?: { id: string; childPid: number } | undefined;
}

export interface LogRequest {
  kind: string;
  op?: string | undefined;
  resource?: string | undefined;
  scopes?: string[] | undefined;
  resourceType?: string | undefined;
  tenant?: string | undefined;
  subscription?: string | undefined;
  /** A store write: `signin`, `signout`, `set-default`. */
  write?: string | undefined;
  /** The user a write signs in or out. */
  user?: string | undefined;
  /** A release-policy change, in words (`add rule 'x' (last): allow …`). */
  change?: string | undefined;
  /** The rule a policy change adds, as it is written into policy.json. */
  rule?: unknown;
}

export type LogDecision = "allow" | "deny";

/** What the gate appends. */
export interface LogEntry {
  caller: LogCaller;
  request: LogRequest;
  decision: LogDecision;
  /** The rule that decided (`session-approved`, `confirmed`, `no-terminal`, a policy rule's name, …). */
  rule: string;
  /** Why, in words (the refusal the client saw, or how it was approved). */
  reason?: string | undefined;
  /** When it was decided (ms), if not now: a refusal made while locked, written at unlock. */
  at?: number | undefined;
}

export interface LogRecord extends LogEntry {
  seq: number;
  /** ISO 8601, UTC. */
  time: string;
  /** MAC of the previous record ("" for the first). */
  prev: string;
  mac: string;
}

interface Head {
  seq: number;
  mac: string;
  hmac: string;
}

function hmac(key: Uint8Array, text: string): string {
  return createHmac("sha256", key).update(text).digest("base64url");
}

function sameMac(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The MACed text: every field but `mac`, in a fixed order. */
function macInput(r: Omit<LogRecord, "mac">): string {
  return JSON.stringify([r.seq, r.time, r.prev, r.caller, r.request, r.decision, r.rule, r.reason ?? null]);
}

function headInput(seq: number, mac: string): string {
  return `azkeep release log head\n${seq}\n${mac}`;
}

export type LogProblem =
  | { kind: "edited"; seq: number | undefined; line: number }
  | { kind: "removed"; afterSeq: number; beforeSeq: number; line: number }
  | { kind: "truncated"; lastSeq: number; headSeq: number }
  | { kind: "head-edited" }
  | { kind: "head-missing"; lastSeq: number }
  | { kind: "log-missing"; headSeq: number };

export interface LogVerification {
  ok: boolean;
  records: LogRecord[];
  /** The first problem found (the chain is not trusted past it). */
  problem?: LogProblem;
  /** One line naming the problem (for doctor and `agent log`). */
  message?: string;
}

/** Says what is wrong in words that name the record. */
export function describeProblem(p: LogProblem, file: string): string {
  switch (p.kind) {
    case "edited":
      return `${file}: record ${p.seq ?? "?"} (line ${p.line}) was changed outside azkeep (its MAC does not match).`;
    case "removed":
      return `${file}: records ${p.afterSeq + 1}–${p.beforeSeq - 1} were removed (line ${p.line} follows record ${p.afterSeq}).`;
    case "truncated":
      return `${file}: the log was cut after record ${p.lastSeq}; the agent had written up to record ${p.headSeq}.`;
    case "head-edited":
      return `${file}.head was changed outside azkeep.`;
    case "head-missing":
      return `${file}.head is missing: the log (${p.lastSeq} records) cannot be checked for a cut at its end.`;
    case "log-missing":
      return `${file} is missing or empty; the agent had written ${p.headSeq} records.`;
  }
}

/** Checks the chain and the head; parses what it can. */
export function verifyLog(
  text: string | undefined,
  headText: string | undefined,
  key: Uint8Array,
): LogVerification {
  const records: LogRecord[] = [];
  const lines = (text ?? "").split("\n");
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  let prevMac = "";
  let prevSeq = 0;
  const fail = (problem: LogProblem): LogVerification => ({
    ok: false,
    records,
    problem,
    message: describeProblem(problem, LOG_FILE),
  });
  for (let i = 0; i < lines.length; i++) {
    let r: LogRecord;
    try {
      r = JSON.parse(lines[i]!) as LogRecord;
    } catch {
      return fail({ kind: "edited", seq: prevSeq + 1, line: i + 1 });
    }
    if (
      !r ||
      typeof r !== "object" ||
      !Number.isSafeInteger(r.seq) ||
      typeof r.mac !== "string" ||
      typeof r.prev !== "string"
    )
      return fail({ kind: "edited", seq: prevSeq + 1, line: i + 1 });
    if (!sameMac(hmac(key, macInput(r)), r.mac)) return fail({ kind: "edited", seq: r.seq, line: i + 1 });
    // The record is genuine; does it follow the one before it?
    if (r.seq !== prevSeq + 1 || r.prev !== prevMac) {
      if (r.seq > prevSeq + 1)
        return fail({ kind: "removed", afterSeq: prevSeq, beforeSeq: r.seq, line: i + 1 });
      return fail({ kind: "edited", seq: r.seq, line: i + 1 });
    }
    records.push(r);
    prevMac = r.mac;
    prevSeq = r.seq;
  }
  if (headText === undefined) {
    if (records.length > 0) return fail({ kind: "head-missing", lastSeq: prevSeq });
    return { ok: true, records };
  }
  let head: Head;
  try {
    head = JSON.parse(headText) as Head;
  } catch {
    return fail({ kind: "head-edited" });
  }
  if (
    !head ||
    !Number.isSafeInteger(head.seq) ||
    typeof head.mac !== "string" ||
    typeof head.hmac !== "string" ||
    !sameMac(hmac(key, headInput(head.seq, head.mac)), head.hmac)
  )
    return fail({ kind: "head-edited" });
  if (head.seq > prevSeq) {
    if (prevSeq === 0) return fail({ kind: "log-missing", headSeq: head.seq });
    return fail({ kind: "truncated", lastSeq: prevSeq, headSeq: head.seq });
  }
  // A head behind the log: the agent died between the append and the head write. Fine, as long
  // as the head's record is in the chain (else the head is from another log).
  if (head.seq > 0 && records[head.seq - 1]?.mac !== head.mac) return fail({ kind: "head-edited" });
  return { ok: true, records };
}

function readOrUndefined(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

/** Reads and verifies the log in `dir`. */
export function verifyLogFiles(dir: string, key: Uint8Array): LogVerification {
  return verifyLog(readOrUndefined(join(dir, LOG_FILE)), readOrUndefined(join(dir, HEAD_FILE)), key);
}

/**
 * The agent's writer. Appends are queued and written in order in the background, so a decision
 * does not wait for the disk; `flush()` waits for them (tests, stop).
 */
export class ReleaseLog {
  private seq = 0;
  private lastMac = "";
  private queue: Promise<void> = Promise.resolve();
  private pending: string[] = [];
  private pendingHead: Omit<Head, "hmac"> | undefined;
  private drainQueued = false;
  private writeTimer: ReturnType<typeof setTimeout> | undefined;
  /** Entries whose records are made at the next turn of the event loop (see `append`). */
  private entries: LogEntry[] = [];
  private scheduled: Promise<void> | undefined;
  private readonly logPath: string;
  private readonly headPath: string;
  /** Set when the log on disk was found broken at open: the agent says so in every record's reason. */
  readonly problem: string | undefined;

  private constructor(
    dir: string,
    private readonly key: Uint8Array,
    private readonly now: () => number,
    existing: LogVerification,
    private readonly writeEveryMs: number,
  ) {
    this.logPath = join(dir, LOG_FILE);
    this.headPath = join(dir, HEAD_FILE);
    const last = existing.records[existing.records.length - 1];
    if (last) {
      this.seq = last.seq;
      this.lastMac = last.mac;
    }
    this.problem = existing.ok ? undefined : existing.message;
    if (!existing.ok) {
      // Keep the evidence: the broken log is moved aside, a new chain starts after it.
      const aside = `${this.logPath}.broken-${new Date(now()).toISOString().replace(/[:.]/g, "")}`;
      this.queue = rename(this.logPath, aside)
        .catch(() => {})
        .then(() => rename(this.headPath, `${aside}.head`).catch(() => {}));
      this.seq = 0;
      this.lastMac = "";
    }
  }

  /** Opens the log in `dir` (its chain verified once; a broken one is kept aside and restarted). */
  static open(
    dir: string,
    key: Uint8Array,
    now: () => number = Date.now,
    writeEveryMs = WRITE_EVERY_MS,
  ): ReleaseLog {
    return new ReleaseLog(dir, key, now, verifyLogFiles(dir, key), writeEveryMs);
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

  /** Makes the record of `entry` (chained to the previous one) and queues its write. */
  private seal(entry: LogEntry): LogRecord {
    const base = {
      seq: this.seq + 1,
      time: new Date(entry.at ?? this.now()).toISOString(),
      prev: this.lastMac,
      caller: entry.caller,
      request: entry.request,
      decision: entry.decision,
      rule: entry.rule,
      ...(entry.reason !== undefined ? { reason: entry.reason } : {}),
    };
    const record: LogRecord = { ...base, mac: hmac(this.key, macInput(base)) };
    this.seq = record.seq;
    this.lastMac = record.mac;
    this.pending.push(`${JSON.stringify(record)}\n`);
    // The head's own MAC is made at the write, for the last record only.
    this.pendingHead = { seq: record.seq, mac: record.mac };
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
   * Writes every record appended since the last write in one append, then the head of the last
   * one: at most every `writeEveryMs` (at 1,000 decisions a second, ten writes a second, not
   * three file operations a decision: those took a third of the front's time and were the tail
   * of its answer latency, docs/benchmarks.md). The head is never ahead of the log; behind it is
   * what a crash between the two leaves anyway. An agent killed (SIGKILL) loses the records of
   * its last `writeEveryMs`; a stop and a lock write them first.
   */
  private async drain(): Promise<void> {
    this.drainQueued = false;
    const lines = this.pending.join("");
    const head = this.pendingHead;
    this.pending = [];
    this.pendingHead = undefined;
    if (!head) return;
    const headTmp = `${this.headPath}.tmp`;
    try {
      await appendFile(this.logPath, lines, { mode: 0o600 });
      const signed: Head = { ...head, hmac: hmac(this.key, headInput(head.seq, head.mac)) };
      await writeFile(headTmp, JSON.stringify(signed), { mode: 0o600 });
      await rename(headTmp, this.headPath);
    } catch {
      /* a full disk must not stop the agent answering; the next verify names the gap */
    }
  }

  /** Resolves when every queued append is on disk. */
  async flush(): Promise<void> {
    await this.scheduled;
    this.startDrain();
    await this.queue;
  }

  /** Reads the log as it is on disk now and checks it against the key. */
  async verify(): Promise<LogVerification> {
    await this.flush();
    const [text, head] = await Promise.all([
      readFile(this.logPath, "utf8").catch(() => undefined),
      readFile(this.headPath, "utf8").catch(() => undefined),
    ]);
    const v = verifyLog(text, head, this.key);
    // The agent knows its own head: a log rolled back together with its head is caught here.
    if (v.ok && this.seq > 0 && (v.records[v.records.length - 1]?.seq ?? 0) < this.seq) {
      const problem: LogProblem = { kind: "truncated", lastSeq: v.records.length, headSeq: this.seq };
      return { ok: false, records: v.records, problem, message: describeProblem(problem, LOG_FILE) };
    }
    return v;
  }
}

export interface LogFilter {
  /** Epoch ms: records at or after it. */
  since?: number | undefined;
  /** Matches the executable's path or name, or the pid. */
  caller?: string | undefined;
}

/** Filters records for `azkeep agent log`. */
export function filterRecords(records: LogRecord[], f: LogFilter): LogRecord[] {
  return records.filter((r) => {
    if (f.since !== undefined && Date.parse(r.time) < f.since) return false;
    if (f.caller) {
      const c = f.caller;
      const exe = r.caller.exe ?? "";
      const name = exe.split("/").pop() ?? "";
      if (!(exe === c || name === c || String(r.caller.pid) === c || exe.includes(c))) return false;
    }
    return true;
  });
}

/** One row per record for `-o table`. */
export function recordRow(r: LogRecord): Record<string, unknown> {
  const what =
    r.request.change?.split("\n")[0] ??
    r.request.write ??
    r.request.resource ??
    r.request.scopes?.join(" ") ??
    r.request.resourceType ??
    r.request.op ??
    r.request.kind;
  return {
    seq: r.seq,
    time: r.time,
    decision: r.decision,
    rule: r.rule,
    pid: r.caller.pid,
    exe: r.caller.exe ?? "(unknown)",
    tty: r.caller.tty ?? "-",
    run: r.caller.run?.id ?? "-",
    request: what,
  };
}
