/**
 * `-o yaml` against the real thing: az 2.45 prints knack's `yaml.safe_dump(result,
 * default_flow_style=False, allow_unicode=True)` (knack/output.py `format_yaml`; keys sorted by
 * PyYAML's default), so every output here is compared byte for byte with Debian's python3-yaml
 * (`/usr/bin/python3`, the Python az runs on) given the same JSON. A fixed table of strings
 * (indicators, quotes, tabs, breaks, unicode, folding at 80 columns) in every position (root,
 * value, key, list item, nested), a seeded fast-check property over JSON-shaped values, and the
 * shipped bundle (`bin/azkeep.js token decode -o yaml`, which prints a token's claims as given).
 */
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from "node:child_process";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { formatYaml } from "../../src/cli/output/format.js";
import { runCli, tempHome } from "../helpers/cli.js";
import { PYTHON, requirePyYaml } from "../helpers/require-tool.js";

/** knack's call, verbatim. */
const DUMP = "yaml.safe_dump(v, default_flow_style=False, allow_unicode=True)";
const SEED = 20260612;
const RUNS = 2000;

/** JSON in ASCII only (Python reads it whatever its locale; lone surrogates survive). */
function asciiJson(v: unknown): string {
  return JSON.stringify(v).replace(
    /[\u007f-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/** One python3 process answering `safe_dump` of one JSON line per request. */
class PyYaml {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly waiting: { resolve: (text: string) => void; reject: (e: Error) => void }[] = [];
  private buffer = "";

  constructor() {
    const server = [
      "import json, sys, yaml",
      "for line in sys.stdin.buffer:",
      "    v = json.loads(line)",
      `    sys.stdout.write(json.dumps(${DUMP}) + "\\n")`,
      "    sys.stdout.flush()",
    ].join("\n");
    this.child = spawn(PYTHON, ["-c", server], { stdio: ["pipe", "pipe", "pipe"] });
    this.child.stdout.setEncoding("utf8");
    this.child.stdout.on("data", (d: string) => {
      this.buffer += d;
      for (let nl = this.buffer.indexOf("\n"); nl >= 0; nl = this.buffer.indexOf("\n")) {
        const line = this.buffer.slice(0, nl);
        this.buffer = this.buffer.slice(nl + 1);
        this.waiting.shift()?.resolve(JSON.parse(line) as string);
      }
    });
    let stderr = "";
    this.child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    this.child.on("exit", (code) => {
      for (const w of this.waiting.splice(0))
        w.reject(new Error(`python3 (PyYAML) exited ${code}: ${stderr}`));
    });
  }

  dump(value: unknown): Promise<string> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.child.stdin.write(asciiJson(value) + "\n");
    });
  }

  close(): void {
    this.child.stdin.end();
  }
}

const words = (n: number, w = "word") => Array.from({ length: n }, (_, i) => `${w}${i % 10}`).join(" ");

