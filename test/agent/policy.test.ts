import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { PolicyGate, type ConfirmFn } from "../../src/agent/gate.js";
import type { ReleaseRequest } from "../../src/agent/release.js";
import { migrateStore, openStore } from "../../src/core/store/index.js";
import { tempStoreDir } from "../store/helpers.js";
import { refreshToken } from "../store/contract.js";
import {
  NO_POLICY_MARK,
  POLICY_FILE,
  applyChange,
  defaultPolicy,
  describeRule,
  deriveReleaseKeys,
  globToRegExp,
  loadPolicy,
  matchRule,
  parseDuration,
  savePolicy,
  validatePolicy,
  type CallerFacts,
  type Policy,
  type RequestFacts,
} from "../../src/agent/policy.js";

const dir = mkdtempSync(join(tmpdir(), "azkeep-policy-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const keys = deriveReleaseKeys(Buffer.alloc(32, 1));

function caller(p: Partial<CallerFacts> = {}): CallerFacts {
  return {
    known: true,
    exe: "/usr/bin/terraform",
    argv: ["terraform", "plan"],
    cwd: "/home/me/infra/prod",
    tty: "/dev/pts/1",
    unit: "session-2.scope",
    container: undefined,
    ancestors: ["/usr/bin/bash", "/usr/bin/tmux"],
    run: undefined,
    ...p,
  };
}
const arm: RequestFacts = {
  kind: "token",
  audiences: ["https://management.azure.com"],
  tenant: undefined,
  subscription: undefined,
};
const graph: RequestFacts = { ...arm, audiences: ["https://graph.microsoft.com"] };

const examples: Policy = {
  version: 1,
  defaults: { sessionIdle: "10m", sessionMax: "12h", promptTimeout: 60 },
  rules: [
    {
      name: "terraform-infra",
      caller: { exe: "/usr/bin/terraform", cwd: "/home/me/infra/**" },
      request: { audience: "https://management.azure.com" },
      action: "allow",
    },
    {
      name: "graph-for-azkeep-rest",
      caller: { exe: "/usr/bin/node", argv: "* */bin/azkeep.js rest *" },
      request: { audience: "https://graph.microsoft.com" },
      action: "allow",
    },
    { name: "no-graph", request: { audience: "https://graph.microsoft.com" }, action: "deny" },
    {
      name: "cron-backup",
      caller: { terminal: false, unit: "cron.service", name: "backup.sh" },
      action: "confirm",
      remember: "1h",
    },
  ],
};

describe("policy: rules", () => {
  it("durations and globs", () => {
    assert.equal(parseDuration("10m"), 600_000);
    assert.equal(parseDuration("1h30m"), 5_400_000);
    assert.equal(parseDuration("2d"), 172_800_000);
    for (const bad of ["", "10", "m", "1x", "-1h"]) assert.equal(parseDuration(bad), undefined, bad);
    assert.ok(globToRegExp("/home/*/infra").test("/home/me/infra"));
    assert.ok(!globToRegExp("/home/*/infra").test("/home/a/b/infra"));
    assert.ok(globToRegExp("/home/**").test("/home/a/b/infra"));
    assert.ok(!globToRegExp("a.b").test("axb"));
  });

  it("the examples of docs/policy.md decide as documented", () => {
    const m = (c: CallerFacts, r: RequestFacts) => matchRule(examples, c, r)?.name;
    assert.equal(m(caller(), arm), "terraform-infra");
    assert.equal(m(caller({ cwd: "/home/me/other" }), arm), undefined); // another folder: the defaults
    assert.equal(m(caller({ exe: "/tmp/terraform" }), arm), undefined); // same name, other path
    assert.equal(m(caller(), graph), "no-graph");
    const rest = caller({
      exe: "/usr/bin/node",
      argv: ["node", "/usr/lib/azkeep/bin/azkeep.js", "rest", "--url", "x"],
    });
    assert.equal(m(rest, graph), "graph-for-azkeep-rest");
    assert.equal(m(caller({ exe: "/usr/bin/node", argv: ["node", "evil.js", "rest"] }), graph), "no-graph");
    // Two audiences, one of them Graph: the allow rule for ARM does not cover it.
    assert.equal(
      m(caller(), { ...arm, audiences: ["https://management.azure.com", "https://graph.microsoft.com"] }),
      "no-graph",
    );
    assert.equal(
      m(caller({ tty: undefined, unit: "cron.service", exe: "/home/me/bin/backup.sh" }), arm),
      "cron-backup",
    );
  });

  it("an unknown caller matches no caller condition (never trusted), only request-only rules", () => {
    const unknown = caller({ known: false, exe: undefined, argv: undefined, cwd: undefined });
    assert.equal(matchRule(examples, unknown, arm), undefined);
    assert.equal(matchRule(examples, unknown, graph)?.name, "no-graph");
    const allowAll: Policy = {
      ...examples,
      rules: [{ name: "terminal", caller: { terminal: false }, action: "allow" }],
    };
    assert.equal(matchRule(allowAll, caller({ known: false, tty: undefined }), arm), undefined);
  });

  it("validation names the problem", () => {
    assert.deepEqual(validatePolicy(examples), []);
    assert.deepEqual(validatePolicy(defaultPolicy()), []);
    const bad = { ...examples, rules: [{ name: "x", action: "maybe", caller: { exee: "/x" } }] };
    const errs = validatePolicy(bad);
    assert.ok(errs.some((e) => /action must be/.test(e)));
    assert.ok(errs.some((e) => /caller.exee is not a caller condition/.test(e)));
  });
});

describe("policy: the file is MACed", () => {
  it("saved → loads; edited outside azkeep → tampered; missing → defaults; another key → tampered", async () => {
    assert.equal(loadPolicy(dir, keys.policy).state, "default");
    await savePolicy(dir, keys.policy, examples);
    const ok = loadPolicy(dir, keys.policy);
    assert.equal(ok.state, "ok");
    assert.deepEqual(ok.state === "ok" && ok.policy.rules, examples.rules);
    const path = join(dir, POLICY_FILE);
    const text = readFileSync(path, "utf8");
    writeFileSync(path, text.replace('"/home/me/infra/**"', '"/**"'));
    const t = loadPolicy(dir, keys.policy);
    assert.equal(t.state, "tampered");
    assert.match(t.state === "tampered" ? t.message : "", /changed outside azkeep/);
    writeFileSync(path, text);
    assert.equal(loadPolicy(dir, deriveReleaseKeys(Buffer.alloc(32, 2)).policy).state, "tampered");
    writeFileSync(path, "{");
    assert.equal(loadPolicy(dir, keys.policy).state, "tampered");
    // The MAC key is neither the log key nor the root.
    assert.notDeepEqual(keys.log, keys.policy);
  });
});

describe("policy: changes, and the sealed mark", () => {
  it("applyChange: add (last, --before), remove, reset; a name used twice or missing is refused", () => {
    const p = applyChange(examples, {
      kind: "add",
      rule: { name: "first", caller: { tty: "/dev/pts/9" }, action: "confirm", remember: "1h" },
      before: "terraform-infra",
    });
    assert.deepEqual(
      p.rules.map((r) => r.name),
      ["first", "terraform-infra", "graph-for-azkeep-rest", "no-graph", "cron-backup"],
    );
    assert.equal(examples.rules.length, 4, "the policy given is not changed");
    assert.deepEqual(
      applyChange(p, { kind: "remove", name: "no-graph" }).rules.map((r) => r.name),
      ["first", "terraform-infra", "graph-for-azkeep-rest", "cron-backup"],
    );
    assert.deepEqual(applyChange(p, { kind: "reset" }), defaultPolicy());
    assert.throws(
      () => applyChange(p, { kind: "add", rule: { name: "first", action: "deny" } }),
      /has a rule named 'first' already/,
    );
    assert.throws(() => applyChange(p, { kind: "remove", name: "nope" }), /no rule named 'nope'/);
    assert.throws(
      () => applyChange(p, { kind: "add", rule: { name: "x", action: "deny" }, before: "nope" }),
      /--before: .*no rule named 'nope'/,
    );
    assert.throws(
      () =>
        applyChange(p, {
          kind: "add",
          rule: { name: "x", request: { kind: "everything" as "token" }, action: "deny" },
        }),
      /request.kind must be token, profile, write/,
    );
  });

  it("describeRule says what a rule allows", () => {
    assert.equal(
      describeRule(examples.rules[0]!),
      "allow tokens for https://management.azure.com to: executable /usr/bin/terraform, running in /home/me/infra/**, without asking",
    );
    assert.equal(
      describeRule({ name: "s", caller: { tty: "/dev/pts/3" }, action: "confirm", remember: "1h" }),
      "ask you before releasing everything (tokens, account data, store writes) to: on terminal /dev/pts/3; an approval lasts 1h",
    );
    assert.equal(
      describeRule({ name: "w", request: { kind: "write" }, action: "deny" }),
      "deny store writes (sign-in, sign-out, default subscription) to every program",
    );
  });

  it("a write has no audience: a rule about an audience never decides one", () => {
    const tokenRule: Policy = {
      ...examples,
      rules: [{ name: "arm", request: { audience: "https://management.azure.com" }, action: "allow" }],
    };
    const write: RequestFacts = { kind: "write", audiences: [], tenant: undefined, subscription: undefined };
    assert.equal(matchRule(tokenRule, caller(), write), undefined);
    const writes: Policy = {
      ...examples,
      rules: [{ name: "w", request: { kind: "write" }, action: "deny" }],
    };
    assert.equal(matchRule(writes, caller(), write)?.name, "w");
    assert.equal(matchRule(writes, caller(), arm), undefined);
  });

  describe("the gate against the seal's mark (a real caller without a terminal)", () => {
    const gdir = join(dir, "gate");
    mkdirSync(gdir, { recursive: true });
    // A process in its own session, without a terminal: the defaults deny it (no-terminal).
    const bg = spawn("sleep", ["60"], { detached: true, stdio: "ignore" });
    after(() => bg.kill("SIGKILL"));
    const req = (): ReleaseRequest => ({
      peer: { pid: bg.pid!, uid: 0, gid: 0 },
      kind: "token",
      resource: "https://management.azure.com",
    });
    const v1: Policy = {
      ...defaultPolicy(),
      rules: [{ name: "sleep", caller: { name: "sleep" }, request: { kind: "token" }, action: "allow" }],
    };
    const marks: string[] = [];
    let answer: "allow" | "cancel" = "allow";
    const asked: string[] = [];
    const confirm: ConfirmFn = (d) => {
      asked.push(d.description);
      return Promise.resolve({ answer });
    };
    const gate = new PolicyGate({ configDir: gdir, mode: "default", confirm });
    const seen = {
      mark: (m: string) => {
        marks.push(m);
        return Promise.resolve();
      },
      write: (p: Policy) => savePolicy(gdir, keys.policy, p),
    };
    gate.setKeys(keys, seen);
    const file = join(gdir, POLICY_FILE);
    let v1Text = "";

    it("first sight: a valid file is taken and its MAC sealed", async () => {
      await savePolicy(gdir, keys.policy, v1);
      v1Text = readFileSync(file, "utf8");
      assert.deepEqual(await gate.decide(req()), { allow: true, rule: "sleep" });
      assert.deepEqual(marks, [(JSON.parse(v1Text) as { mac: string }).mac]);
    });

    it("a change: shown with who asks; Deny changes nothing; Allow writes it and seals its MAC", async () => {
      answer = "cancel";
      await assert.rejects(
        gate.changePolicy(
          { ...req(), kind: "policy", op: "policy remove" },
          { kind: "remove", name: "sleep" },
        ),
        (e: Error & { code?: string }) => e.code === "denied" && /not changed: you denied it/.test(e.message),
      );
      assert.match(
        asked[0]!,
        /remove rule 'sleep', which says:\n {2}allow tokens to: executable named sleep/,
      );
      assert.match(asked[0]!, new RegExp(`Asked by:\\npid ${bg.pid} \\S*sleep 60`));
      assert.equal(readFileSync(file, "utf8"), v1Text);
      answer = "allow";
      const view = await gate.changePolicy(
        { ...req(), kind: "policy", op: "policy remove" },
        { kind: "remove", name: "sleep" },
      );
      assert.deepEqual(view.rules, []);
      assert.equal(view.source, "file");
      assert.equal((await gate.decide(req())).rule, "no-terminal");
      assert.deepEqual(gate.showPolicy().rules, []);
    });

    it("an older copy azkeep wrote, put back: refused as tampered, named; reset (confirmed) is the way back", async () => {
      writeFileSync(file, v1Text);
      const d = await gate.decide(req());
      assert.equal(d.allow, false);
      assert.equal(d.rule, "policy-tampered");
      assert.match(d.reason!, /policy\.json is not the policy azkeep wrote last/);
      assert.throws(() => gate.showPolicy(), /not the policy azkeep wrote last/);
      await assert.rejects(
        gate.changePolicy(
          { ...req(), kind: "policy", op: "policy add" },
          { kind: "add", rule: { name: "n", action: "deny" } },
        ),
        /not trusted .*azkeep agent policy reset/,
      );
      const view = await gate.changePolicy(
        { ...req(), kind: "policy", op: "policy reset" },
        { kind: "reset" },
      );
      assert.equal(view.source, "file");
      assert.match(
        asked[asked.length - 1]!,
        /reset to the defaults, replacing the policy in force[\s\S]*not trusted/,
      );
      assert.equal((await gate.decide(req())).rule, "no-terminal");
    });

    it("mark 'none' (removal confirmed): no file = the defaults, any file = refused", async () => {
      const other = new PolicyGate({ configDir: gdir, mode: "default", confirm });
      other.setKeys(keys, { ...seen, mac: NO_POLICY_MARK });
      assert.equal((await other.decide(req())).rule, "policy-tampered");
      rmSync(file);
      assert.equal((await other.decide(req())).rule, "no-terminal");
    });
  });

  it("store migrate keeps the release secret and the mark: the policy still verifies and is the one marked", async () => {
    using tmp = tempStoreDir();
    const insecure = tmp.ctx({ AZKEEP_STORE_PROVIDER: "insecure-file" });
    const store = await openStore(insecure);
    const root = Buffer.alloc(32, 7);
    const k = deriveReleaseKeys(root);
    mkdirSync(tmp.dir, { recursive: true, mode: 0o700 });
    const mac = await savePolicy(tmp.dir, k.policy, examples);
    await store.update((st) => {
      st.secrets.refreshTokens.push(refreshToken("rt-secret"));
      st.secrets.release = { root: root.toString("base64"), policy: mac };
    });
    const pass = { AZKEEP_PASSPHRASE: "correct horse battery staple" };
    await migrateStore(tmp.ctx(pass), "passphrase");
    const after = await (await openStore(tmp.ctx(pass))).readSecrets();
    assert.equal(after.release?.root, root.toString("base64"));
    assert.equal(after.release?.policy, mac);
    const load = loadPolicy(tmp.dir, deriveReleaseKeys(Buffer.from(after.release.root, "base64")).policy);
    assert.equal(load.state === "ok" && load.mac, mac);
  });
});
