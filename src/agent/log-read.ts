/**
 * Reading the release log from disk (see `log.ts` for the rotation rule): which files there are
 * and their log file numbers, rotated files missing, and the chain checked page by page across
 * `release.log.3` … `release.log` with bounded reads (no link followed, no FIFO opened, no line
 * longer than a record read whole), so a reader never holds more than a page of a hostile file.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs";
import { open, readdir } from "node:fs/promises";
import { join } from "node:path";
import { AzkeepError } from "../core/errors.js";
import {
  ChainCheck,
  DEFAULT_KEEP,
  HEAD_FILE,
  LOG_FILE,
  ROTATED,
  describeProblem,
  fileNumber,
  headProblem,
  isRecord,
  matches,
  parseHead,
  parseRecord,
  type FileMode,
  type LogFilter,
  type LogProblem,
  type LogRecord,
  type LogVerification,
} from "./log-chain.js";
import type { LogCursor, LogPage, LogPageQuery } from "./protocol.js";

/**
 * The longest line read as a record. azkeep's records are a few KiB (caller.ts caps argv and
 * the parent chain); a longer line is not one of them.
 */
export const MAX_LINE_BYTES = 256 * 1024;
/** Bytes of log read per page (a page's records, as JSON, stay well under MAX_FRAME_BYTES). */
const PAGE_BYTES = 256 * 1024;
/** More pages than a log of `keep + 1` files of `maxBytes` has: a reader stops there. */
export const MAX_PAGES = 100_000;
/** The head file is ~150 bytes. */
export const MAX_HEAD_BYTES = 4096;
/** What a reader knows of one file of the log before reading it. */
interface LogFileInfo {
  name: string;
  /** 0: `release.log`; N: `release.log.N`. */
  suffix: number;
  size: number;
  /** Its first record, if that verifies. */
  first?: LogRecord;
  /** Its log file number: from the first record, else what its name says. */
  number?: number;
}

/** Opens a regular file of the log without following a link or blocking on a FIFO. */
export function openSyncNoFollow(path: string): number | undefined {
  try {
    const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    if (!fstatSync(fd).isFile()) {
      closeSync(fd);
      return undefined;
    }
    return fd;
  } catch {
    return undefined;
  }
}

function readSyncAt(fd: number, length: number, position: number): Buffer {
  const buf = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const n = readSync(fd, buf, got, length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return buf.subarray(0, got);
}

/** A whole small file, or `{ size }` when it is larger than `max`; undefined when absent. */
export function readSmallSync(path: string, max: number): Buffer | { size: number } | undefined {
  const fd = openSyncNoFollow(path);
  if (fd === undefined) return undefined;
  try {
    const size = fstatSync(fd).size;
    if (size > max) return { size };
    return readSyncAt(fd, size, 0);
  } finally {
    closeSync(fd);
  }
}

/** The first and last whole lines of a file (each at most MAX_LINE_BYTES), read without the rest. */
export function edgeLinesSync(path: string): { first?: string; last?: string } | undefined {
  const fd = openSyncNoFollow(path);
  if (fd === undefined) return undefined;
  try {
    const size = fstatSync(fd).size;
    const head = readSyncAt(fd, Math.min(size, MAX_LINE_BYTES), 0);
    const nl = head.indexOf(10);
    const tailStart = Math.max(0, size - MAX_LINE_BYTES);
    const tail = readSyncAt(fd, size - tailStart, tailStart);
    const end = tail.length > 0 && tail[tail.length - 1] === 10 ? tail.length - 1 : -1;
    const prevNl = end > 0 ? tail.lastIndexOf(10, end - 1) : -1;
    return {
      ...(nl >= 0 ? { first: head.subarray(0, nl).toString("utf8") } : {}),
      ...(end >= 0 && (prevNl >= 0 || tailStart === 0)
        ? { last: tail.subarray(prevNl + 1, end).toString("utf8") }
        : {}),
    };
  } finally {
    closeSync(fd);
  }
}

/** Reads up to `length` bytes at `position` of a regular file (no link, no FIFO); undefined when absent. */
async function readAt(
  path: string,
  length: number,
  position: number,
): Promise<{ bytes: Buffer; size: number } | undefined> {
  let fh;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) return undefined;
    const want = Math.max(0, Math.min(length, st.size - position));
    const buf = Buffer.alloc(want);
    let got = 0;
    while (got < want) {
      const { bytesRead } = await fh.read(buf, got, want - got, position + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return { bytes: buf.subarray(0, got), size: st.size };
  } finally {
    await fh.close();
  }
}

/** The first line of a file (at most MAX_LINE_BYTES), without reading more of it. */
async function firstLine(path: string): Promise<{ text?: string; size: number } | undefined> {
  let r = await readAt(path, 4096, 0);
  if (r && r.bytes.indexOf(10) < 0 && r.size > r.bytes.length) r = await readAt(path, MAX_LINE_BYTES, 0);
  if (!r) return undefined;
  const nl = r.bytes.indexOf(10);
  return nl >= 0 ? { text: r.bytes.subarray(0, nl).toString("utf8"), size: r.size } : { size: r.size };
}

/** The files of the log in `dir`: rotated ones (oldest first, by name), then `release.log`. */
async function logFiles(dir: string, key: Uint8Array): Promise<LogFileInfo[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const rotated = names
    .map((n) => ROTATED.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ name: m[0], suffix: Number(m[1]) }))
    .sort((a, b) => b.suffix - a.suffix);
  const out: LogFileInfo[] = [];
  for (const f of [...rotated, { name: LOG_FILE, suffix: 0 }]) {
    const l = await firstLine(join(dir, f.name));
    if (!l || (f.suffix === 0 && l.size === 0)) continue;
    const first = l.text !== undefined ? parseRecord(l.text, key) : undefined;
    out.push({ ...f, size: l.size, ...(isRecord(first) ? { first } : {}) });
  }
  // Numbers: from the first record; a file without a readable one is placed by its name.
  const current = out.find((f) => f.suffix === 0);
  const newest = out.filter((f) => f.suffix > 0).at(-1);
  const top = current ? fileNumber(current.first) : (fileNumber(newest?.first) ?? newest?.suffix ?? 0) + 1;
  for (const f of out) {
    const n = fileNumber(f.first);
    if (n !== undefined) f.number = n;
    else if (top !== undefined) f.number = f.suffix === 0 ? top : top - f.suffix;
  }
  return out;
}

