/**
 * Agent-only mode with the passphrase provider, with real processes and a real terminal (tmux):
 * the agent starts locked, the passphrase is typed once into `azkeep agent unlock` and reaches
 * the vault only (not the front's memory, not any environment); a same-uid program with neither
 * the passphrase nor the agent gets nothing; `lock` ends the vault and the passphrase with it.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { BIN } from "../helpers/cli.js";
import { requireTool } from "../helpers/require-tool.js";
import { startTmux, type Tmux } from "../helpers/tmux.js";
import { signedIn, type SignedIn } from "../tokens/signed-in.js";
import { agentStatus, alive, startAgent, waitFor, type Status, killAgentOf } from "./helpers.js";
import { memoryContains } from "./memory.js";

const PASSPHRASE = "correct-horse-battery-agent";
const isRoot = process.getuid?.() === 0;

describe("agent-only mode with the passphrase provider", { timeout: 180_000 }, () => {
  let s: SignedIn;
  let st: Status;
  let tmux: Tmux | undefined;
  before(async () => {
    s = await signedIn();
    const m = await s.cli(["store", "migrate", "--to", "passphrase"], {
      env: { AZKEEP_NEW_PASSPHRASE: PASSPHRASE },
    });
    assert.equal(m.code, 0, m.stderr);
    // As a person who migrated would: the variable no longer names the store's provider (left
    // set, it makes every write refuse the passphrase store, as it should).
    delete s.env.AZKEEP_STORE_PROVIDER;
  });
  after(async () => {
    tmux?.kill();
    await killAgentOf(s, st);
    await s?.close();
  });

  it("starts locked, refuses tokens, unlocks once from a terminal, serves, and locks again", async (t) => {
    if (!requireTool(t, "tmux", "apt-get install -y tmux")) return;
    if (!requireTool(t, "pinentry-curses", "apt-get install -y pinentry-curses")) return;
    st = await startAgent(s, ["--agent-only"]);
    assert.equal(st.locked, true);
    assert.equal(st.provider, "passphrase");
    assert.equal(st.agentOnly, true);
    const locked = await s.cli(["account", "get-access-token"]);
    assert.equal(locked.code, 1);
    assert.match(locked.stderr, /^ERROR: The azkeep agent is locked\.\nRun `azkeep agent unlock`/);
    // A same-uid program without the agent: agent-only refuses; and without agent-only mode it
    // would still need the passphrase, which is nowhere but in the person's head.
    const direct = await s.cli(["account", "get-access-token"], { env: { AZKEEP_AGENT: "off" } });
    assert.equal(direct.code, 1);
    assert.match(direct.stderr, /agent-only mode/);

    tmux = startTmux();
    const env: Record<string, string> = { ...s.env };
    const pane = tmux.pane(`${process.execPath} ${BIN} agent unlock --query locked -o tsv; sleep 30`, env);
    // pinentry-curses (Debian's, installed by .ci/run) asks, not azkeep's own prompt: only its
    // dialog shows the description.
    await tmux.waitFor(pane.target, /Unlock the azkeep agent/, 30_000);
    await tmux.waitFor(pane.target, /Passphrase of the azkeep store:/, 10_000);
    tmux.type(pane.target, PASSPHRASE);
    tmux.send(pane.target, "Enter");
    await tmux.waitFor(pane.target, /^false$/m, 60_000);
    const now = await agentStatus(s);
    assert.equal(now.locked, false);
    assert.equal(now.pid, st.pid);
    st = now;
    const r = await s.cli(["account", "get-access-token", "--query", "accessToken", "-o", "tsv"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ey/);

    if (isRoot) {
      // The passphrase is in no environment of the agent, and never in the front's memory.
      for (const pid of [st.pid, st.vaultPid!])
        assert.doesNotMatch(readFileSync(`/proc/${pid}/environ`, "utf8"), new RegExp(PASSPHRASE));
      assert.equal(memoryContains(st.pid, PASSPHRASE), false, "the front never saw the passphrase");
      const rt = (await import("node:fs")).readFileSync(join(s.env.AZKEEP_CONFIG_DIR!, "tokens.sealed"));
      assert.equal(rt.includes(Buffer.from(PASSPHRASE)), false);
    }
    assert.equal((await s.cli(["agent", "lock"])).code, 0);
    await waitFor(() => !alive(st.vaultPid!));
    if (isRoot) assert.equal(memoryContains(st.pid, PASSPHRASE), false);
    const again = await s.cli(["account", "get-access-token"]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /azkeep agent unlock/);
  });
});
