/**
 * The fast lane (`bin/azkeep.js account get-access-token` → `dist/cli/fast.cjs`, its own argv
 * parser in `src/shim/argv.ts`, no commander) and the full frame (`dist/cli/main.js`,
 * commander) must be one command: every flag case below runs through both as a process, and
 * stdout, stderr and the exit code must be the same. Cases the fast lane does not understand go
 * to the frame by design; this test is what keeps the two parsers from drifting apart. The same
 * cases run again with an agent, where the bin answers through the agent lane.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { BIN } from "../helpers/cli.js";
import { runProcess } from "../helpers/process.js";
import { killAgent, startAgent, type Status } from "../agent/helpers.js";
import {
  CONTOSO,
  DEV_SUB,
  DEV_SUB_NAME,
  FABRIKAM,
  REPO,
  signedIn,
  type SignedIn,
} from "../tokens/signed-in.js";

const MAIN_JS = join(REPO, "dist", "cli", "main.js");
const FRAME = `const m = await import(${JSON.stringify(MAIN_JS)}); const code = await m.main(process.argv.slice(1)); process.stdout.write("", () => process.exit(code));`;

/** `direct`: about the store this process opens, so not a case with an agent answering. */
const CASES: {
  name: string;
  args: string[];
  env?: Record<string, string>;
  code?: number;
  direct?: boolean;
}[] = [
  { name: "no flags", args: [] },
  { name: "-o tsv", args: ["-o", "tsv"] },
  { name: "--output=yaml", args: ["--output=yaml"] },
  { name: "-o=json (Terraform)", args: ["-o=json"] },
  { name: "--query accessToken -o tsv", args: ["--query", "accessToken", "-o", "tsv"] },
  { name: "--query multiselect -o table", args: ["--query", "{T:tokenType, S:subscription}", "-o", "table"] },
  { name: "--query that does not parse", args: ["--query", "[?"], code: 2 },
  { name: "--query with no value", args: ["--query"], code: 2 },
  { name: "-o with a bad value", args: ["-o", "xml"], code: 2 },
  { name: "-o with no value", args: ["-o"], code: 2 },
  { name: "--scope with no value (az: the default resource)", args: ["--scope", "-o", "tsv"] },
  { name: "--scope one", args: ["--scope", "https://management.azure.com//.default", "-o", "tsv"] },
  { name: "--scope=… inline", args: ["--scope=https://management.core.windows.net//.default"] },
  { name: "--resource", args: ["--resource", "https://management.core.windows.net/", "-o", "yaml"] },
  { name: "--resource with no value", args: ["--resource"], code: 2 },
  { name: "--resource-type arm", args: ["--resource-type", "arm"] },
  { name: "--resource-type bogus", args: ["--resource-type", "bogus"], code: 2 },
  { name: "-s id", args: ["-s", DEV_SUB] },
  { name: "--subscription name", args: ["--subscription", DEV_SUB_NAME] },
  { name: "-n name", args: ["-n", DEV_SUB_NAME, "--query", "subscription"] },
  { name: "unknown subscription", args: ["-s", "no-such-subscription"], code: 1 },
  { name: "-t tenant", args: ["-t", CONTOSO, "--query", "tenant"] },
  { name: "--tenant and --subscription", args: ["--tenant", FABRIKAM, "-s", DEV_SUB], code: 1 },
  { name: "an unknown flag", args: ["--bogus"], code: 2 },
  { name: "a stray positional", args: ["extra"], code: 2 },
  { name: "--only-show-errors", args: ["--only-show-errors", "-o", "tsv"] },
  { name: "a switch given a value", args: ["--only-show-errors=yes"], code: 2 },
  { name: "--verbose (az's)", args: ["--verbose", "-o", "none"] },
  { name: "AZKEEP_CORE_OUTPUT=tsv", args: [], env: { AZKEEP_CORE_OUTPUT: "tsv" } },
  { name: "AZKEEP_CORE_OUTPUT=tsv, -o json wins", args: ["-o", "json"], env: { AZKEEP_CORE_OUTPUT: "tsv" } },
  {
    name: "AZKEEP_STORE_PROVIDER unknown",
    args: [],
    env: { AZKEEP_STORE_PROVIDER: "bogus" },
    code: 2,
    direct: true,
  },
  // The provider recorded with the store is the one that opens it.
  {
    name: "AZKEEP_STORE_PROVIDER another",
    args: [],
    env: { AZKEEP_STORE_PROVIDER: "passphrase" },
    direct: true,
  },
  { name: "--force-refresh", args: ["--force-refresh", "--query", "tokenType", "-o", "tsv"] },
  { name: "--claims-challenge", args: ["--claims-challenge", "e30=", "--query", "tokenType", "-o", "tsv"] },
  { name: "-o jsonc", args: ["-o", "jsonc"] },
  { name: "-o yamlc", args: ["-o", "yamlc"] },
  { name: "-o table", args: ["-o", "table"] },
];

