/**
 * The `az` shim's two lanes must be one command. `shim/az account get-access-token …` loads the
 * agent lane first (`dist/shim/agent-lane.cjs`), which answers from a running agent and hands
 * everything else to the full shim (`dist/shim/az.cjs`) before writing a byte. Every caller form
 * below (test/shim/callers.test.ts, reference §5: @azure/identity, azure-identity for Python,
 * Terraform's go-azure-sdk, Pulumi and Go azidentity through `/bin/sh -c`, and the flags around
 * them) runs through the shim and through the full shim alone, without an agent and then with
 * one, and stdout, stderr and the exit code must be the same everywhere; an agent's error (a
 * locked agent) reads the same from both; inside `azkeep exec` and for an agent that goes away
 * mid-request the full shim answers.
 *
 * Which lane answered is read from the bundles the process loaded: a `--require` hook (through
 * NODE_OPTIONS, so the shim runs as its callers run it) records each `dist/shim/*.cjs` read.
 * PATH holds only the shim (or the full shim) and `node`: no real az to pass anything to.
 */
import assert from "node:assert/strict";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runProcess, type ProcessResult } from "../helpers/process.js";
import { jwtClaims } from "../helpers/jwt.js";
import {
  agentStatus,
  alive,
  killAgent,
  startAgent,
  waitFor,
  type Status,
  killAgentOf,
} from "../agent/helpers.js";
import {
  CONTOSO,
  DEV_SUB,
  DEV_SUB_NAME,
  FABRIKAM,
  PROD_SUB,
  REPO,
  SHIM_DIR,
  signedIn,
  type SignedIn,
} from "../tokens/signed-in.js";

const ARM_V1 = "https://management.core.windows.net/";
const TOKEN = ["account", "get-access-token"];

/** Records, per process, the shim bundles it read (`dist/shim/<name>.cjs`), in order. */
const HOOK = `"use strict";
const fs = require("node:fs");
const log = process.env.AZKEEP_TEST_LOADS;
if (log) {
  const read = fs.readFileSync;
  const loaded = [];
  fs.readFileSync = function (file, ...rest) {
    const m = typeof file === "string" ? /\\/dist\\/shim\\/([\\w-]+)\\.cjs$/.exec(file) : null;
    if (m) loaded.push(m[1]);
    return read.call(this, file, ...rest);
  };
  process.on("exit", () => fs.appendFileSync(log, JSON.stringify({ script: process.argv[1], loaded }) + "\\n"));
}
`;

/** The full shim alone, as `shim/az` ran it before it had an agent lane (and marked as a shim). */
const FULL_AZ = `#!/usr/bin/env node
// azkeep-az-shim (the full shim alone, for tests: never the real az)
"use strict";
const { load } = require(${JSON.stringify(join(REPO, "shim", "code-cache.cjs"))});
load(${JSON.stringify(join(REPO, "dist", "shim", "az.cjs"))})
  .main(process.argv.slice(2), __filename)
  .then((code) => process.exit(code));
`;

/** How a case answers with an agent running: the agent lane, or the full shim (its fallback). */
type Lane = "lane" | "full";

interface Case {
  name: string;
  /** The argv `az` is run with (by name, through PATH) … */
  argv?: string[];
  /** … or a `/bin/sh -c` line, as Pulumi, Go azidentity and @azure/identity 4.13 run it. */
  sh?: string;
  env?: Record<string, string>;
  code?: number;
  /** With an agent; default `lane`. */
  withAgent?: Lane;
}

