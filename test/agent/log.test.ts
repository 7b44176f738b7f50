import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import {
  HEAD_FILE,
  LOG_FILE,
  ReleaseLog,
  filterRecords,
  verifyLogFiles,
  type LogEntry,
} from "../../src/agent/log.js";

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
  const { mkdirSync } = await import("node:fs");
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
    const v = verifyLogFiles(dir, key);
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
    assert.equal(verifyLogFiles(dir, key).records.length, 6);
  });

  it("an edited record is named by its seq and line", async () => {
    const dir = await writeLog(5);
    const l = lines(dir);
    l[2] = l[2]!.replace('"deny"', '"allow"').replace('"allow","rule"', '"allow","rule"');
    l[2] = l[2].replace("/usr/bin/curl", "/usr/bin/curL");
    writeFileSync(join(dir, LOG_FILE), `${l.join("\n")}\n`);
    const v = verifyLogFiles(dir, key);
    assert.equal(v.ok, false);
    assert.deepEqual(v.problem, { kind: "edited", seq: 3, line: 3 });
    assert.match(v.message!, /record 3 \(line 3\) was changed/);
  });

  it("a removed record is named; a cut at the end is named against the head", async () => {
    const dir = await writeLog(5);
    const l = lines(dir);
    l.splice(1, 2);
    writeFileSync(join(dir, LOG_FILE), `${l.join("\n")}\n`);
    const v = verifyLogFiles(dir, key);
    assert.deepEqual(v.problem, { kind: "removed", afterSeq: 1, beforeSeq: 4, line: 2 });
    assert.match(v.message!, /records 2–3 were removed/);

    const dir2 = await writeLog(5);
    writeFileSync(join(dir2, LOG_FILE), `${lines(dir2).slice(0, 3).join("\n")}\n`);
    const t = verifyLogFiles(dir2, key);
    assert.deepEqual(t.problem, { kind: "truncated", lastSeq: 3, headSeq: 5 });
    assert.match(t.message!, /cut after record 3; the agent had written up to record 5/);
    // A cut in the middle of a line.
    const dir3 = await writeLog(3);
    const raw = readFileSync(join(dir3, LOG_FILE), "utf8");
    writeFileSync(join(dir3, LOG_FILE), raw.slice(0, raw.length - 40));
    assert.equal(verifyLogFiles(dir3, key).problem?.kind, "edited");
  });

  it("a forged record (another key), a removed head, an edited head", async () => {
    const dir = await writeLog(2);
    const forger = ReleaseLog.open(join(root, "unused-" + n), Buffer.alloc(32, 9));
    void forger;
    const v1 = verifyLogFiles(dir, Buffer.alloc(32, 9));
    assert.equal(v1.problem?.kind, "edited");
    rmSync(join(dir, HEAD_FILE));
    assert.equal(verifyLogFiles(dir, key).problem?.kind, "head-missing");
    writeFileSync(join(dir, HEAD_FILE), JSON.stringify({ seq: 9, mac: "x", hmac: "y" }));
    assert.equal(verifyLogFiles(dir, key).problem?.kind, "head-edited");
    rmSync(join(dir, LOG_FILE));
    assert.equal(verifyLogFiles(dir, key).problem?.kind, "head-edited");
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
    assert.equal(verifyLogFiles(dir, key).ok, true);
    assert.ok(existsSync(join(dir, HEAD_FILE)));
  });

  it("filters by caller and time", async () => {
    const dir = await writeLog(4);
    const r = verifyLogFiles(dir, key).records;
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
