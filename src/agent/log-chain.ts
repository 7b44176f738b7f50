/**
 * The release log's records and their chain (see `log.ts` for the writer and the rotation rule):
 * the record format and its MAC, the head's, the problems a reader names, and `ChainCheck`, which
 * checks lines oldest first across the log's files. No file access here.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

export const LOG_FILE = "release.log";
export const HEAD_FILE = "release.log.head";
/** The size at which `release.log` is rotated. */
export const DEFAULT_MAX_BYTES = 8 * 1024 * 1024;
/** How many rotated files (`release.log.1` …) are kept. */
export const DEFAULT_KEEP = 3;
/** `release.log.N`: the rotated files (`.broken-…` ones are not). */
export const ROTATED = /^release\.log\.([1-9][0-9]{0,2})$/;

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

/** On the first record of a file that a rotation started (see the header). */
export interface LogOpening {
  /** The log file's number: the first file is 0, each rotation adds 1. */
  file: number;
  /** How many older files the writer keeps. */
  keep: number;
  /** The latest `time` in the file before (lets `--since` skip older files unread). */
  prevLatest?: string;
}

export interface LogRecord extends LogEntry {
  seq: number;
  /** ISO 8601, UTC. */
  time: string;
  /** MAC of the previous record ("" for the first). */
  prev: string;
  /** Only on the first record of a file a rotation started. */
  opens?: LogOpening;
  mac: string;
}

export interface Head {
  seq: number;
  mac: string;
  hmac: string;
}

export interface Link {
  seq: number;
  mac: string;
}

export function hmac(key: Uint8Array, text: string): string {
  return createHmac("sha256", key).update(text).digest("base64url");
}

