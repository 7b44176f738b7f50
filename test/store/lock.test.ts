import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { createNodeContext } from "../../src/core/context.js";
import type { AzkeepError } from "../../src/core/errors.js";
import { withLock } from "../../src/core/store/lock.js";

const { clock } = createNodeContext({ env: {} });
const dir = mkdtempSync(join(tmpdir(), "azkeep-lock-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", "0"]);
  return r.pid;
}

describe("store lock", () => {
  it("excludes: 30 concurrent increments in one process lose nothing", async () => {
    const path = join(dir, "a.lock");
    let counter = 0;
    let inside = 0;
    await Promise.all(
      Array.from({ length: 30 }, () =>
        withLock(
          path,
          async () => {
            inside++;
            assert.equal(inside, 1, "two holders at once");
            const v = counter;
            await clock.sleep(1);
            counter = v + 1;
            inside--;
          },
          { clock },
        ),
      ),
    );
    assert.equal(counter, 30);
    assert.equal(existsSync(path), false, "lock left behind");
    assert.deepEqual(readdirSync(dir), [], "attempt files left behind");
  });

  it("recovers a lock left by a dead process at once", async () => {
    const path = join(dir, "b.lock");
    writeFileSync(path, JSON.stringify({ pid: deadPid(), host: hostname(), token: "dead", since: 0 }));
    const t0 = Date.now();
    const v = await withLock(path, async () => 42, { clock, timeoutMs: 5000 });
    assert.equal(v, 42);
    assert.ok(Date.now() - t0 < 2000, "took too long to break a dead owner's lock");
  });

  it("recovers a lock with no heartbeat for staleMs even if the pid looks alive", async () => {
    const path = join(dir, "c.lock");
    writeFileSync(path, JSON.stringify({ pid: process.ppid, host: hostname(), token: "old", since: 0 }));
    const old = (Date.now() - 60_000) / 1000;
    utimesSync(path, old, old);
    assert.equal(await withLock(path, async () => "ok", { clock, staleMs: 30_000, timeoutMs: 5000 }), "ok");
  });

  it("waits for a live holder and times out with one clear error naming the lock", async () => {
    const path = join(dir, "d.lock");
    writeFileSync(path, JSON.stringify({ pid: process.ppid, host: hostname(), token: "live", since: 0 }));
    await assert.rejects(
      withLock(path, async () => "never", { clock, timeoutMs: 300 }),
      (e: AzkeepError) => e.code === "config" && e.message.includes(path) && /rm /.test(e.hint ?? ""),
    );
    assert.equal(existsSync(path), true, "a live holder's lock must not be removed");
    rmSync(path);
  });

  it("the holder's heartbeat keeps a long hold from being broken", async () => {
    const path = join(dir, "e.lock");
    let second = false;
    const first = withLock(
      path,
      async () => {
        await clock.sleep(900);
        assert.equal(second, false, "lock broken while held");
      },
      { clock, staleMs: 400, heartbeatMs: 100 },
    );
    await clock.sleep(50);
    const other = withLock(path, async () => void (second = true), { clock, staleMs: 400, timeoutMs: 5000 });
    await Promise.all([first, other]);
    assert.equal(second, true);
  });

  it("release never removes a lock that is no longer ours", async () => {
    const path = join(dir, "f.lock");
    await withLock(
      path,
      async () => {
        // Someone broke our lock (we looked stale) and took it.
        writeFileSync(
          path,
          JSON.stringify({ pid: process.ppid, host: hostname(), token: "theirs", since: 0 }),
        );
      },
      { clock },
    );
    assert.equal(existsSync(path), true);
    rmSync(path);
  });
});
