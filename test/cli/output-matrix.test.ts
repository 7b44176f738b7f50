/**
 * Every output format through every entry point of the shipped bundles, with and without
 * `--query`: the full frame (`dist/cli/main.js`, commander), the fast lane (`bin/azkeep.js
 * account get-access-token` → `dist/cli/fast.cjs`), the global-flag-first route (`azkeep -o X
 * account get-access-token`, which bin hands to the frame) and the `az` shim (`shim/az`). The
 * same cached token must come out byte for byte the same everywhere, in the shape az prints.
 * Also: a reader that goes away (`| head`, `| true`) is a quiet exit 0 on every entry point.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { BIN } from "../helpers/cli.js";
import { runProcess } from "../helpers/process.js";
import { REPO, SHIM_DIR, signedIn, type SignedIn } from "../tokens/signed-in.js";

const FORMATS = ["json", "jsonc", "tsv", "table", "yaml", "yamlc", "none"] as const;
type Format = (typeof FORMATS)[number];
const MAIN_JS = join(REPO, "dist", "cli", "main.js");
const SHIM = join(SHIM_DIR, "az");
const QUERY = "{Token:accessToken, Exp:expiresOn, Type:tokenType}";

type Entry = "frame" | "fast" | "global-first" | "shim";
const ENTRIES: Entry[] = ["frame", "fast", "global-first", "shim"];

/** argv (after the program) and the program for `command` in `format` through `entry`. */
function invocation(entry: Entry, command: string[], rest: string[]): { cmd: string; args: string[] } {
  switch (entry) {
    case "frame":
      return {
        cmd: process.execPath,
        args: [
          "--input-type=module",
          "-e",
          `const m = await import(${JSON.stringify(MAIN_JS)}); const code = await m.main(process.argv.slice(1)); process.stdout.write("", () => process.exit(code));`,
          ...command,
          ...rest,
        ],
      };
    case "fast":
      return { cmd: process.execPath, args: [BIN, ...command, ...rest] };
    case "global-first":
      return { cmd: process.execPath, args: [BIN, ...rest, ...command] };
    case "shim":
      return { cmd: SHIM, args: [...command, ...rest] };
  }
}

