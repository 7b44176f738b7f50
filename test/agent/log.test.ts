import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import {
  HEAD_FILE,
  LOG_FILE,
  ReleaseLog,
  filterRecords,
  parseLogQuery,
  readLogPage,
  verifyLogFiles,
  type LogCursor,
  type LogEntry,
  type LogRecord,
} from "../../src/agent/log.js";
import { macInput, recordTexts } from "../../src/agent/log-chain.js";
import { MAX_FRAME_BYTES } from "../../src/agent/protocol.js";

const root = mkdtempSync(join(tmpdir(), "azkeep-log-"));
after(() => rmSync(root, { recursive: true, force: true }));
const key = Buffer.alloc(32, 7);
let n = 0;

function entry(i: number, exe = "/usr/bin/terraform"): LogEntry {
  return {
    caller: { pid: 1000 + i, startTime: 5, exe, argv: [exe, "plan"], tty: "/dev/pts/1" },
    request: { kind: "token", resource: "https://management.azure.com" },
    decision: i % 2 ? "deny" : "allow",
    rule: "session-approved",
  };
}

async function writeLog(count: number): Promise<string> {
  const dir = join(root, `l${n++}`);
  mkdirSync(dir);
  const log = ReleaseLog.open(dir, key, () => Date.parse("2026-12-02T05:00:00Z") + n * 1000);
  for (let i = 1; i <= count; i++) log.append(entry(i, i === 3 ? "/usr/bin/curl" : "/usr/bin/terraform"));
  await log.flush();
  return dir;
}

function lines(dir: string): string[] {
  return readFileSync(join(dir, LOG_FILE), "utf8").trimEnd().split("\n");
}