/** Strings chosen from PyYAML's emitter: each branch of analyze_scalar and the three writers. */
const TABLE: string[] = [
  // empty, resolvers (YAML 1.1 types written as strings are quoted)
  "",
  "yes",
  "No",
  "ON",
  "off",
  "y",
  "n",
  "true",
  "False",
  "null",
  "Null",
  "~",
  "0",
  "-1",
  "+1",
  "017",
  "0o17",
  "0x1F",
  "0b101",
  "1_000",
  "1:20",
  "190:20:30",
  "1e5",
  "1.0e+5",
  "1.5",
  "-.5",
  ".5",
  "-.5e+3",
  ".inf",
  "-.Inf",
  ".NaN",
  "1.",
  "6.8523015e+5",
  "685.230_15e+03",
  "2001-12-14",
  "2001-12-14t21:59:43.10-05:00",
  "2001-12-14 21:59:43.10 -5",
  "2001-12-15 2:59:43.10",
  "2026-12-02 06:09:55.000000",
  "<<",
  "=",
  "!",
  "&",
  "*",
  "yes\n",
  "1\n",
  // leading indicators
  "-",
  "- x",
  "-x",
  "--",
  "---",
  "--- x",
  "...",
  "... x",
  "?",
  "? x",
  "?x",
  ":",
  ": x",
  ":x",
  ",x",
  "[x",
  "]x",
  "{x",
  "}x",
  "#x",
  "&x",
  "*x",
  "!x",
  "|x",
  ">x",
  "'x",
  '"x',
  "%x",
  "@x",
  "`x",
  // indicators inside
  "a: b",
  "a:b",
  "a:",
  "a #b",
  "a#b",
  "a ,b",
  "a,b",
  "a?b",
  "a[b]",
  "a{b}",
  "a - b",
  "x'y",
  'x"y',
  "it's",
  "it's: x",
  "it's\ta",
  "'",
  "''",
  '"',
  "\\",
  "a\\b",
  "http://x.y/z?q=1#frag",
  "https://management.azure.com/",
  "/subscriptions/0000/resourceGroups/rg",
  // whitespace
  " ",
  "  ",
  " x",
  "x ",
  " x ",
  "a  b",
  "a\tb",
  "\t",
  "\tx",
  "x\t",
  "a \tb",
  "\n",
  "\n\n",
  "a\nb",
  "a\n\nb",
  "a\n",
  "\na",
  "a \nb",
  "a\n b",
  "a\n\n b",
  "a\r\nb",
  "a\rb",
  "a\x85b",
  "a\u2028b",
  "a\u2029b",
  "\u2028",
  "a\u2028\u2029b",
  "line1\nline2\n",
  // control and unicode
  "\0",
  "a\x01b",
  "\x07\x08\x0b\x0c\x1b",
  "\x7f",
  "a\x9fb",
  "a\xa0b",
  "\xa0",
  "é",
  "naïve café",
  "日本語のテキスト",
  "😀",
  "a😀b",
  "😀\t",
  "\ud800",
  "a\udfffb",
  "\ufeff",
  "a\ufeffb",
  "\ufffd",
  "\ufffe",
  "\uffff",
  "\ue000",
  "\ud7ff",
  "\u{10fffd}",
  "\u{10ffff}",
  "Ω: x",
  "€ 'q'",
  "\u200b",
  // folding at 80 columns: plain, single-quoted, double-quoted
  words(30),
  words(30) + ":",
  "x".repeat(81),
  "x".repeat(200),
  "x ".repeat(60),
  "a  b ".repeat(30),
  words(12) + "   " + words(12),
  "- " + words(30),
  "it's " + words(30),
  words(30) + "\t",
  words(10) + "\t" + words(20),
  "\t" + "y".repeat(100),
  "x".repeat(79) + " " + "y".repeat(10) + "\t",
  "x".repeat(70) + " " + "y".repeat(20) + "\n" + words(20),
  words(20) + "\n\n" + words(20) + "\n",
  ("é" + "ü".repeat(9) + " ").repeat(12),
  ("😀".repeat(5) + " ").repeat(20),
  ("😀".repeat(5) + " ").repeat(20) + "\t",
  "a".repeat(78) + " b c",
  "a".repeat(80) + " b",
  "a".repeat(120),
  "k".repeat(122),
  "k".repeat(123),
];

/** Each string as PyYAML meets it in az's results: root, value, key, list item, nested. */
function placements(s: string): unknown[] {
  return [
    s,
    { k: s },
    { [s]: "v" },
    { [s]: [s] },
    [s, { [s]: { [s]: s } }],
    { a: { b: [s, [s, { c: s }], []], d: {} }, z: [{}, [], null, 1.5, true] },
    { [`${s}${s}`]: { x: [s] } },
  ];
}

/** Strings made of what the emitter cares about, with runs long enough to fold. */
function stringArb(): fc.Arbitrary<string> {
  const special = fc.constantFrom(
    ..." -?:,[]{}#&*!|>'\"%@`\\~.=<+_0123456789eExXbBoOnNyYtTfF".split(""),
    "\t",
    "\n",
    "\r",
    "\0",
    "\x1b",
    "\x7f",
    "\x85",
    "\xa0",
    "\u2028",
    "\u2029",
    "\ufeff",
    "\ud800",
    "\ufffe",
    "é",
    "😀",
  );
  const word = fc.constantFrom(
    "yes",
    "null",
    "true",
    "0x1F",
    "2024-01-01",
    "1.5",
    "it's",
    "a: b",
    "- ",
    " #",
  );
  const unit = fc.oneof(
    { weight: 4, arbitrary: special },
    { weight: 4, arbitrary: fc.constantFrom(..."abcdefghij".split("")) },
    { weight: 2, arbitrary: fc.constantFrom(" ", " ", "  ") },
    { weight: 1, arbitrary: word },
    { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 1 }) },
  );
  return fc.oneof(
    { weight: 3, arbitrary: fc.string({ unit, maxLength: 12 }) },
    { weight: 2, arbitrary: fc.string({ unit, minLength: 60, maxLength: 240 }) },
    { weight: 1, arbitrary: fc.constantFrom(...TABLE) },
  );
}