/** Rotated files azkeep keeps but that are gone, named as the rule in the header says. */
function missingFiles(files: LogFileInfo[], fallbackKeep: number): LogProblem[] {
  const current = files.find((f) => f.suffix === 0);
  const newest = current ?? files.at(-1);
  const top = current?.number ?? (newest?.number !== undefined ? newest.number + 1 : undefined);
  if (top === undefined || top === 0) return [];
  const keep = current?.first?.opens?.keep ?? newest?.first?.opens?.keep ?? fallbackKeep;
  const present = new Set(files.map((f) => f.number));
  const problems: LogProblem[] = [];
  let run: string[] = [];
  for (let n = Math.max(0, top - keep); n < top; n++) {
    if (!present.has(n)) run.push(`${LOG_FILE}.${top - n}`);
    else if (run.length) {
      const next = files.find((f) => f.number === n);
      problems.push({ kind: "rotated-missing", files: run, beforeSeq: next?.first?.seq ?? 0, keep });
      run = [];
    }
  }
  if (run.length) {
    const next = current ?? files.find((f) => (f.number ?? -1) >= top);
    problems.push({ kind: "rotated-missing", files: run, beforeSeq: next?.first?.seq ?? 0, keep });
  }
  return problems;
}

/** The MAC of record `seq` in `path` (a head behind the log, looked up again), if it is there. */
async function macOf(path: string, seq: number, key: Uint8Array): Promise<string | undefined> {
  let offset = 0;
  for (;;) {
    const r = await readAt(path, PAGE_BYTES, offset);
    if (!r || r.bytes.length === 0) return undefined;
    const end = r.bytes.lastIndexOf(10);
    if (end < 0) return undefined;
    for (const line of r.bytes.subarray(0, end).toString("utf8").split("\n")) {
      const rec = parseRecord(line, key);
      if (isRecord(rec) && rec.seq === seq) return rec.mac;
    }
    offset += end + 1;
  }
}

export interface ReadPageOptions {
  /** The keep count to assume where no `opens` record says it. */
  keep?: number;
  /** Bytes of log read per page (at most; a file is read on to its next line end). */
  pageBytes?: number;
  /** The last seq the reader knows was written (the running agent's own head). */
  knownSeq?: number;
}

/** A page, and its problems as values (for `LogVerification`; the wire carries the words). */
export type PageResult = LogPage<LogRecord> & { kinds: LogProblem[] };