describe("release log", () => {
  it("a written log verifies, in order, and holds no token-shaped field", async () => {
    const dir = await writeLog(5);
    const v = await verifyLogFiles(dir, key);
    assert.equal(v.ok, true, v.message);
    assert.deepEqual(
      v.records.map((r) => r.seq),
      [1, 2, 3, 4, 5],
    );
    assert.doesNotMatch(readFileSync(join(dir, LOG_FILE), "utf8"), /accessToken|eyJ/);
    // Reopening continues the chain.
    const log = ReleaseLog.open(dir, key);
    log.append(entry(6));
    await log.flush();
    assert.equal((await verifyLogFiles(dir, key)).records.length, 6);
  });

  it("an edited record is named by its seq and line", async () => {
    const dir = await writeLog(5);
    const l = lines(dir);
    l[2] = l[2]!.replace('"deny"', '"allow"').replace('"allow","rule"', '"allow","rule"');
    l[2] = l[2].replace("/usr/bin/curl", "/usr/bin/curL");
    writeFileSync(join(dir, LOG_FILE), `${l.join("\n")}\n`);
    const v = await verifyLogFiles(dir, key);
    assert.equal(v.ok, false);
    assert.deepEqual(v.problem, { kind: "edited", seq: 3, line: 3 });
    assert.match(v.message!, /record 3 \(line 3\) was changed/);
  });

  it("a removed record is named; a cut at the end is named against the head", async () => {
    const dir = await writeLog(5);
    const l = lines(dir);
    l.splice(1, 2);
    writeFileSync(join(dir, LOG_FILE), `${l.join("\n")}\n`);
    const v = await verifyLogFiles(dir, key);
    assert.deepEqual(v.problem, { kind: "removed", afterSeq: 1, beforeSeq: 4, line: 2 });
    assert.match(v.message!, /records 2–3 were removed/);

    const dir2 = await writeLog(5);
    writeFileSync(join(dir2, LOG_FILE), `${lines(dir2).slice(0, 3).join("\n")}\n`);
    const t = await verifyLogFiles(dir2, key);
    assert.deepEqual(t.problem, { kind: "truncated", lastSeq: 3, headSeq: 5 });
    assert.match(t.message!, /cut after record 3; the agent had written up to record 5/);
    // A cut in the middle of a line.
    const dir3 = await writeLog(3);
    const raw = readFileSync(join(dir3, LOG_FILE), "utf8");
    writeFileSync(join(dir3, LOG_FILE), raw.slice(0, raw.length - 40));
    assert.equal((await verifyLogFiles(dir3, key)).problem?.kind, "edited");
  });

  it("a forged record (another key), a removed head, an edited head", async () => {
    const dir = await writeLog(2);
    const forger = ReleaseLog.open(join(root, "unused-" + n), Buffer.alloc(32, 9));
    void forger;
    const v1 = await verifyLogFiles(dir, Buffer.alloc(32, 9));
    assert.equal(v1.problem?.kind, "edited");
    rmSync(join(dir, HEAD_FILE));
    assert.equal((await verifyLogFiles(dir, key)).problem?.kind, "head-missing");
    writeFileSync(join(dir, HEAD_FILE), JSON.stringify({ seq: 9, mac: "x", hmac: "y" }));
    assert.equal((await verifyLogFiles(dir, key)).problem?.kind, "head-edited");
    rmSync(join(dir, LOG_FILE));
    assert.equal((await verifyLogFiles(dir, key)).problem?.kind, "head-edited");
  });

  it("the agent notices a log rolled back with its head; a broken log is kept aside and restarted", async () => {
    const dir = await writeLog(2);
    const log = ReleaseLog.open(dir, key);
    const oldLog = readFileSync(join(dir, LOG_FILE));
    const oldHead = readFileSync(join(dir, HEAD_FILE));
    log.append(entry(3));
    await log.flush();
    writeFileSync(join(dir, LOG_FILE), oldLog);
    writeFileSync(join(dir, HEAD_FILE), oldHead);
    const v = await log.verify();
    assert.equal(v.problem?.kind, "truncated");

    writeFileSync(join(dir, LOG_FILE), "garbage\n");
    const reopened = ReleaseLog.open(dir, key);
    assert.ok(reopened.problem);
    reopened.append(entry(1));
    await reopened.flush();
    assert.ok(readdirSync(dir).some((f) => f.startsWith(`${LOG_FILE}.broken-`)));
    assert.equal((await verifyLogFiles(dir, key)).ok, true);
    assert.ok(existsSync(join(dir, HEAD_FILE)));
  });

  it("filters by caller and time", async () => {
    const dir = await writeLog(4);
    const r = (await verifyLogFiles(dir, key)).records;
    assert.deepEqual(
      filterRecords(r, { caller: "curl" }).map((x) => x.seq),
      [3],
    );
    assert.deepEqual(
      filterRecords(r, { caller: "1002" }).map((x) => x.seq),
      [2],
    );
    assert.equal(filterRecords(r, { since: Date.parse("2099-01-01") }).length, 0);
  });
});