function checkShape(format: Format, query: boolean, out: string, token: string, expiresOn: string): void {
  switch (format) {
    case "json":
    case "jsonc": {
      const v = JSON.parse(out) as Record<string, unknown>;
      if (query) assert.deepEqual(Object.keys(v), ["Exp", "Token", "Type"], "json keys are sorted");
      else assert.deepEqual(Object.keys(v), [...Object.keys(v)].sort());
      assert.match(out, /^\{\n {2}"/, "indented by two");
      return;
    }
    case "tsv":
      // az: a query's multiselect keeps its order; the command's own dict is sorted.
      assert.equal(
        out,
        query
          ? `${token}\t${expiresOn}\tBearer\n`
          : `${token}\t${expiresOn}\t${out.split("\t")[2]}\tc0ffee00-0000-4000-8000-000000000001\t11111111-1111-1111-1111-111111111111\tBearer\n`,
      );
      return;
    case "table": {
      const [head, dashes, row, extra] = out.split("\n");
      assert.equal(extra, "");
      const cols = query ? ["Token", "Exp", "Type"] : ["AccessToken", "ExpiresOn", "Expires_on"];
      assert.deepEqual(head!.split(/\s+/).slice(0, 3), cols);
      assert.ok(row!.startsWith(token));
      // tabulate: each column at least its header plus two wide.
      for (const [i, d] of dashes!.split("  ").entries())
        assert.ok(d.length >= head!.split(/\s+/)[i]!.length + 2, `column ${i}`);
      return;
    }
    case "yaml":
    case "yamlc":
      // A date-like string is quoted, as PyYAML does (YAML 1.1 would read a timestamp).
      if (query) assert.equal(out, `Exp: '${expiresOn}'\nToken: ${token}\nType: Bearer\n`);
      else
        assert.match(
          out,
          new RegExp(`^accessToken: ${token}\nexpiresOn: '${expiresOn}'\nexpires_on: \\d+\n`),
        );
      return;
    case "none":
      assert.equal(out, "");
  }
}

describe(
  "every output format through every entry point (built bundles, emulator)",
  { timeout: 300_000 },
  () => {
    let s: SignedIn;
    let env: Record<string, string>;
    let token: string;
    let expiresOn: string;
    before(async () => {
      s = await signedIn();
      env = { ...s.env, PATH: process.env.PATH ?? "/usr/bin:/bin" };
      const warm = await s.cli(["account", "get-access-token", "-o", "json"]);
      assert.equal(warm.code, 0, warm.stderr);
      ({ accessToken: token, expiresOn } = JSON.parse(warm.stdout) as {
        accessToken: string;
        expiresOn: string;
      });
    });
    after(async () => {
      await s?.close();
    });

    for (const query of [false, true]) {
      for (const format of FORMATS) {
        it(`get-access-token -o ${format}${query ? " --query" : ""}: the same on all four entry points`, async () => {
          const rest = ["-o", format, ...(query ? ["--query", QUERY] : [])];
          const results = await Promise.all(
            ENTRIES.map(async (entry) => {
              const { cmd, args } = invocation(entry, ["account", "get-access-token"], rest);
              const r = await runProcess(cmd, args, { env, timeoutMs: 60_000, cwd: REPO });
              return { entry, ...r };
            }),
          );
          for (const r of results) {
            assert.equal(r.code, 0, `${r.entry}: ${r.stderr}`);
            assert.doesNotMatch(r.stderr, /bug in azkeep|\n\s+at /, r.entry);
          }
          for (const r of results.slice(1))
            assert.equal(r.stdout, results[0]!.stdout, `${r.entry} prints what the frame prints`);
          checkShape(format, query, results[0]!.stdout, token, expiresOn);
        });
      }
    }

    for (const format of ["tsv", "table", "yaml"] as const) {
      it(`account show / account list -o ${format}: the frame, global-first and the shim agree`, async () => {
        for (const command of [
          ["account", "show"],
          ["account", "list"],
        ]) {
          for (const query of [[], ["--query", "[].{Name:name, Id:id, Default:isDefault}"]]) {
            const q = command[1] === "show" && query.length ? ["--query", "{Name:name, Id:id}"] : query;
            const outs = await Promise.all(
              (["frame", "global-first", "shim"] as Entry[]).map(async (entry) => {
                const { cmd, args } = invocation(entry, command, ["-o", format, ...q]);
                const r = await runProcess(cmd, args, { env, timeoutMs: 60_000, cwd: REPO });
                assert.equal(r.code, 0, `${entry}: ${r.stderr}`);
                return r.stdout;
              }),
            );
            assert.equal(outs[1], outs[0], `${command.join(" ")} ${q.join(" ")}: global-first`);
            assert.equal(outs[2], outs[0], `${command.join(" ")} ${q.join(" ")}: shim`);
            if (format === "tsv" && q.length && command[1] === "list")
              assert.match(outs[0]!, /^Contoso Dev\tc0ffee00-0000-4000-8000-000000000001\tTrue\n/);
            if (format === "table" && q.length)
              assert.match(outs[0]!, command[1] === "list" ? /^Name\s+Id\s+Default\n/ : /^Name\s+Id\n/);
          }
        }
      });
    }

    /** Runs with stdout a pipe whose reader is already gone. */
    function closedStdout(cmd: string, args: string[]): Promise<{ code: number | null; stderr: string }> {
      return new Promise((resolve, reject) => {
        const child = spawn(cmd, args, { env, cwd: REPO, stdio: ["ignore", "pipe", "pipe"], detached: true });
        child.stdout.destroy();
        let stderr = "";
        child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
        const timer = setTimeout(() => process.kill(-child.pid!, "SIGKILL"), 60_000);
        child.on("error", reject);
        child.on("close", (code) => {
          clearTimeout(timer);
          resolve({ code, stderr });
        });
      });
    }

    const closedCases: [string, Entry, string[]][] = [
      ["the frame: cloud list", "fast", ["cloud", "list"]],
      ["the frame: --help", "fast", ["--help"]],
      ["the frame: account get-access-token --help", "fast", ["account", "get-access-token", "--help"]],
      ["the frame: account list -o table", "fast", ["account", "list", "-o", "table"]],
      ["the fast lane: get-access-token", "fast", ["account", "get-access-token"]],
      ["global-first: -o tsv account get-access-token", "global-first", ["account", "get-access-token"]],
      ["the shim: get-access-token", "shim", ["account", "get-access-token"]],
      ["the shim: account list", "shim", ["account", "list"]],
    ];
    for (const [name, entry, command] of closedCases) {
      it(`a closed stdout is a quiet exit 0: ${name}`, async () => {
        const { cmd, args } = invocation(entry, command, entry === "global-first" ? ["-o", "tsv"] : []);
        const r = await closedStdout(cmd, args);
        assert.equal(r.code, 0, r.stderr);
        assert.doesNotMatch(r.stderr, /EPIPE|bug in azkeep|\n\s+at |ERROR/);
      });
    }
  },
);