/**
 * One page of the log in `dir`, oldest first: the records of about `pageBytes` of it that pass
 * the query's filter (none with `records: false`), the problems and notes found on the way, and
 * the cursor to pass back for the next page (absent on the last). Files are known by their log
 * file number, not their name, so a rotation between two pages does not lose the reader's
 * place. The first page names missing rotated files; the last checks the head.
 */
export async function readLogPage(
  dir: string,
  key: Uint8Array,
  q: LogPageQuery = {},
  o: ReadPageOptions = {},
): Promise<PageResult> {
  const filter: LogFilter = { since: q.since, caller: q.caller };
  const chain = new ChainCheck(key, q.page?.last, (r) => q.records !== false && matches(r, filter));
  const files = await logFiles(dir, key);
  const read: string[] = [];
  const pageBytes = Math.max(1, o.pageBytes ?? PAGE_BYTES);
  let idx: number;
  let offset = 0;
  let line = 1;
  let mode: FileMode;
  if (q.page) {
    const at = q.page;
    idx = files.findIndex((f) => f.number === at.file);
    if (idx >= 0) {
      offset = at.offset;
      line = at.line;
      mode = at.last ? "follow" : "gap";
    } else {
      // Rotated away between two pages (keep + 1 rotations): go on with what is left.
      idx = files.findIndex((f) => (f.number ?? -1) > at.file);
      if (idx < 0) idx = files.length;
      chain.notes.push(
        "The log rotated past the place being read; run `azkeep agent log` again to read it all.",
      );
      mode = "gap";
    }
  } else {
    chain.problems.push(...missingFiles(files, o.keep ?? DEFAULT_KEEP));
    idx = 0;
    mode = "start";
    // `since`: a file whose successor says that all its records are older is not read.
    if (q.since !== undefined) {
      const skipped: string[] = [];
      while (idx < files.length - 1) {
        const next = files[idx + 1]!;
        const latest = next.first?.opens?.prevLatest;
        if (next.number !== (files[idx]!.number ?? NaN) + 1 || !latest || Date.parse(latest) >= q.since)
          break;
        skipped.push(files[idx]!.name);
        idx++;
      }
      if (skipped.length) {
        chain.notes.push(`${skipped.join(", ")}: only records before --since, not read.`);
        mode = "skipped";
      }
    }
  }
  const page = (next?: LogCursor): PageResult => ({
    ok: chain.problems.length === 0,
    records: chain.records,
    problems: chain.problems.map((p) => describeProblem(p)),
    kinds: chain.problems,
    notes: chain.notes,
    files: read,
    checked: chain.checked,
    ...(next ? { next } : {}),
  });
  /** The end of the chain: the head names its last record. */
  const done = async (lastOk: boolean): Promise<PageResult> => {
    if (!lastOk) return page();
    const raw = await readAt(join(dir, HEAD_FILE), MAX_HEAD_BYTES + 1, 0);
    const headText = raw ? (raw.size <= MAX_HEAD_BYTES ? raw.bytes.toString("utf8") : "") : undefined;
    const head = headText ? parseHead(headText, key) : undefined;
    const current = files.find((f) => f.suffix === 0);
    // A head behind the log (a crash between an append and the head write) names a record
    // that may be on an earlier page: look it up again, only then.
    const behind =
      head && chain.last && head.seq < chain.last.seq && current?.first && head.seq >= current.first.seq
        ? await macOf(join(dir, LOG_FILE), head.seq, key)
        : undefined;
    const p = headProblem(headText, key, chain.last, () => behind, current?.first, o.knownSeq);
    if (p) chain.problems.push(p);
    return page();
  };

  let budget = pageBytes;
  let ok = true;
  while (idx < files.length) {
    const f = files[idx]!;
    if (offset === 0) chain.beginFile(f.name, mode);
    else chain.resume(f.name);
    if (!read.includes(f.name)) read.push(f.name);
    const path = join(dir, f.name);
    let r = await readAt(path, Math.min(budget, MAX_LINE_BYTES), offset);
    // What is left of the page is shorter than the next record: read that one record whole.
    if (r && r.bytes.indexOf(10) < 0 && offset + r.bytes.length < r.size && r.bytes.length < MAX_LINE_BYTES) {
      r = await readAt(path, MAX_LINE_BYTES, offset);
      const nl = r ? r.bytes.indexOf(10) : -1;
      if (r && nl >= 0) r = { bytes: r.bytes.subarray(0, nl + 1), size: r.size };
    }
    ok = true;
    let eof = true;
    if (!r) {
      chain.notes.push(`${f.name} went away while it was read.`);
      ok = false;
    } else if (offset === 0 && r.size === 0) {
      chain.problems.push({ kind: "emptied", file: f.name });
      ok = false;
    } else {
      eof = offset + r.bytes.length >= r.size;
      const used = r.bytes.lastIndexOf(10) + 1;
      if (used > 0)
        for (const text of r.bytes
          .subarray(0, used - 1)
          .toString("utf8")
          .split("\n")) {
          if (!chain.line(text, line++)) {
            ok = false;
            break;
          }
        }
      // Bytes after the last line end: a cut inside the file's last line, or a line longer
      // than any record.
      if (ok && used < r.bytes.length && (eof || used === 0)) {
        chain.brokenLine(line);
        ok = false;
      }
      budget -= Math.max(used, 1);
      if (ok && !eof) {
        offset += used;
        return page({ file: f.number ?? -1, offset, line, ...(chain.last ? { last: chain.last } : {}) });
      }
    }
    // This file is done: read to its end, or not trusted past a problem.
    if (f.suffix === 0) return done(ok);
    const next = files[idx + 1];
    mode = ok && chain.last && next && next.number === (f.number ?? NaN) + 1 ? "follow" : "gap";
    idx++;
    offset = 0;
    line = 1;
    if (budget <= 0 && next)
      return page({
        file: next.number ?? -1,
        offset: 0,
        line: 1,
        ...(mode === "follow" && chain.last ? { last: chain.last } : {}),
      });
  }
  return done(ok);
}

