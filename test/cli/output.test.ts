import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { spawnSync } from "node:child_process";
import {
  applyQuery,
  formatJson,
  formatOutput,
  formatTable,
  formatTsv,
  formatYaml,
} from "../../src/cli/output/format.js";
import { PYTHON, requirePyYaml } from "../helpers/require-tool.js";

describe("output formats (az semantics)", () => {
  it("json sorts keys and indents by two, as knack does", () => {
    assert.equal(
      formatJson({ b: 1, a: { d: 2, c: 3 } }),
      '{\n  "a": {\n    "c": 3,\n    "d": 2\n  },\n  "b": 1\n}\n',
    );
  });

  const tsvCases: [string, unknown, string][] = [
    [
      "dict values in sorted-key order",
      { tokenType: "Bearer", accessToken: "x", expiresOn: "e" },
      "x\te\tBearer\n",
    ],
    ["a list is one line per element", ["a", "b"], "a\nb\n"],
    // knack prints a dict's values with Python's str(): True, None (checked against az 2.45).
    ["nested dict empty, nested list its length", [{ a: { x: 1 }, b: [1, 2, 3], c: true }], "\t3\tTrue\n"],
    ["null inside a dict is None", [{ a: null, b: 1 }], "None\t1\n"],
    ["a bare boolean is lower-case", true, "true\n"],
    ["a scalar is one line", "tok", "tok\n"],
  ];
  for (const [name, value, expected] of tsvCases) {
    it(`tsv: ${name}`, () => assert.equal(formatTsv(value), expected));
  }

  it("table: sorted, capitalised headers; id/type/etag, null and nested values left out", () => {
    const out = formatTable([
      { name: "Dev", id: "1", user: { name: "u" }, b: true, type: "t", n: null },
      { name: "Production", id: "2", user: { name: "u" }, b: false },
    ]);
    // tabulate: a column is at least its header plus two wide.
    assert.equal(out, "B      Name\n-----  ----------\nTrue   Dev\nFalse  Production\n");
  });

  it("table: a list of lists is Column1…, scalars are Result", () => {
    assert.equal(formatTable([["a", "bb"]]), "Column1    Column2\n---------  ---------\na          bb\n");
    assert.equal(formatTable("x"), "Result\n--------\nx\n");
  });

  it("--query: a multiselect keeps its order in tsv and table; the command's dicts are sorted", async () => {
    const value = [{ name: "n1", id: "i1", zeta: 1, alpha: 2 }];
    const picked = await applyQuery(value, "[].{Name:name, Id:id}");
    assert.equal(formatTsv(picked), "n1\ti1\n");
    assert.equal(formatTable(picked, undefined, true), "Name    Id\n------  ----\nn1      i1\n");
    const same = await applyQuery(value, "[0]");
    assert.equal(formatTsv(same), "2\ti1\tn1\t1\n");
  });

  it("a null result prints nothing in every format, as az", async () => {
    for (const f of ["json", "tsv", "table", "yaml"] as const)
      assert.equal(await formatOutput(null, f, { color: false }), "");
  });

  it("yaml is PyYAML's safe_dump (what az prints), checked against python3-yaml", async (t) => {
    if (!requirePyYaml(t)) return;
    const samples: unknown[] = [
      { expiresOn: "2026-12-02 06:09:55.000000", d: "2026-12-02", yes: "yes", on: "On", off: "OFF" },
      { n: "1796191795", hex: "0x1F", oct: "017", sexa: "1:20", inf: ".inf", nan: ".NaN", f: "1.0" },
      { nul: "null", tilde: "~", empty: "", t: "true", hash: "#c", colon: "a: b", dash: "- x" },
      { at: "@at", lead: "  x", trail: "x ", url: "https://management.azure.com/" },
      { merge: "<<", value: "=", neg: "-.5", dot: ".5", negExp: "-.5e+3", just: ".", multi: "line1\nline2" },
      { list: [1, "a", true, null], nested: { b: [], a: {} }, seq: [{ x: 1, y: [2] }] },
      [{ tenantId: "22222222-2222-2222-2222-222222222222" }],
      "plain",
      "yes",
      42,
      true,
      [],
      {},
    ];
    const py = spawnSync(
      PYTHON,
      [
        "-c",
        "import json,sys,yaml; print(json.dumps([yaml.safe_dump(v, default_flow_style=False, allow_unicode=True) for v in json.load(sys.stdin)]))",
      ],
      { input: JSON.stringify(samples), encoding: "utf8" },
    );
    assert.equal(py.status, 0, py.stderr);
    const expected = JSON.parse(py.stdout) as string[];
    for (const [i, v] of samples.entries()) assert.equal(await formatYaml(v), expected[i], JSON.stringify(v));
  });

  it("--query is JMESPath", async () => {
    assert.equal(await applyQuery({ accessToken: "t", tokenType: "Bearer" }, "accessToken"), "t");
    assert.deepEqual(
      await applyQuery(
        [
          { id: 1, s: "Enabled" },
          { id: 2, s: "Disabled" },
        ],
        "[?s=='Enabled'].id",
      ),
      [1],
    );
  });

  it("--query of one field name (answered without jmespath): what JMESPath gives", async () => {
    const { default: jmespath } = await import("jmespath");
    const values: unknown[] = [
      { accessToken: "t", tokenType: "Bearer", expires_on: 1, subscription: undefined, n: null },
      { nested: { a: [1, 2] }, list: [{ x: 1 }], f: false, z: 0, e: "" },
      [{ accessToken: "t" }],
      "accessToken",
      42,
      null,
      Object.create({ inherited: "no" }) as unknown,
    ];
    const queries = ["accessToken", "tokenType", "expires_on", "subscription", "n", "missing"];
    queries.push("nested", "list", "f", "z", "e", "inherited", "_x1", "A_b");
    for (const v of values)
      for (const q of queries) {
        const fast = await applyQuery(v, q);
        // One difference, on purpose: an inherited property is no field (jmespath.js reads it).
        const slow = q === "inherited" ? null : (jmespath.search(v, q) as unknown);
        assert.deepEqual(fast, slow, `${JSON.stringify(v)} ${q}`);
        // The result is the value's own object, so its key order is not the query's (tsv sorts).
        if (fast && typeof fast === "object" && !Array.isArray(fast))
          assert.equal(formatTsv(fast), formatTsv(slow));
      }
    // Anything but one identifier is still JMESPath's: quoted, dotted, indexed, functions.
    assert.equal(await applyQuery({ "a-b": 1 }, '"a-b"'), 1);
    assert.equal(await applyQuery({ a: { b: 2 } }, "a.b"), 2);
    assert.equal(await applyQuery({ a: [3] }, "a[0]"), 3);
    await assert.rejects(applyQuery({}, "a b"), /invalid jmespath_type value/);
  });
});