describe("release log rotation", () => {
  const MAX = 2000;
  const t0 = Date.parse("2026-12-02T05:00:00Z");

  /** A log of `count` records written with a tiny rotation limit (a record is ~340 bytes: 5 a file). */
  async function rotated(count: number, o: { keep?: number; maxBytes?: number } = {}) {
    const dir = join(root, `r${n++}`);
    mkdirSync(dir);
    let t = t0;
    const now = () => (t += 1000);
    const log = ReleaseLog.open(dir, key, now, { maxBytes: o.maxBytes ?? MAX, keep: o.keep ?? 3 });
    for (let i = 1; i <= count; i++) {
      log.append(entry(i));
      // Several drains (one per flush), as under real load, and several records per drain.
      if (i % 3 === 0) await log.flush();
    }
    await log.flush();
    return {
      dir,
      log,
      reopen: () => ReleaseLog.open(dir, key, now, { maxBytes: o.maxBytes ?? MAX, keep: o.keep ?? 3 }),
    };
  }
  const names = (dir: string) =>
    readdirSync(dir)
      .filter((f) => /^release\.log(\.\d+)?$/.test(f))
      .sort();
  const fileLines = (dir: string, f: string) => readFileSync(join(dir, f), "utf8").trimEnd().split("\n");
  const seqs = (rs: LogRecord[]) => rs.map((r) => r.seq);
  /** The head the writer writes for record `r` (its format is the log's: docs/policy.md). */
  const headOf = (r: LogRecord) => ({
    seq: r.seq,
    mac: r.mac,
    hmac: createHmac("sha256", key).update(`azkeep release log head\n${r.seq}\n${r.mac}`).digest("base64url"),
  });
  const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

  it("rotates at the limit and keeps one verifying chain across the files, oldest first", async () => {
    const { dir, reopen } = await rotated(26);
    assert.deepEqual(names(dir), [LOG_FILE, `${LOG_FILE}.1`, `${LOG_FILE}.2`, `${LOG_FILE}.3`]);
    for (const f of names(dir)) assert.ok(statSync(join(dir, f)).size <= MAX, `${f} is within the limit`);
    const v = await verifyLogFiles(dir, key);
    assert.equal(v.ok, true, v.message);
    assert.deepEqual(v.files, [`${LOG_FILE}.3`, `${LOG_FILE}.2`, `${LOG_FILE}.1`, LOG_FILE]);
    const first = v.records[0]!.seq;
    assert.deepEqual(seqs(v.records), range(first, 26));
    // Each file after a rotation starts with the record that opens it, chained to the file before.
    const opening = JSON.parse(fileLines(dir, LOG_FILE)[0]!) as LogRecord;
    const before = JSON.parse(fileLines(dir, `${LOG_FILE}.1`).at(-1)!) as LogRecord;
    assert.equal(opening.prev, before.mac);
    assert.equal(opening.seq, before.seq + 1);
    assert.equal(opening.opens?.keep, 3);
    assert.ok(opening.opens.file >= 4);
    assert.ok(opening.opens?.prevLatest && Date.parse(opening.opens.prevLatest) >= Date.parse(before.time));
    // Older files went the way rotation sends them: a note, not a problem.
    if (first > 1) assert.match(v.notes.join(" "), new RegExp(`records before ${first} were rotated away`));
    // The agent restarted goes on in the same chain, and rotates again.
    const log = reopen();
    assert.equal(log.problem, undefined);
    for (let i = 27; i <= 34; i++) log.append(entry(i));
    await log.flush();
    const w = await log.verify();
    assert.equal(w.ok, true, w.message);
    assert.deepEqual(seqs(w.records), range(w.records[0]!.seq, 34));
    assert.ok(w.records[0]!.seq > first, "rotated again");
  });

  it("the file pushed past `keep` is deleted; the kept ones stay", async () => {
    const { dir } = await rotated(30, { keep: 2 });
    assert.deepEqual(names(dir), [LOG_FILE, `${LOG_FILE}.1`, `${LOG_FILE}.2`]);
    const v = await verifyLogFiles(dir, key);
    assert.equal(v.ok, true, v.message);
    assert.ok(v.records[0]!.seq > 1, "the oldest records went with the oldest file");
    assert.equal(v.records.at(-1)!.seq, 30);
  });

  it("a record edited in release.log.1 is named by file, record and line; later files still show", async () => {
    const { dir } = await rotated(26);
    const l = fileLines(dir, `${LOG_FILE}.1`);
    const target = JSON.parse(l[1]!) as LogRecord;
    l[1] = l[1]!.replace('"session-approved"', '"confirmed"');
    writeFileSync(join(dir, `${LOG_FILE}.1`), `${l.join("\n")}\n`);
    const v = await verifyLogFiles(dir, key);
    assert.equal(v.ok, false);
    assert.deepEqual(v.problem, { kind: "edited", seq: target.seq, line: 2, file: `${LOG_FILE}.1` });
    assert.match(v.message!, new RegExp(`release\\.log\\.1: record ${target.seq} \\(line 2\\) was changed`));
    assert.equal(v.records.at(-1)!.seq, 26, "the current file is still read and checked");
    assert.ok(!v.records.some((r) => r.seq === target.seq));
  });

  it("release.log.1 deleted is named (which file, the records before which seq), not taken for rotation", async () => {
    const { dir } = await rotated(26);
    const firstOfCurrent = (JSON.parse(fileLines(dir, LOG_FILE)[0]!) as LogRecord).seq;
    rmSync(join(dir, `${LOG_FILE}.1`));
    const v = await verifyLogFiles(dir, key);
    assert.equal(v.ok, false);
    assert.deepEqual(v.problem, {
      kind: "rotated-missing",
      files: [`${LOG_FILE}.1`],
      beforeSeq: firstOfCurrent,
      keep: 3,
    });
    assert.match(
      v.message!,
      new RegExp(`release\\.log\\.1 is missing \\(the records before ${firstOfCurrent}\\)`),
    );
    // Every rotated file gone: named the same way.
    rmSync(join(dir, `${LOG_FILE}.2`));
    rmSync(join(dir, `${LOG_FILE}.3`));
    const all = await verifyLogFiles(dir, key);
    assert.equal(all.problem?.kind, "rotated-missing");
    assert.match(all.message!, /release\.log\.3, release\.log\.2, release\.log\.1 are missing/);
  });

  it("the start of release.log cut off, with every rotated file deleted, is named (`cut`)", async () => {
    const { dir, reopen } = await rotated(28);
    for (const f of names(dir)) if (f !== LOG_FILE) rmSync(join(dir, f));
    const l = fileLines(dir, LOG_FILE);
    assert.ok(l.length >= 3);
    const cutAt = (JSON.parse(l[1]!) as LogRecord).seq;
    writeFileSync(join(dir, LOG_FILE), `${l.slice(1).join("\n")}\n`);
    const v = await verifyLogFiles(dir, key);
    assert.equal(v.ok, false);
    assert.ok(
      v.problems.some((p) => p.kind === "cut" && p.seq === cutAt),
      JSON.stringify(v.problems),
    );
    assert.match(v.message!, new RegExp(`the records before ${cutAt} were cut off`));
    // The agent names it at start too, keeps it aside and starts a new chain.
    const log = reopen();
    assert.match(log.problem ?? "", /cut off/);
    log.append(entry(1));
    await log.flush();
    assert.ok(readdirSync(dir).some((f) => f.startsWith(`${LOG_FILE}.broken-`)));
    const fresh = await verifyLogFiles(dir, key);
    assert.equal(fresh.ok, true, fresh.message);
    assert.deepEqual(seqs(fresh.records), [1]);
  });

  it("a crash between the rotation's steps leaves a log that verifies, and the agent goes on from it", async () => {
    // Renamed, nothing appended yet: release.log is gone, the head names the last record of .1.
    const a = await rotated(26);
    const lastSeq = 26;
    for (const f of [`${LOG_FILE}.3`, `${LOG_FILE}.2`, `${LOG_FILE}.1`])
      renameSync(
        join(a.dir, f),
        join(
          a.dir,
          f.replace(/\d$/, (d) => String(Number(d) + 1)),
        ),
      );
    renameSync(join(a.dir, LOG_FILE), join(a.dir, `${LOG_FILE}.1`));
    assert.ok(existsSync(join(a.dir, `${LOG_FILE}.4`)), "the file past keep is not deleted yet");
    const v = await verifyLogFiles(a.dir, key);
    assert.equal(v.ok, true, v.message);
    assert.equal(v.records.at(-1)!.seq, lastSeq);
    const log = a.reopen();
    assert.equal(log.problem, undefined);
    log.append(entry(27));
    await log.flush();
    const opening = JSON.parse(fileLines(a.dir, LOG_FILE)[0]!) as LogRecord;
    assert.equal(opening.seq, 27);
    assert.ok(opening.opens, "the new file starts with the record that opens it");
    const w = await verifyLogFiles(a.dir, key);
    assert.equal(w.ok, true, w.message);
    assert.equal(w.records.at(-1)!.seq, 27);

    // Appended to the new file, the head not written yet: the head names the new file's `prev`.
    const b = await rotated(10);
    const log2 = b.reopen();
    for (let i = 11; i <= 30; i++) log2.append(entry(i));
    await log2.flush();
    const opening2 = JSON.parse(fileLines(b.dir, LOG_FILE)[0]!) as LogRecord;
    const onlyOpening = `${fileLines(b.dir, LOG_FILE)[0]!}\n`;
    writeFileSync(join(b.dir, LOG_FILE), onlyOpening);
    // The head as it was before that append: the last record of .1.
    const lastOf1 = JSON.parse(fileLines(b.dir, `${LOG_FILE}.1`).at(-1)!) as LogRecord;
    assert.equal(lastOf1.seq, opening2.seq - 1);
    writeFileSync(join(b.dir, HEAD_FILE), JSON.stringify(headOf(lastOf1)));
    const v2 = await verifyLogFiles(b.dir, key);
    assert.equal(v2.ok, true, v2.message);
    assert.equal(b.reopen().problem, undefined);
  });

  it("a huge file at release.log is not read at start: named too large, kept aside, a new chain", async () => {
    const { dir, reopen } = await rotated(8);
    const big = join(dir, LOG_FILE);
    truncateSync(big, 2 * 1024 * 1024 * 1024); // sparse: 2 GiB, no disk used
    const rss = process.memoryUsage().rss;
    const started = performance.now();
    const log = reopen();
    assert.ok(performance.now() - started < 2_000, "not read");
    assert.ok(process.memoryUsage().rss - rss < 64 * 1024 * 1024, "not loaded into memory");
    assert.match(log.problem ?? "", /release\.log is 2147483648 bytes, more than azkeep writes/);
    log.append(entry(1));
    await log.flush();
    const aside = readdirSync(dir).filter((f) => f.startsWith(`${LOG_FILE}.broken-`));
    assert.ok(aside.some((f) => /broken-[^.]+$/.test(f) && statSync(join(dir, f)).size === 2 * 1024 ** 3));
    assert.ok(
      aside.some((f) => f.endsWith(".1")),
      "its rotated files kept aside with it",
    );
    const v = await verifyLogFiles(dir, key);
    assert.equal(v.ok, true, v.message);
    assert.deepEqual(seqs(v.records), [1]);
    // A huge rotated file planted by someone else: read page by page, named at its first line.
    writeFileSync(join(dir, `${LOG_FILE}.1`), "x".repeat(1024));
    truncateSync(join(dir, `${LOG_FILE}.1`), 1024 ** 3);
    const h = await verifyLogFiles(dir, key);
    assert.equal(h.ok, false);
    assert.ok(
      h.problems.some((p) => p.kind === "edited" && p.file === `${LOG_FILE}.1`),
      h.message,
    );
  });

  it("bytes appended by someone else do not make the writer rotate (and delete the oldest) sooner", async () => {
    const { dir, log } = await rotated(26);
    const before = names(dir).map((f) => readFileSync(join(dir, f), "utf8").slice(0, 200));
    appendFileSync(join(dir, LOG_FILE), "x".repeat(64 * 1024) + "\n");
    log.append(entry(27));
    await log.flush();
    assert.deepEqual(
      names(dir).map((f) => readFileSync(join(dir, f), "utf8").slice(0, 200)),
      before,
      "no file was rotated",
    );
    const v = await verifyLogFiles(dir, key);
    assert.equal(v.problem?.kind, "edited");
  });

  it("pages: each under the frame limit, the chain checked across pages, and `since` skips older files", async () => {
    const { dir } = await rotated(3000, { maxBytes: 256 * 1024 });
    assert.equal(names(dir).length, 4);
    const read = async (pageBytes?: number) => {
      const all: LogRecord[] = [];
      let cursor: LogCursor | undefined;
      let pages = 0;
      do {
        const p = await readLogPage(dir, key, cursor ? { page: cursor } : {}, pageBytes ? { pageBytes } : {});
        assert.equal(p.ok, true, p.problems.join(" "));
        assert.ok(JSON.stringify(p).length < MAX_FRAME_BYTES, "a page fits in one frame");
        all.push(...p.records);
        cursor = p.next;
        pages++;
      } while (cursor);
      return { all, pages };
    };
    const { all, pages } = await read();
    assert.ok(pages >= 4);
    assert.deepEqual(seqs(all), range(all[0]!.seq, 3000));
    // Small pages: many cursors inside files, the same records.
    const small = await read(10_000);
    assert.ok(small.pages > 50);
    assert.deepEqual(seqs(small.all), seqs(all));
    const whole = await verifyLogFiles(dir, key);
    assert.deepEqual(seqs(whole.records), seqs(all));
    // `since` after every record of the two oldest files: they are not read.
    const firstOf1 = JSON.parse(fileLines(dir, `${LOG_FILE}.1`)[0]!) as LogRecord;
    const since = Date.parse(firstOf1.opens!.prevLatest!) + 1;
    const s = await verifyLogFiles(dir, key, { since });
    assert.equal(s.ok, true, s.message);
    assert.deepEqual(s.files, [`${LOG_FILE}.1`, LOG_FILE]);
    assert.match(
      s.notes.join(" "),
      /release\.log\.3, release\.log\.2: only records before --since, not read/,
    );
    assert.ok(s.records.every((r) => Date.parse(r.time) >= since));
    // A cut inside a later page is still named.
    const l = fileLines(dir, LOG_FILE);
    l.splice(l.length - 5, 1);
    writeFileSync(join(dir, LOG_FILE), `${l.join("\n")}\n`);
    const cut = await verifyLogFiles(dir, key);
    assert.equal(cut.problem?.kind, "removed");
  });

  it("a log request's fields are checked", () => {
    assert.deepEqual(parseLogQuery({ op: "log" }), {});
    assert.deepEqual(parseLogQuery({ since: 5, caller: "terraform", records: false }), {
      since: 5,
      caller: "terraform",
      records: false,
    });
    assert.throws(() => parseLogQuery({ page: { file: 1, offset: -1, line: 1 } }), /page/);
    assert.throws(
      () => parseLogQuery({ page: { file: 1, offset: 0, line: 1, last: { seq: 1, mac: 5 } } }),
      /page/,
    );
    assert.throws(() => parseLogQuery({ since: "yesterday" }), /since/);
  });
});