const CASES: Case[] = [
  {
    name: "@azure/identity 4.14: execFile, --resource and --tenant",
    argv: [...TOKEN, "--output", "json", "--resource", ARM_V1, "--tenant", FABRIKAM],
  },
  {
    name: "@azure/identity 4.14: --subscription carrying literal quotes",
    argv: [...TOKEN, "--output", "json", "--resource", ARM_V1, "--subscription", `"${DEV_SUB_NAME}"`],
  },
  {
    name: "@azure/identity 4.13: the joined string through a shell",
    sh: `az account get-access-token --output json --resource ${ARM_V1} --subscription "${DEV_SUB_NAME}"`,
  },
  {
    name: "azure-identity for Python: --output json --resource, AZURE_CORE_NO_COLOR",
    argv: [...TOKEN, "--output", "json", "--resource", "https://management.azure.com"],
    env: { AZURE_CORE_NO_COLOR: "true" },
  },
  {
    name: "azure-identity for Python (older): a shell, --resource only",
    sh: "az account get-access-token --output json --resource https://management.azure.com",
  },
  {
    name: "Terraform: --scope …/.default -o=json, TZ=Asia/Tokyo",
    argv: [...TOKEN, "--scope", "https://management.azure.com/.default", "-o=json"],
    env: { TZ: "Asia/Tokyo" },
  },
  {
    name: "Terraform: --scope … --subscription <id> -o=json",
    argv: [
      ...TOKEN,
      "--scope",
      "https://management.azure.com/.default",
      "--subscription",
      DEV_SUB,
      "-o=json",
    ],
  },
  {
    name: "Terraform: --scope … --tenant <id> -o=json",
    argv: [...TOKEN, "--scope", "https://management.azure.com/.default", "--tenant", FABRIKAM, "-o=json"],
  },
  {
    name: "Go azidentity / Pulumi: a shell, -o json --resource, a quoted subscription name, TZ=Asia/Kolkata",
    sh: `az account get-access-token -o json --resource ${ARM_V1} --subscription "${DEV_SUB_NAME}"`,
    env: { TZ: "Asia/Kolkata" },
  },
  {
    name: "the benchmark's form: --resource … -o json",
    argv: [...TOKEN, "--resource", ARM_V1, "-o", "json"],
  },
  { name: "no flags", argv: TOKEN },
  { name: "--query accessToken -o tsv", argv: [...TOKEN, "--query", "accessToken", "-o", "tsv"] },
  {
    name: "-t <tenant> --query tenant -o tsv",
    argv: [...TOKEN, "-t", CONTOSO, "--query", "tenant", "-o", "tsv"],
  },
  { name: "-n <name> --query subscription", argv: [...TOKEN, "-n", DEV_SUB_NAME, "--query", "subscription"] },
  {
    name: "--scope for Microsoft Graph, --output=json",
    argv: [...TOKEN, "--scope", "https://graph.microsoft.com/.default", "--output=json"],
  },
  { name: "--resource-type arm", argv: [...TOKEN, "--resource-type", "arm"] },
  { name: "-o yaml", argv: [...TOKEN, "-o", "yaml"] },
  { name: "-o jsonc (az's shim never colours)", argv: [...TOKEN, "-o", "jsonc"] },
  { name: "-o table", argv: [...TOKEN, "-o", "table"] },
  { name: "-o none", argv: [...TOKEN, "-o", "none"] },
  { name: "AZURE_CORE_OUTPUT=tsv", argv: TOKEN, env: { AZURE_CORE_OUTPUT: "tsv" } },
  { name: "--only-show-errors", argv: [...TOKEN, "--only-show-errors", "--query", "tokenType"] },
  // The agent's error, worded by the lane.
  {
    name: "an unknown subscription (the agent's error)",
    argv: [...TOKEN, "-s", "no-such-subscription"],
    code: 1,
  },
  // What the lane leaves to the full shim, in az's words.
  { name: "--verbose (the full shim)", argv: [...TOKEN, "--verbose", "-o", "tsv"], withAgent: "full" },
  {
    name: "--tenant and --subscription",
    argv: [...TOKEN, "--tenant", FABRIKAM, "-s", DEV_SUB],
    code: 1,
    withAgent: "full",
  },
  { name: "--resource-type bogus", argv: [...TOKEN, "--resource-type", "bogus"], code: 2, withAgent: "full" },
  { name: "--query that does not parse", argv: [...TOKEN, "--query", "[?"], code: 2, withAgent: "full" },
  { name: "-o xml", argv: [...TOKEN, "-o", "xml"], code: 2, withAgent: "full" },
  { name: "an unknown flag", argv: [...TOKEN, "--bogus"], code: 2, withAgent: "full" },
  { name: "azkeep's own flag (not az's)", argv: [...TOKEN, "--force-refresh"], code: 2, withAgent: "full" },
  // Help and a stray word are the real az's: none on PATH here.
  { name: "--help (the real az's)", argv: [...TOKEN, "--help"], code: 1, withAgent: "full" },
  { name: "a stray word (the real az's)", argv: [...TOKEN, "extra"], code: 1, withAgent: "full" },
  {
    name: "another config folder, not signed in, no agent of its own",
    argv: [...TOKEN, "--output", "json", "--resource", ARM_V1],
    env: { AZKEEP_CONFIG_DIR: "/nonexistent/azkeep" },
    code: 1,
    withAgent: "full",
  },
];