export function sameMac(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The MACed text: every field but `mac`, in a fixed order (`opens` only where present). */
/** JSON of each caller seen (a caller asking again is the same object: see `logCaller`). */
const callerJson = new WeakMap<object, string>();

function jsonOfCaller(c: LogCaller): string {
  let j = callerJson.get(c);
  if (j === undefined) callerJson.set(c, (j = JSON.stringify(c)));
  return j;
}

/**
 * `macInput(r)` and `JSON.stringify({ ...r, mac })`, the same bytes, made without encoding the
 * caller again for each record (it is most of a record, and a caller asks many times).
 */
export function recordTexts(
  r: Omit<LogRecord, "mac">,
  mac: (input: string) => string,
): { input: string; line: string } {
  const c = jsonOfCaller(r.caller);
  const request = JSON.stringify(r.request);
  const time = JSON.stringify(r.time);
  const prev = JSON.stringify(r.prev);
  const decision = JSON.stringify(r.decision);
  const rule = JSON.stringify(r.rule);
  const reason = r.reason !== undefined ? JSON.stringify(r.reason) : undefined;
  const opens = r.opens !== undefined ? JSON.stringify(r.opens) : undefined;
  const input = `[${r.seq},${time},${prev},${c},${request},${decision},${rule},${reason ?? "null"}${opens !== undefined ? `,${opens}` : ""}]`;
  const line =
    `{"seq":${r.seq},"time":${time},"prev":${prev},"caller":${c},"request":${request},"decision":${decision},"rule":${rule}` +
    `${reason !== undefined ? `,"reason":${reason}` : ""}${opens !== undefined ? `,"opens":${opens}` : ""},"mac":${JSON.stringify(mac(input))}}`;
  return { input, line };
}

export function macInput(r: Omit<LogRecord, "mac">): string {
  return JSON.stringify([
    r.seq,
    r.time,
    r.prev,
    r.caller,
    r.request,
    r.decision,
    r.rule,
    r.reason ?? null,
    ...(r.opens !== undefined ? [r.opens] : []),
  ]);
}

export function headInput(seq: number, mac: string): string {
  return `azkeep release log head\n${seq}\n${mac}`;
}

export type LogProblem =
  | { kind: "edited"; seq: number | undefined; line: number; file?: string }
  | { kind: "removed"; afterSeq: number; beforeSeq: number; line: number; file?: string }
  /** A file's first record is neither record 1 nor an `opens` record: its start was cut off. */
  | { kind: "cut"; seq: number; file?: string }
  /** A file's first record does not follow the last record of the file before it. */
  | { kind: "unlinked"; seq: number; after: string; file?: string }
  /** A rotated file is empty. */
  | { kind: "emptied"; file: string }
  /** Rotated files azkeep still keeps are gone: `files` (oldest first), the records before `beforeSeq`. */
  | { kind: "rotated-missing"; files: string[]; beforeSeq: number; keep: number }
  /** Larger than azkeep writes: not read. */
  | { kind: "too-large"; size: number; limit: number; file?: string }
  | { kind: "truncated"; lastSeq: number; headSeq: number }
  | { kind: "head-edited" }
  | { kind: "head-missing"; lastSeq: number }
  | { kind: "log-missing"; headSeq: number };

export interface LogVerification {
  ok: boolean;
  records: LogRecord[];
  /** The first problem found (the chain is not trusted past it in its file). */
  problem?: LogProblem;
  /** Every problem found, in the order found. */
  problems: LogProblem[];
  /** The problems in words, one sentence each (for doctor and `agent log`). */
  message?: string;
  /** What is normal but worth saying (older files rotated away, files skipped by `since`). */
  notes: string[];
  /** The files read, oldest first. */
  files: string[];
  /** How many records were checked (filtered or not). */
  checked: number;
}

/** Says what is wrong in words that name the record. */
export function describeProblem(p: LogProblem, file = LOG_FILE): string {
  const f = "file" in p && typeof p.file === "string" ? p.file : file;
  switch (p.kind) {
    case "edited":
      return `${f}: record ${p.seq ?? "?"} (line ${p.line}) was changed outside azkeep (its MAC does not match).`;
    case "removed":
      return `${f}: records ${p.afterSeq + 1}–${p.beforeSeq - 1} were removed (line ${p.line} follows record ${p.afterSeq}).`;
    case "cut":
      return `${f}: its first record is ${p.seq}, but a log file starts with record 1 or with the record that opens it after a rotation: the records before ${p.seq} were cut off.`;
    case "unlinked":
      return `${f}: its first record (${p.seq}) does not follow the last record of ${p.after}: one of the two files was replaced.`;
    case "emptied":
      return `${f} was emptied outside azkeep.`;
    case "rotated-missing": {
      const which = p.files.length === 1 ? `${p.files[0]} is` : `${p.files.join(", ")} are`;
      return `${which} missing (the records before ${p.beforeSeq}); azkeep keeps ${p.keep} rotated files and had not deleted ${p.files.length === 1 ? "it" : "them"}.`;
    }
    case "too-large":
      return `${f} is ${p.size} bytes, more than azkeep writes (${p.limit}); it was not read.`;
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

/**
 * The record on `line` if it was made under `key` (its MAC matches); else "malformed", or the
 * seq it claims when only its MAC is wrong (to name the record that was changed).
 */
export function parseRecord(line: string, key: Uint8Array): LogRecord | "malformed" | { badMac: number } {
  let r: LogRecord;
  try {
    r = JSON.parse(line) as LogRecord;
  } catch {
    return "malformed";
  }
  if (
    !r ||
    typeof r !== "object" ||
    !Number.isSafeInteger(r.seq) ||
    typeof r.mac !== "string" ||
    typeof r.prev !== "string"
  )
    return "malformed";
  if (!sameMac(hmac(key, macInput(r)), r.mac)) return { badMac: r.seq };
  if (
    r.opens !== undefined &&
    (!r.opens ||
      typeof r.opens !== "object" ||
      !Number.isSafeInteger(r.opens.file) ||
      !Number.isSafeInteger(r.opens.keep))
  )
    return "malformed";
  return r;
}

export function isRecord(r: ReturnType<typeof parseRecord> | undefined): r is LogRecord {
  return r !== undefined && r !== "malformed" && !("badMac" in r);
}

/** The log file number of a file whose first record is `r`: 0 for record 1, `opens.file`, or undefined. */
export function fileNumber(r: LogRecord | undefined): number | undefined {
  if (!r) return undefined;
  if (r.opens) return r.opens.file;
  return r.seq === 1 && r.prev === "" ? 0 : undefined;
}

export function parseHead(text: string, key: Uint8Array): Head | undefined {
  let head: Head;
  try {
    head = JSON.parse(text) as Head;
  } catch {
    return undefined;
  }
  if (
    !head ||
    !Number.isSafeInteger(head.seq) ||
    typeof head.mac !== "string" ||
    typeof head.hmac !== "string" ||
    !sameMac(hmac(key, headInput(head.seq, head.mac)), head.hmac)
  )
    return undefined;
  return head;
}

/**
 * How a file's first line is checked: `start`, the oldest file read (nothing before it to
 * follow); `skipped`, the oldest read after older ones were skipped (`since`); `follow`, it must
 * follow `last`; `gap`, the file before it is missing or broken (already named).
 */
export type FileMode = "start" | "skipped" | "follow" | "gap";

/** Checks records line by line, oldest first, across files; collects records and problems. */
export class ChainCheck {
  readonly problems: LogProblem[] = [];
  readonly notes: string[] = [];
  readonly records: LogRecord[] = [];
  checked = 0;
  private name = LOG_FILE;
  private mode: FileMode = "start";
  private previousName = "";

  constructor(
    private readonly key: Uint8Array,
    public last: Link | undefined,
    private readonly keepRecord: (r: LogRecord) => boolean,
  ) {}

  /** The next lines are line 1… of `name`. */
  beginFile(name: string, mode: FileMode): void {
    if (mode !== "follow") this.last = undefined;
    this.previousName = this.name;
    this.name = name;
    this.mode = mode;
  }

  /** Goes on in `name` (a page that starts inside a file). */
  resume(name: string): void {
    this.name = name;
  }

  private problem(p: Extract<LogProblem, { kind: "edited" | "removed" | "cut" | "unlinked" }>): void {
    this.problems.push(this.name === LOG_FILE ? p : { ...p, file: this.name });
  }

  /** The file's last line is not whole (a cut inside it), or a line is longer than any record. */
  brokenLine(lineNo: number): void {
    this.problem({ kind: "edited", seq: this.last ? this.last.seq + 1 : undefined, line: lineNo });
  }

  /** Checks one line; false when the rest of the file cannot be trusted (the reader skips it). */
  line(text: string, lineNo: number): boolean {
    const r = parseRecord(text, this.key);
    if (r === "malformed") {
      this.brokenLine(lineNo);
      return false;
    }
    if ("badMac" in r) {
      this.problem({ kind: "edited", seq: r.badMac, line: lineNo });
      return false;
    }
    if (lineNo === 1) {
      // A file starts with record 1 or with the record that opens it after a rotation; only the
      // writer makes either, so a file whose start was cut off is named even with nothing before it.
      const starts = r.opens !== undefined || (r.seq === 1 && r.prev === "");
      const last = this.mode === "follow" ? this.last : undefined;
      if (!starts) this.problem({ kind: "cut", seq: r.seq });
      else if (last && (r.seq !== last.seq + 1 || r.prev !== last.mac)) {
        if (r.seq > last.seq + 1)
          this.problem({ kind: "removed", afterSeq: last.seq, beforeSeq: r.seq, line: 1 });
        else this.problem({ kind: "unlinked", seq: r.seq, after: this.previousName });
      } else if (!last && r.opens && this.mode === "start")
        this.notes.push(
          `The records before ${r.seq} were rotated away (azkeep keeps ${r.opens.keep} rotated files).`,
        );
    } else if (!this.last || r.seq !== this.last.seq + 1 || r.prev !== this.last.mac) {
      if (this.last && r.seq > this.last.seq + 1)
        this.problem({ kind: "removed", afterSeq: this.last.seq, beforeSeq: r.seq, line: lineNo });
      else this.problem({ kind: "edited", seq: r.seq, line: lineNo });
      return false;
    }
    this.checked++;
    if (this.keepRecord(r)) this.records.push(r);
    this.last = { seq: r.seq, mac: r.mac };
    return true;
  }
}

/** The head check at the end of the chain (after `release.log`'s last record). */
export function headProblem(
  headText: string | undefined,
  key: Uint8Array,
  last: Link | undefined,
  found: (seq: number) => string | undefined,
  currentFirst: LogRecord | undefined,
  knownSeq: number | undefined,
): LogProblem | undefined {
  const lastSeq = last?.seq ?? 0;
  if (headText === undefined) return last ? { kind: "head-missing", lastSeq } : undefined;
  const head = parseHead(headText, key);
  if (!head) return { kind: "head-edited" };
  if (head.seq > lastSeq) {
    if (lastSeq === 0) return { kind: "log-missing", headSeq: head.seq };
    return { kind: "truncated", lastSeq, headSeq: head.seq };
  }
  // A head behind the log: the agent died between an append and the head write. Fine, as long as
  // the head's record is in the chain (else the head is from another log).
  if (head.seq > 0) {
    const mac =
      head.seq === lastSeq
        ? last?.mac
        : currentFirst && head.seq === currentFirst.seq - 1
          ? currentFirst.prev
          : found(head.seq);
    if (mac === undefined || !sameMac(mac, head.mac)) return { kind: "head-edited" };
  }
  // The agent knows its own head: a log rolled back together with its head is caught here.
  if (knownSeq !== undefined && lastSeq < knownSeq) return { kind: "truncated", lastSeq, headSeq: knownSeq };
  return undefined;
}

export interface LogFilter {
  /** Epoch ms: records at or after it. */
  since?: number | undefined;
  /** Matches the executable's path or name, or the pid. */
  caller?: string | undefined;
}

export function matches(r: LogRecord, f: LogFilter): boolean {
  if (f.since !== undefined && Date.parse(r.time) < f.since) return false;
  if (f.caller) {
    const c = f.caller;
    const exe = r.caller.exe ?? "";
    const name = exe.split("/").pop() ?? "";
    if (!(exe === c || name === c || String(r.caller.pid) === c || exe.includes(c))) return false;
  }
  return true;
}

/** Filters records for `azkeep agent log`. */
export function filterRecords(records: LogRecord[], f: LogFilter): LogRecord[] {
  return records.filter((r) => matches(r, f));
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
