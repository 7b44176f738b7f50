import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { copyFileSync, mkdtempSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import {
  describeProcess,
  isDescendantOf,
  isSameProcess,
  nodeProcReader,
  parseCgroup,
  parseStat,
  readAncestry,
  readProcess,
  ttyName,
  type ProcReader,
} from "../../src/core/procfs.js";
import { requireTool } from "../helpers/require-tool.js";

const dir = mkdtempSync(join(tmpdir(), "azkeep-procfs-"));
const children: ChildProcess[] = [];
after(() => {
  for (const c of children)
    try {
      process.kill(-c.pid!, "SIGKILL");
    } catch {
      /* gone */
    }
  rmSync(dir, { recursive: true, force: true });
});

function stat(pid: number, comm: string, ppid: number, sid: number, tty: number, start: number) {
  // Fields 3.. : state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
  // utime stime cutime cstime priority nice num_threads itrealvalue starttime ...
  return `${pid} (${comm}) S ${ppid} ${pid} ${sid} ${tty} -1 0 0 0 0 0 0 0 0 0 20 0 1 0 ${start} 1000 10\n`;
}

/** A fake /proc: files by path; each value may be a function (called per read). */
function fakeProc(files: Record<string, string | (() => string | undefined)>): ProcReader {
  const get = (p: string) => {
    const v = files[p];
    return typeof v === "function" ? v() : v;
  };
  return { readFile: get, readLink: get };
}

function fakeProcess(pid: number, ppid: number, start: number, exe: string, sid = 1, tty = 0) {
  return {
    [`/proc/${pid}/stat`]: stat(pid, exe.split("/").pop()!, ppid, sid, tty, start),
    [`/proc/${pid}/exe`]: exe,
    [`/proc/${pid}/cmdline`]: `${exe}\0--flag\0`,
    [`/proc/${pid}/cgroup`]: `0::/user.slice/user-1000.slice/session-3.scope\n`,
  };
}

function spawnKept(cmd: string, args: string[], detached = true): ChildProcess {
  const c = spawn(cmd, args, { stdio: "ignore", detached });
  children.push(c);
  return c;
}

async function waitFor<T>(f: () => T | undefined, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("procfs: parsing", () => {
  it("stat: a comm with spaces and parentheses does not shift the fields", () => {
    const s = parseStat(stat(42, "a) (b c", 7, 3, 34816, 123456));
    assert.deepEqual(
      { pid: s?.pid, comm: s?.comm, ppid: s?.ppid, sid: s?.sid, tty: s?.ttyNr, st: s?.startTime },
      { pid: 42, comm: "a) (b c", ppid: 7, sid: 3, tty: 34816, st: 123456 },
    );
  });

  it("stat: garbage gives undefined", () => {
    for (const t of ["", "12", "12 (x", "x (y) S a b c"]) assert.equal(parseStat(t), undefined, t);
  });

  it("tty numbers as ps names them", () => {
    const table: [number, string | undefined][] = [
      [0, undefined],
      [(136 << 8) | 5, "/dev/pts/5"],
      [(137 << 8) | 2, "/dev/pts/258"],
      [(136 << 8) | (1 << 20), "/dev/pts/256"], // minor's high bits
      [(4 << 8) | 1, "/dev/tty1"],
      [(4 << 8) | 64, "/dev/ttyS0"],
    ];
    for (const [nr, name] of table) assert.equal(ttyName(nr), name, String(nr));
  });

  it("cgroup: unit and container from v2, v1 and hybrid layouts", () => {
    const table: [string, string | undefined, string | undefined][] = [
      ["0::/user.slice/user-1000.slice/session-3.scope\n", "session-3.scope", undefined],
      ["0::/system.slice/cron.service\n", "cron.service", undefined],
      [
        "0::/user.slice/user-1000.slice/user@1000.service/app.slice/app-gnome-code-1234.scope\n",
        "app-gnome-code-1234.scope",
        undefined,
      ],
      [
        `0::/system.slice/docker-${"ab".repeat(32)}.scope\n`,
        `docker-${"ab".repeat(32)}.scope`,
        "ab".repeat(32),
      ],
      [
        "12:pids:/docker/0123456789abcdef\n1:name=systemd:/docker/0123456789abcdef\n0::/\n",
        undefined,
        "0123456789abcdef",
      ],
      ["1:name=systemd:/system.slice/ssh.service\n0::/\n", "ssh.service", undefined],
      ["0::/\n", undefined, undefined],
    ];
    for (const [text, unit, container] of table) {
      const c = parseCgroup(text);
      assert.equal(c.systemdUnit, unit, text);
      assert.equal(c.container, container, text);
    }
    assert.equal(parseCgroup(undefined).path, undefined);
  });

  it("describeProcess escapes control characters a caller put into its argv", () => {
    const p = readProcess(
      9,
      fakeProc({
        ...fakeProcess(9, 1, 5, "/usr/bin/evil"),
        "/proc/9/cmdline": "evil\0\u001b[2J\rApproved\0",
      }),
    );
    const line = describeProcess(p);
    assert.equal(line, "pid 9 /usr/bin/evil \\x1b[2J\\x0dApproved");
  });
});

describe("procfs: a fake /proc", () => {
  it("a pid reused between the reads is unknown, never a mix of two processes", () => {
    let n = 0;
    const base = fakeProcess(50, 1, 100, "/usr/bin/trusted");
    const reader = fakeProc({
      ...base,
      "/proc/50/stat": () => (n++ === 0 ? base["/proc/50/stat"] : stat(50, "evil", 1, 1, 0, 999)),
    });
    const p = readProcess(50, reader);
    assert.equal(p.known, false);
    assert.equal(p.exe, undefined);
  });

  it("unreadable exe (another uid, kernel thread) is unknown", () => {
    const files: Record<string, string> = { ...fakeProcess(60, 1, 100, "/usr/bin/x") };
    delete files["/proc/60/exe"];
    assert.equal(readProcess(60, fakeProc(files)).known, false);
    assert.equal(readProcess(61, fakeProc(files)).known, false); // no such pid
    assert.equal(readProcess(-1, fakeProc(files)).known, false);
    assert.equal(readProcess(Number.NaN, fakeProc(files)).known, false);
  });

  it("ancestry walks to init, marks the session leader, and stops at a younger 'parent'", () => {
    const reader = fakeProc({
      ...fakeProcess(1, 0, 1, "/usr/lib/systemd/systemd"),
      ...fakeProcess(10, 1, 50, "/usr/sbin/sshd", 10),
      ...fakeProcess(20, 10, 60, "/usr/bin/bash", 20, 34816),
      ...fakeProcess(30, 20, 70, "/usr/bin/terraform", 20, 34816),
    });
    const a = readAncestry(30, reader);
    assert.deepEqual(
      a.chain.map((p) => p.pid),
      [30, 20, 10, 1],
    );
    assert.equal(a.sessionLeader, 1);
    assert.equal(a.complete, true);
    assert.equal(a.chain[0]!.tty, "/dev/pts/0");
    assert.equal(a.chain[0]!.cgroup.systemdUnit, "session-3.scope");

    // The parent exited; its pid now belongs to a process that started after the child.
    const reused = fakeProc({
      ...fakeProcess(1, 0, 1, "/usr/lib/systemd/systemd"),
      ...fakeProcess(20, 1, 900, "/usr/bin/bash", 20),
      ...fakeProcess(30, 20, 70, "/usr/bin/terraform", 20),
    });
    const b = readAncestry(30, reused);
    assert.deepEqual(
      b.chain.map((p) => p.pid),
      [30],
    );
    assert.equal(b.complete, false);
    assert.equal(isDescendantOf(30, 20, reused), false);
    assert.equal(isDescendantOf(30, 20, reader), true);
    assert.equal(isDescendantOf(30, 20, reader, 60), true);
    assert.equal(isDescendantOf(30, 20, reader, 61), false);
    assert.equal(isDescendantOf(30, 10, reader), true);
    assert.equal(isDescendantOf(20, 30, reader), false);
  });

  it("a ppid loop in a broken /proc is bounded", () => {
    const reader = fakeProc({
      ...fakeProcess(70, 71, 5, "/a"),
      ...fakeProcess(71, 70, 5, "/b"),
    });
    const a = readAncestry(70, reader);
    assert.equal(a.complete, false);
    assert.ok(a.chain.length <= 64);
    assert.equal(isDescendantOf(70, 99, reader), false);
  });
});

describe("procfs: real processes", () => {
  it("reads this process: exe, argv, start time, cwd", () => {
    const p = readProcess(process.pid);
    assert.equal(p.known, true);
    assert.equal(p.exe, realpathSync(process.execPath));
    assert.equal(p.argv?.[0], process.argv0);
    assert.ok((p.startTime ?? 0) > 0);
    assert.equal(p.cwd, process.cwd());
    assert.equal(p.ppid, process.ppid);
    assert.equal(isSameProcess(process.pid, p.startTime), true);
    assert.equal(isSameProcess(process.pid, (p.startTime ?? 0) + 1), false);
  });

  it("a held /proc file follows its process through exec and fails once it has ended", async () => {
    // The caller cache re-checks callers through held files (ProcReader.hold): this is the
    // kernel behaviour it relies on, on this kernel.
    const c = spawnKept("sh", ["-c", "read x; exec sleep 30"]);
    // stdin is /dev/null: `read` ends at once, then sh becomes sleep (the same process).
    const pid = c.pid!;
    const stat = nodeProcReader.hold!(`/proc/${pid}/stat`)!;
    const cmdline = nodeProcReader.hold!(`/proc/${pid}/cmdline`)!;
    try {
      const first = parseStat(nodeProcReader.reread!(stat)!);
      assert.equal(first?.pid, pid);
      await waitFor(() => (nodeProcReader.reread!(cmdline)?.startsWith("sleep\0") ? true : undefined));
      assert.equal(
        parseStat(nodeProcReader.reread!(stat)!)?.startTime,
        first?.startTime,
        "exec keeps the process",
      );
      const gone = new Promise((r) => c.once("exit", r));
      process.kill(pid, "SIGKILL");
      await gone; // reaped by Node: the pid may now be given to another process
      assert.equal(nodeProcReader.reread!(stat), undefined);
      assert.ok(!nodeProcReader.reread!(cmdline), "argv of an ended process");
    } finally {
      nodeProcReader.release!(stat);
      nodeProcReader.release!(cmdline);
    }
  });

  it("a program with a hostile name, its real path and argv; setsid → own session, no terminal", async () => {
    const exe = join(dir, "we ird) (x");
    copyFileSync(realpathSync("/bin/sh"), exe);
    spawnSync("chmod", ["755", exe]);
    const script = "sleep 30; : two words";
    const c = spawnKept(exe, ["-c", script]); // detached: setsid()
    const p = await waitFor(() => {
      const r = readProcess(c.pid!);
      return r.known && r.exe === exe ? r : undefined;
    });
    assert.deepEqual(p.argv, [exe, "-c", script]);
    assert.equal(p.comm, "we ird) (x");
    assert.equal(p.sid, c.pid);
    assert.equal(p.tty, undefined);
    assert.equal(isDescendantOf(c.pid!, process.pid), true);
    const a = readAncestry(c.pid!);
    assert.equal(a.chain[1]?.pid, process.pid);
    assert.equal(a.sessionLeader, 0);
    assert.equal(a.chain[a.chain.length - 1]?.pid, 1);
  });

  it("a grand-child is a descendant; an unrelated process and a dead pid are not", async () => {
    const c = spawnKept("sh", ["-c", "sleep 30 & wait"]);
    const grand = await waitFor(() => {
      const r = spawnSync("pgrep", ["-P", String(c.pid)], { encoding: "utf8" });
      const pid = Number(r.stdout.trim().split("\n")[0]);
      return pid > 0 ? pid : undefined;
    });
    assert.equal(isDescendantOf(grand, c.pid!), true);
    assert.equal(isDescendantOf(grand, process.pid), true);
    assert.equal(isDescendantOf(grand, c.pid!, undefined, readProcess(c.pid!).startTime), true);
    assert.equal(isDescendantOf(process.pid, c.pid!), false);
    const dead = spawnSync(process.execPath, ["-e", "0"]).pid;
    const d = readProcess(dead);
    assert.equal(d.known, false);
    assert.equal(isDescendantOf(dead, process.pid), false);
  });

  it("a process in a tmux pane has that pane's controlling terminal", async (t) => {
    if (!requireTool(t, "tmux", "apt-get install -y tmux")) return;
    const sock = join(dir, "tmux.sock");
    const sess = "procfs";
    try {
      const r = spawnSync("tmux", ["-S", sock, "new-session", "-d", "-s", sess, "sleep 30"], {
        encoding: "utf8",
        env: { ...process.env, TMUX: "" },
      });
      assert.equal(r.status, 0, r.stderr);
      const out = spawnSync("tmux", ["-S", sock, "list-panes", "-t", sess, "-F", "#{pane_pid} #{pane_tty}"], {
        encoding: "utf8",
      }).stdout.trim();
      const [pid, tty] = out.split(" ");
      const p = await waitFor(() => {
        const q = readProcess(Number(pid));
        return q.known && q.exe?.endsWith("sleep") ? q : undefined;
      });
      assert.equal(p.tty, tty);
      assert.equal(p.sid, Number(pid));
    } finally {
      spawnSync("tmux", ["-S", sock, "kill-server"]);
    }
  });
});