interface Answer extends ProcessResult {
  /** The shim bundles the `az` process loaded, in order. */
  loaded: string[];
}

describe(
  "the az shim's agent lane and the full shim answer every caller form the same",
  { timeout: 600_000 },
  () => {
    let s: SignedIn;
    let root: string;
    let hook: string;
    let full: string;
    let nodeOnly: string;
    let agent: Status | undefined;
    let runs = 0;
    const withoutAgent = new Map<string, Answer>();

    before(async () => {
      root = mkdtempSync(join(tmpdir(), "azkeep-shim-lanes-"));
      hook = join(root, "record-loads.cjs");
      writeFileSync(hook, HOOK);
      full = join(root, "full");
      mkdirSync(full);
      writeFileSync(join(full, "az"), FULL_AZ);
      chmodSync(join(full, "az"), 0o755);
      // Only `node` (for the shebangs) besides the shim: no real az to pass anything to.
      nodeOnly = join(root, "node-only");
      mkdirSync(nodeOnly);
      symlinkSync(process.execPath, join(nodeOnly, "node"));
      s = await signedIn();
      const warm = await s.cli([...TOKEN, "-o", "none"]);
      assert.equal(warm.code, 0, warm.stderr);
    });
    after(async () => {
      await killAgentOf(s, agent);
      await s?.close();
      if (root) rmSync(root, { recursive: true, force: true });
    });

    /** Runs `az` (the shim, or the full shim alone) as the case's caller does. */
    async function az(c: Pick<Case, "argv" | "sh" | "env">, which: "shim" | "full"): Promise<Answer> {
      const loads = join(root, `loads-${++runs}.jsonl`);
      const env = {
        ...s.env,
        PATH: `${which === "shim" ? SHIM_DIR : full}:${nodeOnly}`,
        LANG: "C.UTF-8",
        NODE_OPTIONS: `--require ${hook}`,
        AZKEEP_TEST_LOADS: loads,
        ...c.env,
      };
      const r = c.sh
        ? await runProcess("/bin/sh", ["-c", c.sh], { env, cwd: "/bin", timeoutMs: 60_000 })
        : await runProcess("az", c.argv!, { env, cwd: "/bin", timeoutMs: 60_000 });
      return { ...r, loaded: loadedBy(loads, "az") };
    }

    function assertSame(a: ProcessResult, b: ProcessResult, what: string): void {
      assert.equal(a.code, b.code, `${what}: exit code\n${a.stderr}\n${b.stderr}`);
      assert.equal(a.stdout, b.stdout, `${what}: stdout`);
      assert.equal(a.stderr, b.stderr, `${what}: stderr`);
    }

    function assertAnswer(c: Case, r: ProcessResult): void {
      assert.equal(r.signal, null);
      assert.equal(r.code, c.code ?? 0, r.stderr);
      if ((c.code ?? 0) === 0) {
        assert.equal(
          r.stderr,
          "",
          "nothing on stderr on success (JS reads any `az login` there as signed out)",
        );
        if (!(c.argv ?? []).includes("none")) assert.notEqual(r.stdout, "");
      } else {
        assert.equal(r.stdout, "");
        assert.match(r.stderr, /^ERROR: /);
      }
      assert.doesNotMatch(r.stderr, /bug in azkeep|\n\s+at /);
    }

    describe("without an agent: the lane hands every form to the full shim", () => {
      for (const c of CASES) {
        it(c.name, async () => {
          const [shim, alone] = await Promise.all([az(c, "shim"), az(c, "full")]);
          withoutAgent.set(c.name, shim);
          assertAnswer(c, shim);
          assertSame(shim, alone, "shim vs the full shim alone");
          assert.deepEqual(shim.loaded, ["agent-lane", "az"], "the lane was asked, and handed over");
        });
      }

      it("other commands do not load the lane", async () => {
        const r = await az({ argv: ["account", "show", "-o", "json"] }, "shim");
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(r.loaded, ["az"]);
      });
    });

    describe("with an agent: the lane answers, byte for byte as the full shim and as without an agent", () => {
      before(async () => {
        agent = await startAgent(s);
      });

      for (const c of CASES) {
        it(c.name, async () => {
          const [shim, alone] = await Promise.all([az(c, "shim"), az(c, "full")]);
          assertAnswer(c, shim);
          assertSame(shim, alone, "shim vs the full shim alone, both with the agent");
          const before = withoutAgent.get(c.name);
          assert.ok(before, "the case ran without an agent first");
          assertSame(shim, before, "with the agent vs without");
          const lane = c.withAgent ?? "lane";
          assert.deepEqual(
            shim.loaded,
            lane === "lane" ? ["agent-lane"] : ["agent-lane", "az"],
            lane === "lane" ? "the agent lane answered alone" : "the lane handed over to the full shim",
          );
        });
      }

      it("a token from the lane is the agent's, for what was asked", async () => {
        const r = await az(
          { argv: [...TOKEN, "--output", "json", "--resource", ARM_V1, "--tenant", FABRIKAM] },
          "shim",
        );
        assert.deepEqual(r.loaded, ["agent-lane"]);
        const v = JSON.parse(r.stdout) as Record<string, unknown>;
        assert.equal(jwtClaims(String(v.accessToken)).tid, FABRIKAM);
        assert.ok(Number.isInteger(v.expires_on));
        assert.ok(!("subscription" in v));
      });

      it("the lane's own fallbacks, before a byte is written (its bundle, called directly)", async () => {
        // The lane with a fallback that only reports it was called: what the lane leaves alone.
        const lane = join(REPO, "dist", "shim", "agent-lane.cjs");
        const script =
          `const { load } = require(${JSON.stringify(join(REPO, "shim", "code-cache.cjs"))});` +
          `load(${JSON.stringify(lane)}).main(process.argv.slice(1), async (o) => { process.stdout.write("fallback " + JSON.stringify(o ?? {})); return 0; })` +
          `.then((code) => process.exit(code));`;
        const ask = (argv: string[], env: Record<string, string> = {}) =>
          runProcess(process.execPath, ["-e", script, "--", ...argv], {
            env: { ...s.env, PATH: nodeOnly, ...env },
            timeoutMs: 30_000,
          });
        const plain = [...TOKEN, "--resource", ARM_V1, "-o", "json"];
        const answered = await ask(plain);
        assert.equal(answered.code, 0, answered.stderr);
        assert.ok((JSON.parse(answered.stdout) as { accessToken?: string }).accessToken, "the lane answers");
        for (const [argv, env] of [
          // Inside `azkeep exec` the run's endpoint answers (shim/az does not even load the lane).
          [plain, { AZKEEP_EXEC_ENDPOINT: "http://127.0.0.1:9/no-such-run" }],
          [plain, { AZKEEP_AGENT: "off" }],
          [[...plain, "--debug"], {}],
          [[...plain, "--verbose"], {}],
          [[...plain, "--bogus"], {}],
          [[...TOKEN, "-h"], {}],
          [["account", "show"], {}],
          [["login"], {}],
          [["--debug", ...TOKEN], {}],
        ] as [string[], Record<string, string>][]) {
          const r = await ask(argv, env);
          assert.equal(r.stdout, "fallback {}", `${argv.join(" ")} ${JSON.stringify(env)}`);
          assert.equal(r.stderr, "");
          assert.equal(r.code, 0);
        }
      });

      it("inside `azkeep exec`: the full shim answers from the run's endpoint, never the agent", async () => {
        const loads = join(root, `loads-exec-${++runs}.jsonl`);
        const line = (sub: string) =>
          `az account get-access-token --resource ${ARM_V1} --subscription ${sub} -o json`;
        const r = await s.cli(["exec", "--", "/bin/sh", "-c", `${line(DEV_SUB)} && ${line(PROD_SUB)}`], {
          env: {
            PATH: nodeOnly,
            NODE_OPTIONS: `--require ${hook}`,
            AZKEEP_TEST_LOADS: loads,
          },
        });
        // The run's own subscription: answered by its endpoint. Another: refused there, where the
        // agent would have answered it.
        assert.equal(r.code, 1, r.stderr);
        const token = JSON.parse(r.stdout) as Record<string, unknown>;
        assert.equal(token.subscription, DEV_SUB);
        assert.match(r.stderr, /This azkeep exec run is for subscription/);
        const azRuns = readLoads(loads).filter((x) => x.script.endsWith("/shim/az"));
        assert.equal(azRuns.length, 2);
        for (const x of azRuns) assert.deepEqual(x.loaded, ["az"], "the lane is not loaded inside exec");
      });
    });

    describe("a locked agent: the lane words its error as the full shim does", () => {
      before(async () => {
        const locked = await s.cli(["agent", "lock"]);
        assert.equal(locked.code, 0, locked.stderr);
        await waitFor(() => !agent?.vaultPid || !alive(agent.vaultPid));
      });

      for (const c of CASES.filter((x) => (x.withAgent ?? "lane") === "lane").slice(0, 10)) {
        it(c.name, async () => {
          const [shim, alone] = await Promise.all([az(c, "shim"), az(c, "full")]);
          assert.equal(shim.code, 1, shim.stderr);
          assert.equal(shim.stdout, "");
          assert.equal(
            shim.stderr,
            "ERROR: The azkeep agent is locked.\nRun `azkeep agent unlock` to unlock it.\n",
          );
          assertSame(shim, alone, "shim vs the full shim alone, both with the locked agent");
          assert.deepEqual(shim.loaded, ["agent-lane"], "the agent lane answered alone");
        });
      }

      after(async () => {
        const un = await s.cli(["agent", "unlock"]);
        assert.equal(un.code, 0, un.stderr);
        agent = { ...agent!, ...(JSON.parse(un.stdout) as Status) };
      });
    });

    describe("an agent that goes away mid-request", () => {
      it("agent-only mode: the full shim says the agent stopped answering (not that none runs)", async () => {
        await s.ageAccessTokens(-1);
        const only = await s.cli(["agent", "start", "--agent-only", "--policy", "open"]);
        assert.equal(only.code, 0, only.stderr);
        agent = await agentStatus(s);
        await s.emu.control.clearRequests();
        await s.emu.control.injectFault({ endpoint: "token", type: "delay", delayMs: 3_000, count: 1 });
        const client = az({ argv: [...TOKEN, "--resource", ARM_V1, "-o", "json"] }, "shim");
        await waitFor(async () => (await s.emu.control.countRequests({ endpoint: "token" })) >= 1, 20_000);
        killAgent(agent.pid, agent.vaultPid);
        const r = await client;
        assert.equal(r.code, 1, r.stderr);
        assert.equal(r.stdout, "");
        assert.equal(
          r.stderr,
          "ERROR: The azkeep agent stopped answering.\nRun `azkeep agent start` to start it again.\n",
        );
        assert.deepEqual(r.loaded, ["agent-lane", "az"], "the lane handed over to the full shim");
      });
    });
  },
);

/** What the recording hook wrote: one record per node process that read a shim bundle or not. */
function readLoads(file: string): { script: string; loaded: string[] }[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { script: string; loaded: string[] });
}

/** The bundles the one process whose script is named `name` loaded. */
function loadedBy(file: string, name: string): string[] {
  const runs = readLoads(file).filter((x) => x.script.endsWith(`/${name}`));
  assert.equal(runs.length, 1, `one ${name} process: ${JSON.stringify(runs)}`);
  return runs[0]!.loaded;
}
