/**
 * The agent end to end, with real processes: the built CLI starts the agent (front + vault),
 * clients (the fast lane, the frame, the shim) go through it, `lock` / `unlock` / `stop`, and
 * agent-only mode (no process but the agent unseals the store); the front's helper threads at
 * the lowest priority (`src/agent/threads.ts`), read from /proc.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { HELPER_NICE } from "../../src/agent/threads.js";
import { runProcess } from "../helpers/process.js";
import { ALICE, DEV_SUB, PROD_SUB, SHIM_DIR, signedIn, type SignedIn } from "../tokens/signed-in.js";
import { agentStatus, alive, startAgent, waitFor, type Status, killAgentOf } from "./helpers.js";

/** tid → nice value (field 19 of /proc/PID/task/TID/stat) of every thread of `pid`. */
function niceOfThreads(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`).map(Number)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      out.set(tid, Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]));
    } catch {
      /* ended */
    }
  }
  return out;
}

/** Through azkeep's own writer: config.json's `store.mode` is sealed, an outside edit turning it off is refused. */
async function setMode(s: SignedIn, mode: "agent-only" | "direct"): Promise<void> {
  const r = await s.cli([
    "agent",
    "start",
    "--policy",
    "open",
    mode === "agent-only" ? "--agent-only" : "--no-agent-only",
  ]);
  assert.equal(r.code, 0, r.stderr);
}

describe("agent: start, clients through it, lock, unlock, stop", { timeout: 180_000 }, () => {
  let s: SignedIn;
  let st: Status;
  before(async () => {
    s = await signedIn();
    st = await startAgent(s);
  });
  after(async () => {
    await killAgentOf(s, st);
    await s?.close();
  });

  it("start: one front and one vault, unlocked, hardened, socket 0600 in a 0700 folder", async () => {
    assert.equal(st.locked, false);
    assert.ok(st.vaultPid && st.vaultPid !== st.pid);
    assert.deepEqual(st.identities, [ALICE.upn]);
    assert.equal(st.peerCheck, "SO_PEERCRED");
    assert.equal(st.nonDumpable, true);
    assert.equal(st.transport, "raw-pipe", "the front listens on libuv's pipe directly");
    assert.equal(statSync(st.socket).mode & 0o777, 0o600);
    assert.equal(statSync(dirname(st.socket)).mode & 0o777, 0o700);
    assert.ok(alive(st.pid) && alive(st.vaultPid));
    const again = await startAgent(s);
    assert.equal(again.started, false, "a second start does nothing");
    assert.equal(again.pid, st.pid);
  });

  it("the front's memory of released tokens follows the store: a change made without the agent is seen", async () => {
    const sub = async () => {
      const r = await s.cli(["account", "get-access-token", "--query", "subscription", "-o", "tsv"]);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout.trim();
    };
    assert.equal(await sub(), DEV_SUB);
    assert.equal(await sub(), DEV_SUB, "answered again (from the front's memory)");
    // Another process changes the default subscription itself (not through the agent).
    const set = await s.cli(["account", "set", "-s", PROD_SUB], { env: { AZKEEP_AGENT: "off" } });
    assert.equal(set.code, 0, set.stderr);
    assert.equal(await sub(), PROD_SUB, "a remembered token of the old default must not be served");
    const back = await s.cli(["account", "set", "-s", DEV_SUB]);
    assert.equal(back.code, 0, back.stderr);
    assert.equal(await sub(), DEV_SUB);
  });

  it("agent-only mode: fast lane, frame, shim and rest answer through the agent only", async () => {
    await setMode(s, "agent-only");
    try {
      const direct = await s.cli(["account", "get-access-token"], { env: { AZKEEP_AGENT: "off" } });
      assert.equal(direct.code, 1);
      assert.match(
        direct.stderr,
        /^ERROR: The token store is in agent-only mode and no azkeep agent runs\.\n.*azkeep agent start/m,
      );
      const fast = await s.cli(["account", "get-access-token", "--query", "accessToken", "-o", "tsv"]);
      assert.equal(fast.code, 0, fast.stderr);
      assert.match(fast.stdout, /^ey/);
      const frame = await s.cli([
        "--only-show-errors",
        "account",
        "get-access-token",
        "--resource-type",
        "ms-graph",
      ]);
      assert.equal(frame.code, 0, frame.stderr);
      assert.ok((JSON.parse(frame.stdout) as { accessToken: string }).accessToken);
      const shim = await runProcess(join(SHIM_DIR, "az"), ["account", "show"], {
        env: s.env,
        timeoutMs: 30_000,
      });
      assert.equal(shim.code, 0, shim.stderr);
      assert.equal((JSON.parse(shim.stdout) as { user: { name: string } }).user.name, ALICE.upn);
      const list = await s.cli(["account", "list"]);
      assert.equal(list.code, 0, list.stderr);
      const rest = await s.cli([
        "rest",
        "--url",
        "https://management.azure.com/subscriptions?api-version=2022-12-01",
      ]);
      assert.equal(rest.code, 0, rest.stderr);
      // Writes go through the agent too (this process may not unseal the store).
      const subs = JSON.parse(list.stdout) as { id: string; isDefault: boolean }[];
      const other = subs.find((x) => !x.isDefault) ?? subs[0]!;
      const set = await s.cli(["account", "set", "--subscription", other.id]);
      assert.equal(set.code, 0, set.stderr);
      const shown = await s.cli(["account", "show", "--query", "id", "-o", "tsv"]);
      assert.equal(shown.stdout.trim(), other.id);
    } finally {
      await setMode(s, "direct");
    }
  });

  it("lock: the vault ends; the next call names `azkeep agent unlock`; unlock serves again", async () => {
    const locked = JSON.parse((await s.cli(["agent", "lock"])).stdout) as Status;
    assert.equal(locked.locked, true);
    assert.equal(locked.lockedBy, "lock");
    await waitFor(() => !alive(st.vaultPid!));
    const r = await s.cli(["account", "get-access-token"]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, "ERROR: The azkeep agent is locked.\nRun `azkeep agent unlock` to unlock it.\n");
    const shim = await runProcess(join(SHIM_DIR, "az"), ["account", "get-access-token"], {
      env: s.env,
      timeoutMs: 30_000,
    });
    assert.equal(shim.code, 1);
    assert.match(shim.stderr, /azkeep agent unlock/);
    const un = await s.cli(["agent", "unlock"]);
    assert.equal(un.code, 0, un.stderr);
    const now = JSON.parse(un.stdout) as Status;
    assert.equal(now.locked, false);
    assert.notEqual(now.vaultPid, st.vaultPid, "a fresh vault");
    st = { ...st, ...now };
    assert.equal((await s.cli(["account", "get-access-token"])).code, 0);
  });

  it("the front's helper threads run at nice 19, the main thread at 0, and the release log's thread after a lock and unlock too", async () => {
    assert.equal((await s.cli(["account", "get-access-token"])).code, 0);
    const check = (when: string) => {
      const nice = niceOfThreads(st.pid);
      assert.equal(nice.get(st.pid), 0, `${when}: the main thread's priority changed`);
      const helpers = [...nice].filter(([tid]) => tid !== st.pid);
      // V8's platform threads, libuv's signal thread, the log's thread: several in any Node.
      assert.ok(helpers.length >= 3, `${when}: only ${helpers.length} other threads`);
      const high = helpers.filter(([, n]) => n !== HELPER_NICE);
      assert.deepEqual(high, [], `${when}: threads not lowered (tid, nice)`);
      return new Set(helpers.map(([tid]) => tid));
    };
    // The log's thread lowers itself when it starts: wait for it rather than race it.
    await waitFor(() => [...niceOfThreads(st.pid)].every(([tid, n]) => tid === st.pid || n === HELPER_NICE));
    const first = check("after start");
    assert.equal((await s.cli(["agent", "lock"])).code, 0);
    const un = await s.cli(["agent", "unlock"]);
    assert.equal(un.code, 0, un.stderr);
    assert.equal((await s.cli(["account", "get-access-token"])).code, 0);
    await waitFor(() => [...niceOfThreads(st.pid)].every(([tid, n]) => tid === st.pid || n === HELPER_NICE));
    const second = check("after unlock");
    assert.ok(
      [...second].some((tid) => !first.has(tid)),
      "no new thread after the unlock (the log's thread should be new)",
    );
  });

  it("stop: both processes end, the socket goes, status exits 1", async () => {
    const r = await s.cli(["agent", "stop"]);
    assert.equal(r.code, 0, r.stderr);
    await waitFor(() => !alive(st.pid) && !alive(st.vaultPid!));
    const after = await s.cli(["agent", "status"]);
    assert.equal(after.code, 1);
    assert.equal((JSON.parse(after.stdout) as Status).running, false);
    // Without an agent (and not agent-only) the direct path answers as before.
    assert.equal((await s.cli(["account", "get-access-token"])).code, 0);
  });

  it("where process.binding would warn (--pending-deprecation) the front listens with node:net: the same answers, no warning", async () => {
    const env = { NODE_PENDING_DEPRECATION: "1" };
    st = await startAgent(s, [], env);
    try {
      assert.equal(st.transport, "node-net");
      const plain = await s.cli(["account", "get-access-token"], { env });
      assert.equal(plain.code, 0, plain.stderr);
      assert.equal(plain.stderr, "");
      assert.match((JSON.parse(plain.stdout) as { accessToken: string }).accessToken, /^ey/);
      const status = await agentStatus(s);
      assert.equal(status.transport, "node-net");
      assert.ok((status.answerMs?.count ?? 0) >= 1, "answered by the agent");
    } finally {
      assert.equal((await s.cli(["agent", "stop"])).code, 0);
      await waitFor(() => !alive(st.pid) && !alive(st.vaultPid!));
    }
  });

  it("logout through the agent in agent-only mode: the sign-in is gone from the sealed store", async () => {
    st = await startAgent(s, ["--agent-only"]);
    try {
      const r = await s.cli(["logout"]);
      assert.equal(r.code, 0, r.stderr);
      const t = await s.cli(["account", "get-access-token"]);
      assert.equal(t.code, 1);
      assert.match(t.stderr, /azkeep login/);
      // The write went through the release gate: `--policy open` allowed it, and logged it.
      const log = await s.cli(["agent", "log"]);
      assert.equal(log.code, 0, log.stderr);
      const recs = JSON.parse(log.stdout) as {
        decision: string;
        rule: string;
        request: { write?: string };
      }[];
      const w = recs.find((x) => x.request.write === "signout");
      assert.equal(w?.decision, "allow");
      assert.equal(w?.rule, "open");
    } finally {
      await s.cli(["agent", "start", "--no-agent-only"]);
      await s.cli(["agent", "stop"]);
    }
    // Read directly now that agent-only mode is off: the agent wrote the sealed store.
    assert.equal((await s.secrets()).refreshTokens.length, 0);
  });

  it("login through the agent in agent-only mode: the client signs in, the agent seals and binds it", async () => {
    st = await startAgent(s, ["--agent-only"]);
    try {
      const r = await s.cli(["login", "-u", ALICE.upn, "--password-stdin"], { input: ALICE.password });
      assert.equal(r.code, 0, r.stderr);
      const subs = JSON.parse(r.stdout) as { user: { name: string }; cloudName: string }[];
      assert.ok(subs.length > 0);
      assert.ok(subs.every((x) => x.user.name === ALICE.upn && x.cloudName === "AzureCloud"));
      const t = await s.cli(["account", "get-access-token", "--query", "accessToken", "-o", "tsv"]);
      assert.equal(t.code, 0, t.stderr);
      assert.match(t.stdout, /^ey/);
      // Locked: login fails before it asks for anything, naming the unlock command.
      assert.equal((await s.cli(["agent", "lock"])).code, 0);
      const locked = await s.cli(["login", "-u", ALICE.upn, "--password-stdin"], { input: ALICE.password });
      assert.equal(locked.code, 1);
      assert.match(locked.stderr, /^ERROR: .*\n.*azkeep agent unlock/m);
      assert.doesNotMatch(locked.stderr, /at .*\.js:\d+/);
    } finally {
      await s.cli(["agent", "start", "--no-agent-only"]);
      await s.cli(["agent", "stop"]);
    }
    const secrets = await s.secrets();
    assert.equal(secrets.refreshTokens.length, 1);
    assert.equal(secrets.refreshTokens[0]!.username, ALICE.upn);
    assert.equal(secrets.refreshTokens[0]!.bound?.cloud, "AzureCloud", "bound to the agent's cloud");
  });
});