/**
 * Runs every case through `bin/azkeep.js` (its lanes) and the frame, and compares. `agent`: with
 * an agent running, so the bin answers through the agent lane (`dist/cli/agent-lane.cjs`) and
 * the frame through the agent too.
 */
function compareLanes(title: string, withAgent: boolean): void {
  describe(title, { timeout: 300_000 }, () => {
    let s: SignedIn;
    let agent: Status | undefined;
    before(async () => {
      s = await signedIn();
      const warm = await s.cli(["account", "get-access-token", "-o", "none"]);
      assert.equal(warm.code, 0, warm.stderr);
      if (withAgent) agent = await startAgent(s);
    });
    after(async () => {
      killAgent(agent?.pid, agent?.vaultPid);
      await s?.close();
    });

    for (const c of CASES) {
      if (withAgent && c.direct) continue;
      it(c.name, async () => {
        const env = { ...s.env, ...c.env, PATH: process.env.PATH ?? "/usr/bin:/bin" };
        const argv = ["account", "get-access-token", ...c.args];
        const [fast, frame] = await Promise.all([
          runProcess(process.execPath, [BIN, ...argv], { env, cwd: REPO, timeoutMs: 60_000 }),
          runProcess(process.execPath, ["--input-type=module", "-e", FRAME, ...argv], {
            env,
            cwd: REPO,
            timeoutMs: 60_000,
          }),
        ]);
        assert.equal(fast.code, c.code ?? 0, `fast lane: ${fast.stderr}`);
        assert.equal(
          frame.code,
          fast.code,
          `exit: frame ${frame.code}, fast lane ${fast.code}\n${frame.stderr}`,
        );
        assert.equal(fast.stdout, frame.stdout, "stdout");
        const timing = (t: string) => t.replace(/Command ran in [\d.]+ seconds/, "Command ran in N seconds");
        assert.equal(timing(fast.stderr), timing(frame.stderr), "stderr");
        if (c.args.includes("--verbose")) assert.match(fast.stderr, /^INFO: Command ran in [\d.]+ seconds$/m);
        assert.doesNotMatch(fast.stderr, /bug in azkeep|\n\s+at /);
        if ((c.code ?? 0) === 0 && !c.args.includes("none")) assert.notEqual(fast.stdout, "");
        if (c.code) assert.match(fast.stderr, /^ERROR: /m);
        // With an agent, the token came from it: a lane that opened the store itself would have
        // warned about the insecure-file key.
        if (withAgent && (c.code ?? 0) === 0) assert.doesNotMatch(fast.stderr, /plain file/);
      });
    }

    it("--query of one field name is answered without loading jmespath; any other query loads it", async () => {
      // NODE_DEBUG=module: Node's module loader says on stderr what it loads.
      const env = { ...s.env, NODE_DEBUG: "module", PATH: process.env.PATH ?? "/usr/bin:/bin" };
      const run = (query: string) =>
        runProcess(process.execPath, [BIN, "account", "get-access-token", "--query", query, "-o", "tsv"], {
          env,
          cwd: REPO,
          timeoutMs: 60_000,
        });
      const [field, other] = await Promise.all([run("accessToken"), run("{T:tokenType}")]);
      assert.equal(field.code, 0, field.stderr);
      assert.equal(other.code, 0, other.stderr);
      assert.match(field.stdout, /^eyJ[\w-]+\.[\w-]+\.[\w-]*\n$/);
      assert.equal(other.stdout, "Bearer\n");
      assert.doesNotMatch(field.stderr, /jmespath/);
      assert.match(other.stderr, /jmespath/);
    });
  });
}

compareLanes("the fast lane and the frame answer every flag case the same (built bundles)", false);
compareLanes("the agent lane and the frame answer every flag case the same (agent running)", true);
