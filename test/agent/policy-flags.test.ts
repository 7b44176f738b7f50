/** `azkeep agent policy add`'s flags → a rule (or a usage error naming the flag), apart from the agent. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ruleFromFlags, type AddFlags } from "../../src/cli/commands/agent/policy/add.js";
import { AzkeepError } from "../../src/core/errors.js";
import { validatePolicy, defaultPolicy } from "../../src/agent/policy.js";

describe("agent policy add: flags → rule", () => {
  const ok: [string, AddFlags, unknown][] = [
    [
      "Terraform from one folder",
      {
        name: "terraform-infra",
        action: "allow",
        exe: "/usr/bin/terraform",
        cwd: "/home/me/infra/**",
        audience: "https://management.azure.com/",
      },
      {
        rule: {
          name: "terraform-infra",
          caller: { exe: "/usr/bin/terraform", cwd: "/home/me/infra/**" },
          request: { audience: "https://management.azure.com" },
          action: "allow",
        },
      },
    ],
    [
      "a bare --exe is the file name; /.default is dropped from the audience",
      {
        name: "tf",
        action: "deny",
        exe: "terraform",
        audience: "https://Graph.microsoft.com/.default",
        before: "x",
      },
      {
        rule: {
          name: "tf",
          caller: { name: "terraform" },
          request: { audience: "https://graph.microsoft.com" },
          action: "deny",
        },
        before: "x",
      },
    ],
    [
      "a shell for an hour",
      { name: "shell", action: "confirm", tty: "/dev/pts/3", remember: "1h" },
      { rule: { name: "shell", caller: { tty: "/dev/pts/3" }, action: "confirm", remember: "1h" } },
    ],
    [
      "booleans, run, kind",
      {
        name: "cron",
        action: "allow",
        terminal: "false",
        container: "true",
        run: "false",
        unit: "cron.service",
        kind: "token",
      },
      {
        rule: {
          name: "cron",
          caller: { unit: "cron.service", terminal: false, container: true, run: false },
          request: { kind: "token" },
          action: "allow",
        },
      },
    ],
    [
      "deny store writes to everyone",
      { name: "no-writes", action: "deny", kind: "write" },
      { rule: { name: "no-writes", request: { kind: "write" }, action: "deny" } },
    ],
  ];
  for (const [what, flags, want] of ok)
    it(what, () => {
      const got = ruleFromFlags(flags);
      assert.deepEqual(got, want);
      assert.deepEqual(validatePolicy({ ...defaultPolicy(), rules: [got.rule] }), []);
    });

  const bad: [AddFlags, RegExp][] = [
    [{ action: "allow" }, /required: --name/],
    [{ name: "a b", action: "allow", exe: "x" }, /--name: 'a b' is not a rule name/],
    [{ name: "x" }, /required: --action/],
    [{ name: "x", action: "maybe" }, /--action: invalid choice: 'maybe'/],
    [{ name: "x", action: "allow" }, /allow rule with no condition/],
    [{ name: "x", action: "allow", argv: "* rest *" }, /--argv: .*needs --exe/],
    [{ name: "x", action: "deny", exe: "bin/terraform" }, /--exe: 'bin\/terraform' is neither a name/],
    [{ name: "x", action: "deny", cwd: "infra" }, /--cwd: 'infra' is not an absolute folder/],
    [{ name: "x", action: "deny", tty: "pts/3" }, /--tty: 'pts\/3' is not a terminal/],
    [{ name: "x", action: "deny", terminal: "yes" }, /--terminal: invalid choice: 'yes'/],
    [
      { name: "x", action: "deny", kind: "all" },
      /--kind: invalid choice: 'all' \(choose from token, profile, write\)/,
    ],
    [{ name: "x", action: "allow", exe: "tf", remember: "1h" }, /--remember: only a confirm rule/],
    [{ name: "x", action: "confirm", exe: "tf", remember: "soon" }, /--remember: 'soon' is not a duration/],
    [{ name: "x", action: "deny", exe: "" }, /--exe: the value is empty/],
  ];
  it("bad flags are usage errors (exit 2) naming the flag", () => {
    for (const [flags, re] of bad)
      assert.throws(
        () => ruleFromFlags(flags),
        (e: unknown) => e instanceof AzkeepError && e.code === "usage" && re.test(e.message),
        JSON.stringify(flags),
      );
  });
});
