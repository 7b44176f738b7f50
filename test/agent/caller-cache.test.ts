/**
 * The agent's caller cache: a hit only for the same, unchanged process; a reused pid, a new
 * session, a new folder, executable or argv is read afresh. Uses a fake /proc that counts reads.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CallerCache, MAX_HELD_ANCESTORS, MAX_HELD_FILES } from "../../src/agent/caller.js";
import { releaseGate } from "../../src/agent/gate.js";
import type { ProcReader } from "../../src/core/procfs.js";

function stat(pid: number, comm: string, ppid: number, sid: number, tty: number, start: number) {
  return `${pid} (${comm}) S ${ppid} ${pid} ${sid} ${tty} -1 0 0 0 0 0 0 0 0 0 20 0 1 0 ${start} 1000 10\n`;
}

/**
 * A fake /proc. With `holding`, it also gives held files (`ProcReader.hold`) as the kernel does:
 * a held file belongs to the process it was opened for, and fails once that process is gone
 * (here: the pid's start time changed), even though the pid is in use again.
 */
function world(holding = false) {
  const files: Record<string, string> = {};
  const put = (
    pid: number,
    ppid: number,
    start: number,
    exe: string,
    opts: { sid?: number; cwd?: string } = {},
  ) => {
    files[`/proc/${pid}/stat`] = stat(pid, exe.split("/").pop()!, ppid, opts.sid ?? 1, 34816, start);
    files[`/proc/${pid}/exe`] = exe;
    files[`/proc/${pid}/cwd`] = opts.cwd ?? "/home/me";
    files[`/proc/${pid}/cmdline`] = `${exe}\0plan\0`;
    files[`/proc/${pid}/cgroup`] = `0::/user.slice/user-1000.slice/session-3.scope\n`;
  };
  let reads = 0;
  /** Every read, by path; a held file's as `held:PATH`. */
  const log: string[] = [];
  const get = (p: string) => {
    reads++;
    log.push(p);
    return files[p];
  };
  const reader: ProcReader = { readFile: get, readLink: get };
  const startOf = (pid: string) => / (\d+) \d+ \d+\n$/.exec(files[`/proc/${pid}/stat`] ?? "")?.[1];
  const handles = new Map<number, { path: string; pid: string; start: string | undefined }>();
  let nextHandle = 3;
  if (holding) {
    reader.hold = (path) => {
      const pid = path.split("/")[2]!;
      if (files[path] === undefined) return undefined;
      handles.set(nextHandle, { path, pid, start: startOf(pid) });
      return nextHandle++;
    };
    reader.reread = (h) => {
      reads++;
      const held = handles.get(h);
      assert.ok(held, `handle ${h} read after it was released`);
      log.push(`held:${held.path}`);
      return startOf(held.pid) === held.start ? files[held.path] : undefined;
    };
    reader.release = (h) => {
      assert.ok(handles.delete(h), `handle ${h} released twice`);
    };
  }
  put(1, 0, 1, "/sbin/init");
  put(100, 1, 50, "/usr/bin/bash");
  put(200, 100, 900, "/usr/bin/terraform");
  /** Files held open; `callers`: only those of the callers (not of their ancestors 1 and 100). */
  const open = (which: "all" | "callers" = "callers") =>
    [...handles.values()].filter((h) => which === "all" || (h.pid !== "1" && h.pid !== "100")).length;
  /** The paths of the files held open now. */
  const heldPaths = () => [...handles.values()].map((h) => h.path).sort();
  return { files, put, reader, reads: () => reads, open, heldPaths, log };
}