describe("release log: a record's texts made from the caller's JSON once", () => {
  it("are the bytes JSON.stringify makes, with and without reason and opens, for one caller asking again", () => {
    const caller = { pid: 7, startTime: 5, exe: "/usr/bin/az", argv: ["az", 'x\u0000"\n'], tty: undefined };
    const bases = [
      {
        seq: 1,
        time: "2026-12-06T00:00:00.000Z",
        prev: "",
        caller,
        request: { kind: "token" },
        decision: "allow" as const,
        rule: "open",
      },
      {
        seq: 2,
        time: "2026-12-06T00:00:01.000Z",
        prev: "m1",
        caller,
        request: { kind: "token", scopes: ["a b"] },
        decision: "deny" as const,
        rule: "r",
        reason: 'why "not"',
      },
      {
        seq: 3,
        time: "2026-12-06T00:00:02.000Z",
        prev: "m2",
        caller,
        request: { kind: "write", write: "signout" },
        decision: "allow" as const,
        rule: "r",
        opens: { file: 1, keep: 3 },
      },
    ];
    for (const base of bases) {
      const { input, line } = recordTexts(base, (i) => `mac(${i.length})`);
      assert.equal(input, macInput(base));
      assert.equal(line, JSON.stringify({ ...base, mac: `mac(${input.length})` }));
    }
  });
});
