/**
 * The release log on its own thread (`dist/agent/log-thread.js`, started by the front): the same
 * records, chain and pages as in one thread; a thread that fails hands over to this one without
 * breaking the chain; a log opened after a lock waits for the previous one's last write.
 * Needs the build (`npm test` builds first).
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { LOG_FILE, verifyLogFiles, type LogEntry } from "../../src/agent/log.js";
import { WorkerReleaseLog } from "../../src/agent/log-worker.js";

const THREAD = fileURLToPath(new URL("../../dist/agent/log-thread.js", import.meta.url));
const root = mkdtempSync(join(tmpdir(), "azkeep-log-thread-"));
after(() => rmSync(root, { recursive: true, force: true }));
const key = Buffer.alloc(32, 9);
let n = 0;

function entry(i: number): LogEntry {
  return {
    caller: { pid: 2000 + i, startTime: 5, exe: "/usr/bin/terraform", argv: ["terraform", "plan"] },
    request: { kind: "token", resourceType: "arm" },
    decision: "allow",
    rule: "open",
  };
}

function freshDir(): string {
  const dir = join(root, `t${n++}`);
  mkdirSync(dir);
  return dir;
}

describe(
  "release log on its own thread",
  { skip: !existsSync(THREAD) && "run `npm run build` first" },
  () => {
    it("records appended here are written there, in order, the chain verifying; pages read through the thread", async () => {
      const dir = freshDir();
      const log = new WorkerReleaseLog(THREAD, dir, key, Date.now, {});
      for (let i = 1; i <= 50; i++) log.append(entry(i));
      const page = await log.readPage({});
      assert.equal(page.ok, true);
      assert.deepEqual(
        page.records.map((r) => r.caller.pid),
        Array.from({ length: 50 }, (_, i) => 2001 + i),
      );
      for (let i = 51; i <= 60; i++) log.append(entry(i));
      await log.close();
      const v = await verifyLogFiles(dir, key);
      assert.equal(v.ok, true, v.message);
      assert.equal(v.records.length, 60);
    });

    it("a thread that dies: the log goes on in this thread, the chain unbroken", async () => {
      const dir = freshDir();
      const log = new WorkerReleaseLog(THREAD, dir, key, Date.now, {});
      for (let i = 1; i <= 5; i++) log.append(entry(i));
      await log.flush();
      // The thread ends as if it had crashed (not through close()).
      await (log as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
      for (let i = 6; i <= 10; i++) log.append(entry(i));
      await log.flush();
      const v = await verifyLogFiles(dir, key);
      assert.equal(v.ok, true, v.message);
      assert.deepEqual(
        v.records.map((r) => r.seq),
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
      );
    });

    it("a log opened while the previous one closes (lock, then unlock) starts after its last write", async () => {
      const dir = freshDir();
      const first = new WorkerReleaseLog(THREAD, dir, key, Date.now, {});
      for (let i = 1; i <= 20_000; i++) first.append(entry(i));
      const closing = first.close();
      const second = new WorkerReleaseLog(THREAD, dir, key, Date.now, {}, closing);
      for (let i = 20_001; i <= 20_010; i++) second.append(entry(i));
      await second.close();
      const v = await verifyLogFiles(dir, key);
      assert.equal(v.ok, true, v.message);
      assert.equal(v.records.length, 20_010);
      assert.equal(readFileSync(join(dir, LOG_FILE), "utf8").trimEnd().split("\n").length, 20_010);
    });
  },
);
