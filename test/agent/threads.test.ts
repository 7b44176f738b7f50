/**
 * The front's helper threads run at the lowest priority (`src/agent/threads.ts`): read from
 * /proc for the built agent, every thread but the main one at nice 19 — including the release
 * log's thread, which is new after each unlock — and the main thread untouched.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { HELPER_NICE } from "../../src/agent/threads.js";
import { signedIn, type SignedIn } from "../tokens/signed-in.js";
import { startAgent, waitFor, type Status, killAgentOf } from "./helpers.js";

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

describe("agent: the front's helper threads", { timeout: 120_000 }, () => {
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

  it("run at nice 19, the main thread at 0, and the release log's thread after a lock and unlock too", async () => {
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
});