/** Reads and verifies the whole log in `dir` (every file, page after page). */
export async function verifyLogFiles(
  dir: string,
  key: Uint8Array,
  o: ReadPageOptions & { since?: number } = {},
): Promise<LogVerification> {
  return collectPages((page) =>
    readLogPage(
      dir,
      key,
      { ...(page ? { page } : {}), ...(o.since !== undefined ? { since: o.since } : {}) },
      o,
    ),
  );
}

export async function collectPages(
  next: (page: LogCursor | undefined) => Promise<PageResult>,
): Promise<LogVerification> {
  const records: LogRecord[] = [];
  const problems: LogProblem[] = [];
  const notes: string[] = [];
  const files: string[] = [];
  let checked = 0;
  let cursor: LogCursor | undefined;
  for (let pages = 0; pages < MAX_PAGES; pages++) {
    const p = await next(cursor);
    records.push(...p.records);
    problems.push(...p.kinds);
    notes.push(...p.notes.filter((n) => !notes.includes(n)));
    files.push(...p.files.filter((f) => !files.includes(f)));
    checked += p.checked;
    if (!p.next) break;
    cursor = p.next;
  }
  return {
    ok: problems.length === 0,
    records,
    problems,
    ...(problems[0] ? { problem: problems[0] } : {}),
    ...(problems.length ? { message: problems.map((p) => describeProblem(p)).join(" ") } : {}),
    notes,
    files,
    checked,
  };
}

const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/**
 * The `log` request's fields, checked (they come from any program of the uid; a cursor it made
 * up only changes the answer it gets, but must not make the agent read outside the log).
 */
export function parseLogQuery(msg: Record<string, unknown>): LogPageQuery {
  const bad = (what: string) => new AzkeepError("bad_input", `The log request's ${what} is not valid.`);
  const q: LogPageQuery = {};
  if (msg.page !== undefined && msg.page !== null) {
    const p = msg.page as Record<string, unknown>;
    const last = p.last as Record<string, unknown> | undefined;
    if (
      typeof p !== "object" ||
      !Number.isSafeInteger(p.file) ||
      !isCount(p.offset) ||
      !isCount(p.line) ||
      p.line < 1 ||
      (last !== undefined &&
        (typeof last !== "object" ||
          last === null ||
          !isCount(last.seq) ||
          typeof last.mac !== "string" ||
          last.mac.length > 64))
    )
      throw bad("page");
    q.page = {
      file: p.file as number,
      offset: p.offset,
      line: p.line,
      ...(last ? { last: { seq: last.seq as number, mac: last.mac as string } } : {}),
    };
  }
  if (msg.since !== undefined) {
    if (typeof msg.since !== "number" || !Number.isFinite(msg.since)) throw bad("since");
    q.since = msg.since;
  }
  if (msg.caller !== undefined) {
    if (typeof msg.caller !== "string" || msg.caller.length > 4096) throw bad("caller");
    q.caller = msg.caller;
  }
  if (msg.records !== undefined) {
    if (typeof msg.records !== "boolean") throw bad("records");
    q.records = msg.records;
  }
  return q;
}
