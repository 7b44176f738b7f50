import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { applyQuery, formatJson, formatTable, formatTsv } from "../../src/cli/output/format.js";

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
    ["nested dict empty, nested list its length", [{ a: { x: 1 }, b: [1, 2, 3], c: true }], "\t3\ttrue\n"],
    ["null prints nothing", [{ a: null, b: 1 }], "\t1\n"],
    ["a scalar is one line", "tok", "tok\n"],
  ];
  for (const [name, value, expected] of tsvCases) {
    it(`tsv: ${name}`, () => assert.equal(formatTsv(value), expected));
  }

  it("table: sorted, capitalised headers and nested values left out", () => {
    const out = formatTable([
      { name: "Dev", id: "1", user: { name: "u" } },
      { name: "Production", id: "2", user: { name: "u" } },
    ]);
    assert.equal(out, "Id  Name\n--  ----------\n1   Dev\n2   Production\n");
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
});
