import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { normalizeArgv } from "../../src/cli/main.js";
import { redact } from "../../src/core/redact.js";
import { runCli, tempHome } from "../helpers/cli.js";

describe("command-line frame", () => {
  it("-o=json becomes -o json (Terraform's form)", () => {
    assert.deepEqual(normalizeArgv(["account", "show", "-o=json"]), ["account", "show", "-o", "json"]);
    // After `--` the words are the child's (`azkeep exec -- terraform -chdir=…`): untouched.
    assert.deepEqual(normalizeArgv(["exec", "-o=json", "--", "x", "-o=y"]), [
      "exec",
      "-o",
      "json",
      "--",
      "x",
      "-o=y",
    ]);
  });

  it("--help explains and exits 0", async () => {
    const r = await runCli(["--help"]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /Usage: azkeep/);
    assert.match(r.stdout, /--output <format>/);
    assert.match(r.stdout, /Exit codes/);
  });

  it("--version prints the package version", async () => {
    const r = await runCli(["--version"]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^azkeep \d+\.\d+\.\d+\n/);
  });

  const usageCases: [string, string[], RegExp][] = [
    ["unknown option", ["--bogus"], /unknown option '--bogus'/],
    ["unknown command", ["frobnicate"], /unknown command 'frobnicate'/],
    ["bad output format", ["-o", "xml", "emulator", "start"], /'xml' is not a valid value for '--output'/],
  ];
  for (const [name, args, re] of usageCases) {
    it(`usage error: ${name} → exit 2, one ERROR line, no stack`, async () => {
      const r = await runCli(args);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /^ERROR: /);
      assert.match(r.stderr, re);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
      assert.equal(r.stdout, "");
    });
  }
});

describe("redaction", () => {
  const jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXZhbHVl";
  const cases: [string, string][] = [
    [`token ${jwt} end`, "token [REDACTED] end"],
    [
      "grant_type=refresh_token&refresh_token=0.AAAbbb-ccc&scope=x",
      "grant_type=refresh_token&refresh_token=[REDACTED]&scope=x",
    ],
    ['{"client_secret": "s3cr3t-value"}', '{"client_secret": "[REDACTED]"}'],
    ["Authorization: Bearer abc.def.ghi", "Authorization: Bearer [REDACTED]"],
    ["password=hunter22&username=alice", "password=[REDACTED]&username=alice"],
  ];
  for (const [input, expected] of cases) {
    it(`redacts ${expected}`, () => assert.equal(redact(input), expected));
  }
  it("leaves ordinary text alone", () => {
    const s = "GET https://management.azure.com/subscriptions?api-version=2022-12-01 200";
    assert.equal(redact(s), s);
  });
});

describe("--query errors", () => {
  for (const q of ["[?", "{a:", "foo..bar"]) {
    it(`a query that does not parse (${q}) is a usage error before the command runs`, async () => {
      using home = tempHome();
      const r = await runCli(["cloud", "list", "--query", q], { env: home.env });
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /^ERROR: argument --query: invalid jmespath_type value/);
      assert.doesNotMatch(r.stderr, /bug in azkeep/);
      assert.equal(r.stdout, "");
    });
  }
  it("a function on the real result still works", async () => {
    using home = tempHome();
    const r = await runCli(["cloud", "list", "--query", "length(@)"], { env: home.env });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(Number(r.stdout.trim()) >= 3);
  });
});