/** JSON values as az's results are: dicts, lists, strings, numbers, booleans, null. */
function valueArb(): fc.Arbitrary<unknown> {
  const str = stringArb();
  const scalar = fc.oneof(
    { weight: 6, arbitrary: str },
    { weight: 1, arbitrary: fc.integer() },
    { weight: 1, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }) },
    { weight: 1, arbitrary: fc.constantFrom(true, false, null) },
  );
  const { value } = fc.letrec<{ value: unknown }>((tie) => ({
    value: fc.oneof(
      { depthSize: "small", withCrossShrink: true },
      scalar,
      fc.array(tie("value"), { maxLength: 4 }),
      fc.dictionary(str, tie("value"), { maxKeys: 4 }),
    ),
  }));
  return value;
}

describe("-o yaml is byte for byte PyYAML's safe_dump, as az prints it", { timeout: 300_000 }, () => {
  let py: PyYaml | undefined;
  before(() => {
    if (spawnSync(PYTHON, ["-c", "import yaml"], { stdio: "ignore" }).status === 0) py = new PyYaml();
  });
  after(() => py?.close());

  it(`a table of ${TABLE.length} strings, each as root, value, key, list item and nested`, async (t) => {
    if (!requirePyYaml(t)) return;
    const bad: string[] = [];
    let n = 0;
    for (const s of TABLE)
      for (const v of placements(s)) {
        n++;
        const [got, want] = await Promise.all([formatYaml(v), py!.dump(v)]);
        if (got !== want)
          bad.push(`${asciiJson(v)}\n  azkeep: ${asciiJson(got)}\n  PyYAML: ${asciiJson(want)}`);
      }
    assert.equal(bad.length, 0, `${bad.length} of ${n} differ:\n${bad.slice(0, 20).join("\n")}`);
  });

  it(`fast-check: ${RUNS} JSON values (seed ${SEED})`, async (t) => {
    if (!requirePyYaml(t)) return;
    await fc.assert(
      fc.asyncProperty(valueArb(), async (v) => {
        // What az's Python sees is the JSON azkeep would print (NaN-free, -0 as 0).
        const json = JSON.parse(JSON.stringify(v ?? null)) as unknown;
        if (json === null) return; // a null result prints nothing in every format
        assert.equal(await formatYaml(json), await py!.dump(json), asciiJson(json));
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });

  it("the shipped bundle: token decode -o yaml/yamlc prints the claims as PyYAML does", async (t) => {
    if (!requirePyYaml(t)) return;
    const sampled = fc.sample(stringArb(), { seed: SEED, numRuns: 300 });
    const claims: Record<string, unknown> = {};
    [...TABLE, ...sampled].forEach((s, i) => {
      const id = String(i).padStart(4, "0");
      claims[`v${id}`] = s;
      claims[s] = [s, { [`k${id}`]: s }];
    });
    claims.nested = { list: [TABLE, { empty: [], map: {} }], n: [0, -1, 1.5, 1e21, 5e-7, true, null] };
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
    const jwt = `${b64({ alg: "none" })}.${b64(claims)}.`;
    using home = tempHome();
    const expected = await py!.dump(JSON.parse(JSON.stringify(claims)));
    for (const format of ["yaml", "yamlc"]) {
      const r = await runCli(["token", "decode", "-o", format, "--query", "claims"], {
        env: home.env,
        input: jwt,
      });
      assert.equal(r.code, 0, r.stderr);
      if (r.stdout !== expected) {
        const a = r.stdout.split("\n");
        const b = expected.split("\n");
        const i = a.findIndex((line, j) => line !== b[j]);
        assert.fail(
          `-o ${format}: line ${i + 1} differs\n  azkeep: ${asciiJson(a.slice(i, i + 3))}\n  PyYAML: ${asciiJson(b.slice(i, i + 3))}`,
        );
      }
    }
    // A string result on its own (PyYAML ends a plain one with `...`).
    for (const s of ["", "yes", "a\tb", "it's: x", "a\nb", words(30), "it's " + words(30)]) {
      const key = `v${String(TABLE.indexOf(s)).padStart(4, "0")}`;
      const r = await runCli(["token", "decode", "-o", "yaml", "--query", `claims.${key}`], {
        env: home.env,
        input: jwt,
      });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, await py!.dump(claims[key]), `${key}: ${asciiJson(claims[key])}`);
    }
  });
});
