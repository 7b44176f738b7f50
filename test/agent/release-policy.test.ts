/**
 * The caller-aware release policy end to end: the built agent (`--policy ask`, the default),
 * real callers in tmux panes and in the background, a real pinentry-tty on the terminal the
 * agent was started from, the MAC-chained log, `agent log` and `doctor`.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { DEFAULT_DEFAULTS, deriveReleaseKeys, savePolicy } from "../../src/agent/policy.js";
import { PROTOCOL_VERSION } from "../../src/agent/protocol.js";
import { BIN } from "../helpers/cli.js";
import { runProcess } from "../helpers/process.js";
import { hasCommand } from "../helpers/require-tool.js";
import { startTmux, type Tmux } from "../helpers/tmux.js";
import { DEV_SUB, SHIM_DIR, signedIn, type SignedIn } from "../tokens/signed-in.js";
import { agentStatus, waitFor, type Status, killAgentOf } from "./helpers.js";

const tools = ["tmux", "pinentry-tty"].filter((t) => !hasCommand(t));
if (tools.length && process.env.CI === "true") throw new Error(`missing ${tools.join(", ")} (see .ci/run)`);
const skip = tools.length ? `missing: apt-get install -y ${tools.join(" ")}` : false;

interface Rec {
  seq: number;
  time: string;
  decision: string;
  rule: string;
  reason?: string;
  caller: { pid: number; exe?: string; argv?: string[]; tty?: string };
  request: {
    resource?: string;
    kind?: string;
    op?: string;
    write?: string;
    change?: string;
    rule?: { name: string };
  };
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");

describe("release policy: who asks, the person confirms, the log", { timeout: 240_000, skip }, () => {
  let s: SignedIn;
  let tmux: Tmux;
  let st: Status | undefined;
  let promptPane: ReturnType<Tmux["pane"]>;
  let n = 0;
  const azkeep = `${process.execPath} ${BIN}`;

  /** Runs a shell line in a pane (a shell), waits for it; returns exit code, stdout, stderr. */
  async function inPane(pane: { target: string }, line: string, ms = 30_000) {
    const base = join(s.home, `run${n++}`);
    tmux.type(pane.target, `${line} >${base}.out 2>${base}.err; echo $? >${base}.rc`);
    tmux.send(pane.target, "Enter");
    await waitFor(() => existsSync(`${base}.rc`) && readFileSync(`${base}.rc`, "utf8").endsWith("\n"), ms);
    return {
      code: Number(readFileSync(`${base}.rc`, "utf8")),
      stdout: readFileSync(`${base}.out`, "utf8"),
      stderr: readFileSync(`${base}.err`, "utf8"),
    };
  }
  /** Starts a line in a pane without waiting; returns a waiter. */
  function startInPane(pane: { target: string }, line: string) {
    const base = join(s.home, `run${n++}`);
    tmux.type(pane.target, `${line} >${base}.out 2>${base}.err; echo $? >${base}.rc`);
    tmux.send(pane.target, "Enter");
    return async () => {
      await waitFor(
        () => existsSync(`${base}.rc`) && readFileSync(`${base}.rc`, "utf8").endsWith("\n"),
        30_000,
      );
      return {
        code: Number(readFileSync(`${base}.rc`, "utf8")),
        stdout: readFileSync(`${base}.out`, "utf8"),
        stderr: readFileSync(`${base}.err`, "utf8"),
      };
    };
  }
  function shellPane() {
    const p = tmux.pane("sh", { ...s.env, AZKEEP_PINENTRY: "pinentry-tty", PS1: "$ " });
    return p;
  }
  async function log(): Promise<Rec[]> {
    const r = await s.cli(["agent", "log"]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as Rec[];
  }
  const promptScreen = () => tmux.capture(promptPane.target);

  before(async () => {
    s = await signedIn();
    tmux = startTmux();
    // The terminal the person starts the agent from: pinentry asks there. After the start it
    // runs `sleep`, so nothing but pinentry reads its keys.
    const started = join(s.home, "start.rc");
    promptPane = tmux.pane(
      `${azkeep} agent start >${s.home}/start.out 2>&1; echo $? >${started}; exec sleep 600`,
      {
        ...s.env,
        AZKEEP_PINENTRY: "pinentry-tty",
      },
    );
    await waitFor(() => existsSync(started) && readFileSync(started, "utf8").endsWith("\n"), 30_000);
    assert.equal(readFileSync(started, "utf8").trim(), "0", readFileSync(`${s.home}/start.out`, "utf8"));
    st = await agentStatus(s);
    assert.equal(st.locked, false);
  });
  after(async () => {
    await killAgentOf(s, st);
    tmux?.kill();
    await s?.close();
  });

  it("an unknown program asks → the prompt names it and the audience → approve → token; the same session again: no prompt", async () => {
    const b = shellPane();
    const done = startInPane(b, `${azkeep} account get-access-token --query accessToken -o tsv`);
    const screen = await tmux.waitFor(promptPane.target, /\[ad\]\?/, 20_000);
    const m = /pid (\d+) (\S+) (\S+) account get-access-token --query accessToken -o tsv/.exec(screen);
    assert.ok(m, `the prompt names exe, argv, pid:\n${screen}`);
    assert.equal(m[2], process.execPath);
    assert.equal(m[3], BIN);
    assert.match(screen, /a token for https:\/\/management\.azure\.com/);
    assert.match(screen, new RegExp(`terminal: ${b.tty.replace(/\//g, "\\/")}`));
    assert.match(screen, /10 min idle, at most 12 h/);
    tmux.type(promptPane.target, "a");
    const r = await done();
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ey/);

    tmux.clear(promptPane.target);
    const again = await inPane(b, `${azkeep} account get-access-token --query expiresOn -o tsv`);
    assert.equal(again.code, 0, again.stderr);
    assert.doesNotMatch(promptScreen(), /\[ad\]\?/, "a second call from the approved session prompted");
    const recs = await log();
    const first = recs.find((x) => x.caller.pid === Number(m[1]));
    assert.equal(first?.decision, "allow");
    assert.equal(first?.rule, "confirm-terminal (confirmed)");
    assert.equal(recs[recs.length - 1]?.rule, "session-approved");
    assert.equal(recs[recs.length - 1]?.caller.tty, b.tty);
    assert.doesNotMatch(
      readFileSync(join(s.env.AZKEEP_CONFIG_DIR!, "release.log"), "utf8"),
      /"ey[A-Za-z0-9_-]{20,}/,
    );
  });

  it("cancel → denied: one ERROR line, exit 1", async () => {
    const c = shellPane();
    tmux.clear(promptPane.target);
    const done = startInPane(c, `${azkeep} account get-access-token`);
    await tmux.waitFor(promptPane.target, /\[ad\]\?/, 20_000);
    tmux.type(promptPane.target, "d");
    const r = await done();
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "");
    const lines = r.stderr.trimEnd().split("\n");
    assert.equal(lines.filter((l) => l.startsWith("ERROR:")).length, 1, r.stderr);
    assert.ok(lines.length <= 2 && !/\n\s+at /.test(r.stderr), r.stderr); // the message and its hint; no stack
    assert.match(
      lines[0]!,
      /^ERROR: The agent did not release a token for https:\/\/management\.azure\.com to .* you denied it/,
    );
  });

  it("the same-user attacker in the background (setsid, no terminal): CLI, shim and the raw socket get nothing, no prompt, a deny record each", async () => {
    tmux.clear(promptPane.target);
    const before = (await log()).length;
    // runProcess starts each in its own session without a terminal, as an npm postinstall would.
    const cli = await runProcess(process.execPath, [BIN, "account", "get-access-token"], {
      env: s.env,
      timeoutMs: 30_000,
    });
    assert.equal(cli.code, 1);
    assert.match(
      cli.stderr,
      /^ERROR: .* has no terminal .*Run it from a terminal.*azkeep agent start --policy open/m,
    );
    assert.doesNotMatch(cli.stdout + cli.stderr, /ey[A-Za-z0-9_-]{20,}/);
    const shim = await runProcess(join(SHIM_DIR, "az"), ["account", "get-access-token"], {
      env: { ...s.env, PATH: `${SHIM_DIR}:/usr/bin:/bin` },
      timeoutMs: 30_000,
    });
    assert.notEqual(shim.code, 0);
    assert.doesNotMatch(shim.stdout, /ey[A-Za-z0-9_-]{20,}/);
    const raw = await runProcess(
      process.execPath,
      [
        "-e",
        `const s=require("net").connect(process.argv[1]);let b="";s.on("data",d=>b+=d);s.on("close",()=>process.stdout.write(b));` +
          `s.write(JSON.stringify({id:1,op:"hello",version:${PROTOCOL_VERSION}})+"\\n"+JSON.stringify({id:2,op:"token",request:{resource:"https://management.azure.com"}})+"\\n");setTimeout(()=>s.end(),3000);`,
        st!.socket,
      ],
      { env: s.env, timeoutMs: 30_000 },
    );
    assert.match(raw.stdout, /"id":2,"ok":false/);
    assert.doesNotMatch(raw.stdout, /ey[A-Za-z0-9_-]{20,}/);
    assert.doesNotMatch(promptScreen(), /\[ad\]\?/, "a background caller caused a prompt");
    const recs = (await log()).slice(before);
    const denies = recs.filter((x) => x.decision === "deny" && x.rule === "no-terminal");
    assert.ok(denies.length >= 3, JSON.stringify(recs.map((x) => [x.caller.exe, x.rule])));
    assert.ok(
      denies.some((x) => x.caller.argv?.includes("-e")),
      "the raw socket client is logged",
    );
  });

  it("a process that reuses the pid of an approved session's leader is not approved", async (t) => {
    if (!existsSync("/proc/sys/kernel/ns_last_pid") || process.getuid?.() !== 0)
      return t.skip("needs root to set ns_last_pid");
    const b = shellPane();
    tmux.clear(promptPane.target);
    const done = startInPane(b, `${azkeep} account get-access-token --query expiresOn -o tsv`);
    await tmux.waitFor(promptPane.target, /\[ad\]\?/, 20_000);
    tmux.type(promptPane.target, "a");
    assert.equal((await done()).code, 0);
    // The approved session's leader (the pane's shell) exits; a new one gets its pid.
    tmux.killPane(b.target);
    await waitFor(() => !existsSync(`/proc/${b.pid}`));
    let d: ReturnType<Tmux["pane"]> | undefined;
    // The tmux client takes pids of its own before the server forks the pane: measure how many.
    let offset = 1;
    for (let i = 0; i < 60 && d?.pid !== b.pid; i++) {
      if (d) tmux.killPane(d.target);
      const set = b.pid - offset;
      writeFileSync("/proc/sys/kernel/ns_last_pid", String(set));
      d = shellPane();
      if (d.pid !== b.pid && d.pid > set && d.pid - set < 50) offset = d.pid - set;
    }
    // On a machine busy forking, another process may take the pid each time: say so, do not pass.
    if (d?.pid !== b.pid) return t.skip(`pid ${b.pid} could not be reused in 60 tries (a busy machine)`);
    assert.equal(d.tty, b.tty, "the new leader has the same terminal too");
    tmux.clear(promptPane.target);
    const reuse = startInPane(d, `${azkeep} account get-access-token`);
    await tmux.waitFor(promptPane.target, /\[ad\]\?/, 20_000);
    tmux.type(promptPane.target, "d");
    assert.equal((await reuse()).code, 1);
  });

  it("a policy file edited by another process → refused, nothing released", async () => {
    const path = join(s.env.AZKEEP_CONFIG_DIR!, "policy.json");
    writeFileSync(
      path,
      JSON.stringify({
        version: 1,
        defaults: { sessionIdle: "10m", sessionMax: "12h", promptTimeout: 60 },
        rules: [{ name: "everything", action: "allow" }],
        mac: "forged",
      }),
    );
    try {
      const r = await runProcess(process.execPath, [BIN, "account", "get-access-token"], {
        env: s.env,
        timeoutMs: 30_000,
      });
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /^ERROR: The agent's release policy is not trusted: .*policy\.json was changed outside azkeep/m,
      );
      assert.equal(r.stdout, "");
      const last = (await log()).pop();
      assert.equal(last?.rule, "policy-tampered");
    } finally {
      const { rmSync } = await import("node:fs");
      rmSync(path, { force: true });
    }
  });

  it("a policy removed after the agent verified it → the person confirms the defaults first; refusing keeps everything refused", async () => {
    const dir = s.env.AZKEEP_CONFIG_DIR!;
    const path = join(dir, "policy.json");
    const root = (await s.secrets()).release?.root;
    assert.ok(root, "the agent made its release secret at unlock");
    const keys = deriveReleaseKeys(Buffer.from(root, "base64"));
    await savePolicy(dir, keys.policy, {
      version: 1,
      defaults: { ...DEFAULT_DEFAULTS },
      rules: [{ name: "graph-never", request: { audience: "*graph.microsoft.com*" }, action: "deny" }],
    });
    const mac = (JSON.parse(readFileSync(path, "utf8")) as { mac: string }).mac;
    const ask = () =>
      runProcess(process.execPath, [BIN, "account", "get-access-token"], { env: s.env, timeoutMs: 30_000 });
    // Seen and verified: its MAC goes into the seal (the caller has no terminal: denied as before).
    const seen = await ask();
    assert.equal(seen.code, 1);
    assert.equal((await log()).pop()?.rule, "no-terminal");
    assert.equal((await s.secrets()).release?.policy, mac, "the verified policy's MAC is sealed");

    rmSync(path);
    tmux.clear(promptPane.target);
    const refused = ask();
    let screen = await tmux.waitFor(promptPane.target, /Return to the defaults\?[\s\S]*\[uk\]\?/, 20_000);
    assert.match(screen, new RegExp(`release policy file was removed:\\s+${path.replace(/[/.]/g, "\\$&")}`));
    tmux.type(promptPane.target, "k");
    const r1 = await refused;
    assert.equal(r1.code, 1);
    assert.match(
      r1.stderr,
      /^ERROR: The agent's release policy is not trusted: .*policy\.json was removed outside azkeep, and you kept refusing\. Nothing is released until it is restored: put back the policy\.json azkeep wrote/m,
    );
    assert.equal(r1.stdout, "");
    assert.equal((await log()).pop()?.rule, "policy-tampered");
    assert.equal((await s.secrets()).release?.policy, mac, "refusing keeps the sealed mark");

    tmux.clear(promptPane.target);
    const confirmed = ask();
    screen = await tmux.waitFor(promptPane.target, /Return to the defaults\?[\s\S]*\[uk\]\?/, 20_000);
    tmux.type(promptPane.target, "u");
    const r2 = await confirmed;
    // The defaults now decide: a caller with no terminal is denied by them, not by the policy check.
    assert.equal(r2.code, 1);
    assert.match(r2.stderr, /has no terminal/);
    assert.equal((await log()).pop()?.rule, "no-terminal");
    assert.equal(
      (await s.secrets()).release?.policy,
      "none",
      "confirming seals 'no policy file' (an older file put back later is refused)",
    );
    tmux.clear(promptPane.target);
    const after = await ask();
    assert.match(after.stderr, /has no terminal/);
    assert.doesNotMatch(
      promptScreen(),
      /Return to the defaults/,
      "asked again after the defaults were confirmed",
    );
  });

  /** `account get-access-token` from a process with no terminal (its own session), as a cron job. */
  const background = (args = ["account", "get-access-token"]) =>
    runProcess(process.execPath, [BIN, ...args], { env: s.env, timeoutMs: 30_000 });
  const policyFile = () => join(s.env.AZKEEP_CONFIG_DIR!, "policy.json");
  const policyAsked = /change the azkeep agent's release policy[\s\S]*\[ad\]\?/;
  let v1 = "";

  it("agent policy add → pinentry shows the rule and who asks → Allow → the rule decides: a caller with no terminal now gets a token", async () => {
    const denied = await background();
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /has no terminal/);
    const p = shellPane();
    tmux.clear(promptPane.target);
    const done = startInPane(
      p,
      `${azkeep} agent policy add --name node-background --action allow --exe ${process.execPath} --terminal false --audience https://management.azure.com/.default`,
    );
    const screen = await tmux.waitFor(promptPane.target, policyAsked, 20_000);
    assert.match(screen, /add rule 'node-background' \(last\):/);
    assert.match(
      screen,
      new RegExp(
        `allow tokens for https://management\\.azure\\.com to: executable ${esc(process.execPath)}, with no terminal, without asking`,
      ),
    );
    const who = new RegExp(
      `Asked by:\\s+pid (\\d+) ${esc(process.execPath)} ${esc(BIN)} agent policy add --name node-background`,
    );
    const m = who.exec(screen);
    assert.ok(m, `the prompt names who asks:\n${screen}`);
    assert.match(screen, new RegExp(`terminal: ${esc(p.tty)}`));
    tmux.type(promptPane.target, "a");
    const r = await done();
    assert.equal(r.code, 0, r.stderr);
    const view = JSON.parse(r.stdout) as { source: string; rules: { name: string }[]; changed: string };
    assert.equal(view.source, "file");
    assert.deepEqual(
      view.rules.map((x) => x.name),
      ["node-background"],
    );
    v1 = readFileSync(policyFile(), "utf8");
    const mac = (JSON.parse(v1) as { mac: string }).mac;
    assert.equal((await s.secrets()).release?.policy, mac, "the new policy's MAC is the sealed mark");

    const got = await background(["account", "get-access-token", "--query", "accessToken", "-o", "tsv"]);
    assert.equal(got.code, 0, got.stderr);
    assert.match(got.stdout, /^ey/);
    const recs = await log();
    const change = recs.find((x) => x.caller.pid === Number(m[1]));
    assert.equal(change?.decision, "allow");
    assert.equal(change?.rule, "policy-change (confirmed)");
    assert.equal(change?.request.op, "policy add");
    assert.match(change?.request.change ?? "", /^add rule 'node-background' \(last\):\n {2}allow tokens/);
    assert.equal(change?.request.rule?.name, "node-background");
    assert.equal(recs[recs.length - 1]?.rule, "node-background");
    assert.equal(recs[recs.length - 1]?.decision, "allow");
  });

  it("agent policy remove → Deny: nothing changes, one ERROR line, exit 1, a deny record", async () => {
    const p = shellPane();
    tmux.clear(promptPane.target);
    const done = startInPane(p, `${azkeep} agent policy remove node-background`);
    const screen = await tmux.waitFor(promptPane.target, policyAsked, 20_000);
    assert.match(
      screen,
      /remove rule 'node-background', which says:\s+allow tokens for https:\/\/management\.azure\.com/,
    );
    tmux.type(promptPane.target, "d");
    const r = await done();
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "");
    const errors = r.stderr.split("\n").filter((l) => l.startsWith("ERROR:"));
    assert.deepEqual(errors, ["ERROR: The release policy was not changed: you denied it."], r.stderr);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
    assert.equal(readFileSync(policyFile(), "utf8"), v1, "policy.json is unchanged");
    const last = (await log()).pop();
    assert.equal(last?.decision, "deny");
    assert.equal(last?.rule, "policy-change (denied)");
    assert.equal(last?.request.op, "policy remove");
    assert.equal((await background()).code, 0, "the rule still decides");
  });

  it("a policy.json rolled back to an older copy azkeep wrote → refused as tampered, nothing released; `policy reset` (confirmed) is the way back", async () => {
    const p = shellPane();
    tmux.clear(promptPane.target);
    const done = startInPane(p, `${azkeep} agent policy remove node-background`);
    await tmux.waitFor(promptPane.target, policyAsked, 20_000);
    tmux.type(promptPane.target, "a");
    assert.equal((await done()).code, 0);
    assert.match((await background()).stderr, /has no terminal/, "the rule is gone");

    // A same-uid program puts back the copy that let background callers have tokens.
    writeFileSync(policyFile(), v1);
    const r = await background();
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "");
    assert.match(
      r.stderr,
      /^ERROR: The agent's release policy is not trusted: .*policy\.json is not the policy azkeep wrote last .*an older copy was put back.*Nothing is released until it is restored: .*azkeep agent policy reset/m,
    );
    const last = (await log()).pop();
    assert.equal(last?.rule, "policy-tampered");
    assert.match(last?.reason ?? "", /policy\.json is not the policy azkeep wrote last/);
    const show = await s.cli(["agent", "policy", "show"]);
    assert.equal(show.code, 1);
    assert.match(show.stderr, /^ERROR: .*not the policy azkeep wrote last/m);
    // No rule is added on top of a policy that is not trusted (and nobody is asked).
    const add = await background([
      "agent",
      "policy",
      "add",
      "--name",
      "x",
      "--action",
      "deny",
      "--kind",
      "write",
    ]);
    assert.equal(add.code, 1);
    assert.match(
      add.stderr,
      /^ERROR: The agent's release policy is not trusted .*Run `azkeep agent policy reset`/m,
    );

    tmux.clear(promptPane.target);
    const reset = startInPane(p, `${azkeep} agent policy reset`);
    const screen = await tmux.waitFor(promptPane.target, policyAsked, 20_000);
    assert.match(screen, /reset to the defaults, replacing the policy in force/);
    assert.match(screen, /The policy in force is not trusted/);
    tmux.type(promptPane.target, "a");
    const rr = await reset();
    assert.equal(rr.code, 0, rr.stderr);
    assert.deepEqual((JSON.parse(rr.stdout) as { rules: unknown[] }).rules, []);
    assert.match((await background()).stderr, /has no terminal/, "the defaults decide again");
    const shown = await s.cli(["agent", "policy", "show", "-o", "table"]);
    assert.equal(shown.code, 0, shown.stderr);
  });

  it("store writes go through the policy: logout over the socket from a program with no terminal → denied, a deny record; from a terminal → confirmed", async () => {
    tmux.clear(promptPane.target);
    const raw = await runProcess(
      process.execPath,
      [
        "-e",
        `const s=require("net").connect(process.argv[1]);let b="";s.on("data",d=>b+=d);s.on("close",()=>process.stdout.write(b));` +
          `s.write(JSON.stringify({id:1,op:"hello",version:${PROTOCOL_VERSION}})+"\\n"+JSON.stringify({id:2,op:"write",write:{kind:"signout"}})+"\\n");setTimeout(()=>s.end(),3000);`,
        st!.socket,
      ],
      { env: s.env, timeoutMs: 30_000 },
    );
    assert.match(raw.stdout, /"id":2,"ok":false,"error":\{"code":"denied"/);
    let last = (await log()).pop();
    assert.equal(last?.decision, "deny");
    assert.equal(last?.rule, "no-terminal");
    assert.equal(last?.request.write, "signout");
    assert.ok(last?.caller.argv?.includes("-e"), "the raw socket client is logged");
    const cli = await background(["logout"]);
    assert.equal(cli.code, 1);
    assert.match(cli.stderr, /^ERROR: .* has no terminal .*changes the token store for such callers/m);
    assert.ok((await s.secrets()).refreshTokens.length > 0, "still signed in");
    assert.doesNotMatch(promptScreen(), /\[ad\]\?/, "a background caller caused a prompt");

    // From a terminal session not approved yet: the person is asked, as for a token.
    const p = shellPane();
    const done = startInPane(p, `${azkeep} account set --subscription ${DEV_SUB}`);
    const screen = await tmux.waitFor(promptPane.target, /\[ad\]\?/, 20_000);
    assert.match(
      screen,
      new RegExp(`A program asks the azkeep agent\\s+to make subscription ${DEV_SUB} the default:`),
    );
    tmux.type(promptPane.target, "a");
    const r = await done();
    assert.equal(r.code, 0, r.stderr);
    last = (await log()).pop();
    assert.equal(last?.decision, "allow");
    assert.equal(last?.rule, "confirm-terminal (confirmed)");
    assert.equal(last?.request.write, "set-default");
  });

  it("refusals while locked are chained into the log at the next unlock, with their time and caller", async () => {
    const before = (await log()).length;
    const lock = await s.cli(["agent", "lock"]);
    assert.equal(lock.code, 0, lock.stderr);
    const t0 = Date.now();
    const r = await runProcess(process.execPath, [BIN, "account", "get-access-token"], {
      env: s.env,
      timeoutMs: 30_000,
    });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^ERROR: The azkeep agent is locked\.\nRun `azkeep agent unlock`/);
    const un = await s.cli(["agent", "unlock"]);
    assert.equal(un.code, 0, un.stderr);
    const recs = (await log()).slice(before);
    const locked = recs.filter((x) => x.decision === "deny" && x.rule === "locked");
    assert.equal(locked.length, 1, JSON.stringify(recs.map((x) => [x.caller.exe, x.rule])));
    assert.ok(locked[0]!.caller.argv?.includes("get-access-token"), JSON.stringify(locked[0]!.caller));
    const at = Date.parse(locked[0]!.time);
    assert.ok(at >= t0 - 1000 && at <= Date.now(), `time ${at} is when it was refused`);
    // log() ran `agent log`, which exits 1 unless the chain verifies: the records were MAC-chained.
    st = await agentStatus(s);
  });

  it("an edited or truncated log → `agent log` and `doctor` name the record", async () => {
    const file = join(s.env.AZKEEP_CONFIG_DIR!, "release.log");
    const original = readFileSync(file, "utf8");
    const lines = original.trimEnd().split("\n");
    try {
      writeFileSync(
        file,
        `${[
          lines[0],
          lines[1]!
            .replace('"allow"', '"deny"')
            .replace('"deny"', '"allow"')
            .replace(/"pid":\d+/, '"pid":1'),
          ...lines.slice(2),
        ].join("\n")}\n`,
      );
      const d = await s.cli(["doctor"]);
      assert.equal(d.code, 3, d.stderr);
      assert.match(
        d.stdout,
        /release log is broken: release\.log: record 2 \(line 2\) was changed outside azkeep/,
      );
      const l = await s.cli(["agent", "log"]);
      assert.equal(l.code, 1);
      assert.match(l.stderr, /^ERROR: The release log does not verify: release\.log: record 2/m);

      writeFileSync(file, `${lines.slice(0, 3).join("\n")}\n`);
      const t2 = await s.cli(["doctor"]);
      assert.match(
        t2.stdout,
        new RegExp(`cut after record 3; the agent had written up to record ${lines.length}`),
      );
    } finally {
      writeFileSync(file, original);
    }
    const ok = await s.cli(["doctor"]);
    assert.doesNotMatch(ok.stdout, /release log is broken/);
  });
});