for (const holding of [false, true])
  describe(`agent: caller cache${holding ? ", /proc files held open" : ""}`, () => {
    it("the same unchanged process is a hit, with fewer /proc reads than a full identification", () => {
      const w = world(holding);
      const now = 1_000;
      const cache = new CallerCache(w.reader, () => now);
      const first = cache.identify(200, undefined);
      assert.equal(first.facts.known, true);
      assert.deepEqual(first.facts.ancestors, ["/usr/bin/bash", "/sbin/init"]);
      const full = w.reads();
      const again = cache.identify(200, undefined);
      assert.equal(again, first, "not served from the cache");
      const hit = w.reads() - full;
      assert.ok(hit < full / 2, `a hit read ${hit} files, a full identification ${full}`);
    });

    const changes: [string, (w: ReturnType<typeof world>) => void][] = [
      ["a reused pid (new start time)", (w) => w.put(200, 100, 901, "/usr/bin/terraform")],
      ["another executable (exec)", (w) => (w.files["/proc/200/exe"] = "/tmp/evil")],
      ["another folder (chdir)", (w) => (w.files["/proc/200/cwd"] = "/tmp")],
      ["another argv", (w) => (w.files["/proc/200/cmdline"] = "/usr/bin/terraform\0apply\0")],
      ["another session (setsid)", (w) => w.put(200, 100, 900, "/usr/bin/terraform", { sid: 7 })],
      ["another parent (reparented)", (w) => w.put(200, 1, 900, "/usr/bin/terraform")],
    ];
    for (const [name, change] of changes)
      it(`${name} is read afresh, not served from the cache`, () => {
        const w = world(holding);
        const cache = new CallerCache(w.reader, () => 1_000);
        const first = cache.identify(200, undefined);
        change(w);
        const second = cache.identify(200, undefined);
        assert.notEqual(second, first);
      });

    it("an entry older than its lifetime is read afresh; an unknown caller is never cached", () => {
      const w = world(holding);
      let now = 1_000;
      const cache = new CallerCache(w.reader, () => now, 5_000);
      const first = cache.identify(200, undefined);
      now += 5_001;
      assert.notEqual(cache.identify(200, undefined), first);
      const unknown = cache.identify(4242, undefined);
      assert.equal(unknown.facts.known, false);
      w.put(4242, 100, 77, "/usr/bin/python3");
      assert.equal(cache.identify(4242, undefined).facts.known, true);
    });

    it("an ancestor whose executable cannot be read (init, sshd) is remembered, and stays unknown", () => {
      const w = world(holding);
      delete w.files["/proc/1/exe"]; // another user's process: its exe link is not readable
      const cache = new CallerCache(w.reader, () => 1_000);
      const first = cache.identify(200, undefined);
      assert.equal(first.facts.known, true);
      assert.equal(first.parents[1]?.pid, 1);
      assert.equal(first.parents[1]?.known, false);
      w.put(300, 100, 950, "/usr/bin/az"); // a new process of the same shell
      w.log.length = 0;
      const second = cache.identify(300, undefined);
      assert.equal(second.facts.known, true);
      assert.deepEqual(second.facts.ancestors, ["/usr/bin/bash", undefined]);
      assert.equal(second.parents[1]?.known, false, "init became known from the memo");
      const initReads = w.log.filter((p) => p.startsWith("/proc/1/") || p.startsWith("held:/proc/1/"));
      assert.deepEqual(
        initReads,
        [holding ? "held:/proc/1/stat" : "/proc/1/stat", "/proc/1/exe"],
        "init was read in full again",
      );
    });

    if (holding)
      it("a new caller's own stat and cmdline are read through the held files", () => {
        const w = world(true);
        const cache = new CallerCache(w.reader, () => 1_000);
        w.log.length = 0;
        assert.equal(cache.identify(200, undefined).facts.known, true);
        const own = w.log.filter((p) => /\/proc\/200\/(stat|cmdline)$/.test(p));
        assert.ok(own.length >= 3, own.join(", "));
        assert.deepEqual(
          own.filter((p) => !p.startsWith("held:")),
          [],
          "read by path although held open",
        );
        // The re-check compares with the argv read at identification.
        assert.equal(cache.identify(200, undefined).facts.known, true);
        w.files["/proc/200/cmdline"] = "/usr/bin/terraform\0apply\0";
        const after = cache.identify(200, undefined);
        assert.deepEqual(after.facts.argv, ["/usr/bin/terraform", "apply"]);
      });

    if (holding)
      it("held files are closed when their entry goes (miss, sweep, clear), never more than two an entry", () => {
        const w = world(true);
        let now = 1_000;
        const cache = new CallerCache(w.reader, () => now, 5_000, 4);
        cache.identify(200, undefined);
        assert.equal(w.open(), 2);
        w.put(200, 100, 901, "/usr/bin/terraform"); // the pid is another process now
        cache.identify(200, undefined);
        assert.equal(w.open(), 2, "the old entry's files were not closed");
        for (let pid = 300; pid < 310; pid++) {
          w.put(pid, 100, pid, "/usr/bin/az");
          cache.identify(pid, undefined);
          assert.ok(w.open() <= 2 * 4, `${w.open()} files open for 4 entries`);
        }
        now += 5_000;
        w.put(400, 100, 400, "/usr/bin/az");
        cache.identify(400, undefined); // the sweep: every entry but this one is too old
        assert.equal(w.open(), 2);
        cache.clear();
        assert.equal(w.open("all"), 0);
      });

    if (holding)
      it(`at most ${MAX_HELD_FILES} files are held; callers beyond them are re-checked by path, and still hit`, () => {
        const w = world(true);
        const cache = new CallerCache(w.reader, () => 1_000, 5_000, 10_000);
        const n = MAX_HELD_FILES / 2 + 20;
        for (let pid = 1000; pid < 1000 + n; pid++) {
          w.put(pid, 100, pid, "/usr/bin/az");
          cache.identify(pid, undefined);
        }
        assert.equal(w.open(), MAX_HELD_FILES);
        const last = 1000 + n - 1;
        const first = cache.identify(last, undefined);
        assert.equal(
          cache.identify(last, undefined),
          first,
          "a caller without held files is not served from the cache",
        );
        w.put(last, 100, last + 1, "/usr/bin/az"); // the pid reused
        assert.notEqual(cache.identify(last, undefined), first);
        cache.clear();
        assert.equal(w.open("all"), 0);
      });

    if (holding)
      it("a new process of a known shell has its ancestors re-checked through their held stat", () => {
        const w = world(true);
        const cache = new CallerCache(w.reader, () => 1_000);
        assert.equal(cache.identify(200, undefined).facts.known, true);
        assert.equal(w.open("all") - w.open(), 2, "bash's and init's stat held");
        w.put(300, 100, 950, "/usr/bin/az");
        w.log.length = 0;
        const second = cache.identify(300, undefined);
        assert.deepEqual(second.facts.ancestors, ["/usr/bin/bash", "/sbin/init"]);
        const parentReads = w.log.filter((p) => /\/proc\/(1|100)\//.test(p));
        assert.deepEqual(parentReads, [
          "held:/proc/100/stat",
          "/proc/100/exe",
          "held:/proc/1/stat",
          "/proc/1/exe",
        ]);
      });

    if (holding)
      it("an ancestor that ended is not taken from its held stat: read afresh, its old file closed", () => {
        const w = world(true);
        const cache = new CallerCache(w.reader, () => 1_000);
        cache.identify(200, undefined);
        // bash ended; a new process has its pid (the fake's held file now fails, as the kernel's does).
        w.put(100, 1, 60, "/usr/bin/zsh");
        w.put(300, 100, 950, "/usr/bin/az");
        w.log.length = 0;
        const second = cache.identify(300, undefined);
        assert.deepEqual(second.facts.ancestors, ["/usr/bin/zsh", "/sbin/init"], "not the bash remembered");
        assert.ok(w.log.includes("/proc/100/stat"), "read by path afresh");
        assert.equal(w.open("all") - w.open(), 2, "one held file for the new pid 100, one for init");
        cache.clear();
        assert.equal(w.open("all"), 0);
      });

    if (holding)
      it("ancestors gone quiet for a minute are forgotten at the next sweep, and their files closed", () => {
        const w = world(true);
        let now = 1_000;
        const cache = new CallerCache(w.reader, () => now);
        cache.identify(200, undefined);
        assert.equal(w.open("all") - w.open(), 2, "bash's and init's stat held");
        now += 61_000;
        // A caller of another tree: the sweep (due after maxAgeMs) drops the old ancestors.
        w.put(7000, 1, 7000, "/usr/bin/zsh");
        w.put(7001, 7000, 7001, "/usr/bin/az");
        cache.identify(7001, undefined);
        assert.deepEqual(
          w.heldPaths(),
          ["/proc/1/stat", "/proc/7000/stat", "/proc/7001/cmdline", "/proc/7001/stat"],
          "bash (gone quiet) and terraform's entry were let go",
        );
        cache.clear();
        assert.equal(w.open("all"), 0);
      });

    if (holding)
      it(`at most ${MAX_HELD_ANCESTORS} ancestors' files are held; the others are re-checked by path`, () => {
        const w = world(true);
        const cache = new CallerCache(w.reader, () => 1_000, 5_000, 10_000);
        // MAX_HELD_ANCESTORS + 10 shells, each with one new process.
        for (let i = 0; i < MAX_HELD_ANCESTORS + 10; i++) {
          w.put(5000 + i, 1, 100 + i, "/usr/bin/bash");
          w.put(9000 + i, 5000 + i, 200 + i, "/usr/bin/az");
          assert.equal(cache.identify(9000 + i, undefined).facts.known, true);
        }
        const held = [...new Set(w.log.filter((p) => /^held:\/proc\/5\d+\/stat$/.test(p)))].length;
        assert.ok(held <= MAX_HELD_ANCESTORS, `${held} shells' stat held`);
        // A later process of the last shell (not held) still finds it in the memo.
        w.put(9999, 5000 + MAX_HELD_ANCESTORS + 9, 999, "/usr/bin/az");
        w.log.length = 0;
        const c = cache.identify(9999, undefined);
        assert.equal(c.facts.ancestors[0], "/usr/bin/bash");
        assert.ok(
          !w.log.some((p) => p === `/proc/${5000 + MAX_HELD_ANCESTORS + 9}/cmdline`),
          "the memo was not used",
        );
        cache.clear();
        assert.equal(w.open("all"), 0);
      });
  });

describe("agent: the gate reads a caller when its connection is accepted", () => {
  it("connected(pid) identifies it; the decision on its request then only re-checks it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "azkeep-gate-accept-"));
    try {
      const key = Buffer.alloc(32, 7).toString("base64");
      const decideReads = async (accept: boolean): Promise<number> => {
        const w = world();
        const gate = releaseGate({ configDir: dir, mode: "open", reader: w.reader });
        gate.unlocked!({ log: key, policy: key });
        assert.ok(gate.connected !== undefined, "the front's gate has no accept hook");
        if (accept) gate.connected(200);
        const before = w.reads();
        const d = await gate.decide({
          peer: { pid: 200, uid: 0, gid: 0 },
          kind: "token",
          resourceType: "arm",
        });
        assert.equal(d.allow, true);
        await gate.flushLog!();
        return w.reads() - before;
      };
      const cold = await decideReads(false);
      const warm = await decideReads(true);
      assert.ok(warm < cold / 2, `the decision read ${warm} files after accept, ${cold} without`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
