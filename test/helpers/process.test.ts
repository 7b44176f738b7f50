/**
 * `runConcurrently`: many processes at once, started by a launcher so that this process's event
 * loop (which serves the emulator in end-to-end tests) is not held by 50 blocking `spawn()`s.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { runConcurrently } from "./process.js";

describe("runConcurrently", { timeout: 120_000 }, () => {
  it("starts the processes from another process; this event loop keeps running meanwhile", async () => {
    let last = Date.now();
    let longestGapMs = 0;
    const tick = setInterval(() => {
      const now = Date.now();
      longestGapMs = Math.max(longestGapMs, now - last);
      last = now;
    }, 10);
    try {
      const results = await runConcurrently(50, process.execPath, [
        "-e",
        "process.stdout.write(String(process.ppid))",
      ]);
      assert.equal(results.length, 50);
      for (const r of results) assert.equal(r.code, 0, r.stderr);
      const parents = new Set(results.map((r) => Number(r.stdout)));
      assert.equal(parents.size, 1, "one launcher started them all");
      assert.ok(!parents.has(process.pid), "not started by this process");
    } finally {
      clearInterval(tick);
    }
    // Spawning 50 node processes from here blocks this loop for seconds (2.7 s on an idle
    // 2-core machine, 9 s under load); the launcher leaves it free.
    assert.ok(longestGapMs < 1_500, `this event loop stalled for ${longestGapMs} ms`);
  });

  it("passes the environment exactly and kills a process that outlives its timeout", async () => {
    const [slow, fast] = await Promise.all([
      runConcurrently(1, process.execPath, ["-e", "setTimeout(() => {}, 60_000)"], { timeoutMs: 500 }),
      runConcurrently(2, process.execPath, ["-e", "process.stdout.write(process.env.ONLY ?? '-')"], {
        env: { ONLY: "this", UNSET: undefined },
      }),
    ]);
    assert.equal(slow[0]!.signal, "SIGKILL");
    assert.deepEqual(
      fast.map((r) => [r.code, r.stdout]),
      [
        [0, "this"],
        [0, "this"],
      ],
    );
  });
});
