/**
 * What a CLI of this kind is expected to have, through the built `bin/azkeep.js`: `--version`
 * with the build, help wrapped at the terminal's width with an ENVIRONMENT section naming every
 * variable azkeep reads, numeric defaults as numbers, and shell completion that works in a
 * real bash, a real fish (`complete -C`) and a real interactive zsh (Tab typed in tmux).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { runCli, tempHome } from "../helpers/cli.js";
import { requireTool } from "../helpers/require-tool.js";
import { startTmux } from "../helpers/tmux.js";
import { REPO } from "../tokens/signed-in.js";

function sources(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) {
      if (e !== "emulator") sources(p, out);
    } else if (p.endsWith(".ts")) out.push(p);
  }
  return out;
}

describe("help, version, completion (built CLI)", () => {
  it("--version: version, build, Node, key provider, config folder", async () => {
    using home = tempHome();
    const r = await runCli(["--version"], { env: { ...home.env, AZKEEP_STORE_PROVIDER: "keyutils" } });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^azkeep \d+\.\d+\.\d+\n/);
    assert.match(r.stdout, /^build +[0-9a-f]{7,}(-dirty)? \d{4}-\d\d-\d\d$/m);
    assert.match(r.stdout, new RegExp(`^node +${process.version.replace(/\./g, "\\.")} `, "m"));
    assert.match(r.stdout, /^key provider +keyutils \(AZKEEP_STORE_PROVIDER/m);
    assert.ok(r.stdout.includes(`config folder  ${home.env.AZKEEP_CONFIG_DIR}\n`), r.stdout);
  });

  it("--help names every environment variable azkeep reads (scanned from src/)", async () => {
    const read = new Set<string>();
    for (const f of sources(join(REPO, "src")))
      for (const m of readFileSync(f, "utf8").matchAll(
        /\benv(?:\?)?\.([A-Z][A-Z0-9_]+)|\benv\["([A-Z0-9_]+)"\]/g,
      ))
        read.add((m[1] ?? m[2])!);
    assert.ok(read.size > 20 && read.has("AZKEEP_CONFIG_DIR"), [...read].join(" "));
    const r = await runCli(["--help"], { env: { COLUMNS: "200" } });
    assert.equal(r.code, 0);
    const env = r.stdout.slice(r.stdout.indexOf("\nEnvironment:\n"));
    assert.ok(env.length > 100, "an Environment section");
    assert.match(r.stdout, /\nFiles:\n[\s\S]*<config folder>\/tokens\.sealed/);
    const missing = [...read].filter((v) => !new RegExp(`\\b${v}\\b`).test(env));
    assert.deepEqual(missing, [], "variables read but not documented in --help");
  });

  it("help is wrapped at the terminal's width (COLUMNS), paragraphs not broken mid-sentence", async () => {
    for (const cols of [60, 100]) {
      for (const args of [["--help"], ["account", "get-access-token", "--help"], ["completion", "--help"]]) {
        const r = await runCli(args, { env: { COLUMNS: String(cols) } });
        assert.equal(r.code, 0);
        // Examples are command lines (not wrapped); everything before them is.
        const body = r.stdout.split(/\nExamples?:\n/)[0]!;
        // (A single word longer than the width, a URL, cannot be wrapped.)
        const long = body.split("\n").filter((l) => l.length > cols && /\S\s+\S/.test(l.trim()));
        assert.deepEqual(long, [], `${args.join(" ")} at ${cols}`);
      }
    }
    const r = await runCli(["--help"], { env: { COLUMNS: "100" } });
    assert.match(r.stdout, /as the Azure CLI does, with no\n/, 'one paragraph, not broken after "does,"');
  });

  it("numeric defaults print as numbers", async () => {
    const r = await runCli(["emulator", "start", "--help"], { env: { COLUMNS: "200" } });
    assert.match(r.stdout, /\(default: 0\)/);
    assert.doesNotMatch(r.stdout, /\(default: "\d+"\)/);
  });

  it("bash completion works in a real bash (complete -p, compgen through the function)", async () => {
    using home = tempHome();
    const r = await runCli(["completion", "bash"], { env: home.env });
    assert.equal(r.code, 0, r.stderr);
    const script = join(home.home, "azkeep.bash");
    writeFileSync(script, r.stdout);
    const probe = `source ${JSON.stringify(script)} || exit 9
complete -p azkeep
t() { COMP_WORDS=("$@"); COMP_CWORD=$((\${#COMP_WORDS[@]}-1)); COMPREPLY=(); _azkeep; echo "$*|\${COMPREPLY[*]}"; }
t azkeep acc
t azkeep account ge
t azkeep account get-access-token --resource-t
t azkeep account get-access-token --resource-type ms
t azkeep -o ya
t azkeep completion ""
`;
    const b = spawnSync("bash", ["--norc", "--noprofile", "-c", probe], {
      encoding: "utf8",
      timeout: 20_000,
    });
    assert.equal(b.status, 0, b.stderr);
    assert.deepEqual(b.stdout.trim().split("\n"), [
      "complete -o default -F _azkeep azkeep",
      "azkeep acc|account",
      "azkeep account ge|get-access-token",
      "azkeep account get-access-token --resource-t|--resource-type",
      "azkeep account get-access-token --resource-type ms|ms-graph",
      "azkeep -o ya|yaml yamlc",
      "azkeep completion |bash zsh fish --output --query --debug --verbose --only-show-errors",
    ]);
  });

  it("fish completion works in a real fish (complete -C through the generated conditions)", async (t) => {
    if (!requireTool(t, "fish", "apt-get install fish")) return;
    using home = tempHome();
    const r = await runCli(["completion", "fish"], { env: home.env });
    assert.equal(r.code, 0, r.stderr);
    const script = join(home.home, "azkeep.fish");
    writeFileSync(script, r.stdout);
    const lines = [
      "azkeep acc",
      "azkeep account ",
      "azkeep account get-access-token --resource-t",
      "azkeep account get-access-token --resource-type ms",
      "azkeep -o ya",
      "azkeep completion ",
    ];
    // Each candidate without its description; the words joined by spaces after a '|'.
    const probe = `source ${script}; or exit 9
for l in ${lines.map((l) => `'${l}'`).join(" ")}
  echo "$l|"(string join -- ' ' (complete -C $l | string replace -r '\t.*' ''))
end`;
    const f = spawnSync("fish", ["--no-config", "-c", probe], {
      encoding: "utf8",
      timeout: 20_000,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home.home },
    });
    assert.equal(f.status, 0, f.stderr);
    // The generated conditions must not print fish errors (an empty path once broke `test`).
    assert.equal(f.stderr, "");
    assert.deepEqual(f.stdout.trim().split("\n"), [
      "azkeep acc|account",
      "azkeep account |clear get-access-token list set show",
      "azkeep account get-access-token --resource-t|--resource-type",
      "azkeep account get-access-token --resource-type ms|ms-graph",
      "azkeep -o ya|yaml yamlc",
      "azkeep completion |bash fish zsh",
    ]);
  });

  it("zsh completion works in a real interactive zsh (compinit, Tab typed in tmux)", async (t) => {
    if (!requireTool(t, "zsh", "apt-get install zsh")) return;
    if (!requireTool(t, "tmux", "apt-get install tmux")) return;
    using home = tempHome();
    const r = await runCli(["completion", "zsh"], { env: home.env });
    assert.equal(r.code, 0, r.stderr);
    const script = join(home.home, "_azkeep");
    writeFileSync(script, r.stdout);
    await using tmux = startTmux();
    const { target } = tmux.pane(`env -i HOME=${home.home} TERM=xterm PATH=/usr/bin:/bin zsh -f`);
    await tmux.waitFor(target, /[#%] $/m);
    tmux.type(target, `autoload -U compinit && compinit -u && source ${script} && echo COMPLETION-READY`);
    tmux.send(target, "Enter");
    await tmux.waitFor(target, /^COMPLETION-READY$/m);
    tmux.type(target, "azkeep account ge");
    tmux.send(target, "Tab");
    await tmux.waitFor(target, /azkeep account get-access-token $/m);
    tmux.type(target, "--resource-t");
    tmux.send(target, "Tab");
    await tmux.waitFor(target, /get-access-token --resource-type $/m);
    tmux.type(target, "ms");
    tmux.send(target, "Tab");
    await tmux.waitFor(target, /get-access-token --resource-type ms-graph $/m);
    tmux.send(target, "C-u");
    tmux.type(target, "azkeep -o ya");
    tmux.send(target, "Tab");
    // Two candidates: the first Tab inserts their common prefix, the second lists both.
    await tmux.waitFor(target, /azkeep -o yaml\s*$/m);
    tmux.send(target, "Tab");
    await tmux.waitFor(target, /^yaml\s+yamlc\s*$/m);
  });

  it("zsh and fish scripts; an unknown shell is a usage error", async () => {
    const z = await runCli(["completion", "zsh"]);
    assert.equal(z.code, 0);
    assert.match(
      z.stdout,
      /^#compdef azkeep\n[\s\S]*bashcompinit[\s\S]*complete -o default -F _azkeep azkeep/,
    );
    const f = await runCli(["completion", "fish"]);
    assert.equal(f.code, 0);
    assert.match(
      f.stdout,
      /complete -c azkeep -n '__azkeep_path '\\''account get-access-token'\\''' -l scope/,
    );
    assert.match(f.stdout, /-l output -s o -x -a 'json jsonc tsv table yaml yamlc none'/);
    const bad = await runCli(["completion", "tcsh"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^ERROR: .*'tcsh'/);
  });
});
