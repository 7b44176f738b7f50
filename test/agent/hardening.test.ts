/**
 * The agent's hardening, with real processes: the refresh token lives in the vault only and is
 * gone after `lock` (its memory read as root); another uid is refused at the socket (by the
 * socket's mode, and by SO_PEERCRED when the mode would let it in); a same-uid ptrace attach and
 * /proc/PID/mem read of the agent fail (as uid 65534, with a dumpable control that succeeds).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { publicShipped } from "../helpers/public-copy.js";
import { signedIn, type SignedIn } from "../tokens/signed-in.js";
import { runProcess } from "../helpers/process.js";
import { alive, killAgent, startAgent, waitFor, type Status, killAgentOf } from "./helpers.js";
import { memoryContains } from "./memory.js";

const isRoot = process.getuid?.() === 0;
const NOBODY = ["--reuid=65534", "--regid=65534", "--clear-groups"];

describe(
  "agent hardening",
  { timeout: 240_000, skip: !isRoot && "needs root (reads /proc/PID/mem, setpriv)" },
  () => {
    let s: SignedIn;
    let st: Status;
    before(async () => {
      s = await signedIn();
      st = await startAgent(s);
      assert.equal((await s.cli(["account", "get-access-token"])).code, 0);
    });
    after(async () => {
      await killAgentOf(s, st);
      await s?.close();
    });

    it("the refresh token is in the vault's memory only, and gone with the vault after lock", async () => {
      const rt = (await s.secrets()).refreshTokens[0]!.secret;
      assert.ok(rt.length > 20);
      // A token through the agent, so the vault has used the refresh token's entry for sure.
      await s.ageAccessTokens(-1);
      assert.equal((await s.cli(["account", "get-access-token"])).code, 0);
      const fresh = (await s.secrets()).refreshTokens[0]!.secret;
      // Positive control: the search finds the token where it is.
      assert.equal(memoryContains(st.vaultPid!, fresh), true, "the vault holds the refresh token");
      assert.equal(memoryContains(st.pid, fresh), false, "the front never holds it");
      assert.equal(memoryContains(st.pid, rt), false);
      const r = await s.cli(["agent", "lock"]);
      assert.equal(r.code, 0, r.stderr);
      await waitFor(() => !alive(st.vaultPid!));
      assert.equal(memoryContains(st.pid, fresh), false, "after lock: not in the agent's memory");
      const next = await s.cli(["account", "get-access-token"]);
      assert.equal(next.code, 1);
      assert.match(next.stderr, /azkeep agent unlock/);
      const un = await s.cli(["agent", "unlock"]);
      assert.equal(un.code, 0, un.stderr);
      st = { ...st, ...(JSON.parse(un.stdout) as Status) };
    });

    it("another uid: refused by the socket's mode, and by SO_PEERCRED when the mode lets it in", async () => {
      const client = `
      const net = require("node:net");
      const s = net.connect(process.argv[1]);
      let out = "";
      s.on("error", (e) => { if (!out) console.log("ERR " + e.code); });
      s.on("data", (d) => (out += d));
      s.on("close", () => { if (out) console.log(out.trim()); });
      s.on("connect", () => s.write(JSON.stringify({ id: 1, op: "hello", version: 1 }) + "\\n" + JSON.stringify({ id: 2, op: "token", request: {} }) + "\\n"));
    `;
      const asNobody = () =>
        runProcess("setpriv", [...NOBODY, process.execPath, "-e", client, st.socket], {
          env: s.env,
          timeoutMs: 20_000,
        });
      // The folders from / to the socket must be enterable for the kernel to even look at the socket.
      for (let d = dirname(st.socket); d !== "/" && d !== tmpdir(); d = dirname(d)) chmodSync(d, 0o711);
      const byMode = await asNobody();
      assert.match(byMode.stdout, /^ERR EACCES$/m, byMode.stdout + byMode.stderr);
      chmodSync(st.socket, 0o666);
      try {
        const byPeer = await asNobody();
        const reply = JSON.parse(byPeer.stdout.trim().split("\n")[0]!) as {
          ok: boolean;
          error: { code: string; message: string };
        };
        assert.equal(reply.ok, false);
        assert.equal(reply.error.code, "denied");
        assert.match(reply.error.message, /serves uid 0 only/);
        assert.doesNotMatch(byPeer.stdout, /accessToken/);
      } finally {
        chmodSync(st.socket, 0o600);
        for (let d = dirname(st.socket); d !== "/" && d !== tmpdir(); d = dirname(d)) chmodSync(d, 0o700);
      }
      // The owner still gets tokens.
      assert.equal((await s.cli(["account", "get-access-token"])).code, 0);
    });

    it("same uid (65534): ptrace attach and /proc/PID/mem of the agent fail; of a dumpable process they work", async () => {
      const home = mkdtempSync(join(tmpdir(), "azkeep-nobody-"));
      try {
        const run = join(home, "run");
        mkdirSync(run, { mode: 0o700 });
        chmodSync(home, 0o700);
        chownSync(home, 65534, 65534);
        chownSync(run, 65534, 65534);
        const env: Record<string, string> = {
          PATH: process.env.PATH ?? "/usr/bin:/bin",
          HOME: home,
          XDG_RUNTIME_DIR: run,
          AZKEEP_STORE_PROVIDER: "insecure-file",
        };
        // The agent, as uid 65534, with its own HOME.
        const agent = spawn(
          "setpriv",
          [...NOBODY, process.execPath, join(publicShipped(), "dist/agent/daemon.js")],
          {
            env,
            stdio: ["ignore", "ignore", "pipe"],
            detached: true,
          },
        );
        let log = "";
        agent.stderr.on("data", (d: Buffer) => (log += d.toString()));
        try {
          await waitFor(() => /unlocked \(vault (\d+)\)/.test(log), 20_000);
          const vault = Number(/unlocked \(vault (\d+)\)/.exec(log)![1]);
          const front = agent.pid!;
          // The attacker: another process of uid 65534, with a dumpable control of its own uid.
          const attacker = `
import ctypes, os, subprocess, sys
libc = ctypes.CDLL(None, use_errno=True)
PTRACE_ATTACH, PTRACE_DETACH = 16, 17
def attach(pid):
    if libc.ptrace(PTRACE_ATTACH, pid, 0, 0) == 0:
        os.waitpid(pid, 0); libc.ptrace(PTRACE_DETACH, pid, 0, 0); return "ok"
    return os.strerror(ctypes.get_errno())
def mem(pid):
    try:
        maps = open(f"/proc/{pid}/maps").read().split("\\n")
        start = int([l for l in maps if " r" in l][0].split("-")[0], 16)
        f = open(f"/proc/{pid}/mem", "rb"); f.seek(start); f.read(16); return "ok"
    except Exception as e:
        return type(e).__name__
control = subprocess.Popen(["sleep", "30"], start_new_session=True)
try:
    for name, pid in [("control", control.pid), ("front", int(sys.argv[1])), ("vault", int(sys.argv[2]))]:
        print(name, "ptrace", attach(pid), "mem", mem(pid))
finally:
    control.kill()
`;
          const r = await runProcess(
            "setpriv",
            [...NOBODY, "/usr/bin/python3", "-c", attacker, String(front), String(vault)],
            {
              env,
              timeoutMs: 20_000,
            },
          );
          assert.match(r.stdout, /^control ptrace ok mem ok$/m, r.stdout + r.stderr);
          assert.match(r.stdout, /^front ptrace Operation not permitted mem PermissionError$/m, r.stdout);
          assert.match(r.stdout, /^vault ptrace Operation not permitted mem PermissionError$/m, r.stdout);
        } finally {
          try {
            process.kill(-agent.pid!, "SIGKILL");
          } catch {
            /* gone */
          }
          const m = /unlocked \(vault (\d+)\)/.exec(log);
          if (m) killAgent(Number(m[1]));
        }
      } finally {
        rmSync(home, { recursive: true, force: true });
      }
    });
  },
);
void writeFileSync;
