import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseShimArgs, ShimUsageError } from "../../src/shim/argv.js";

const R = "https://management.core.windows.net";

describe("shim argv: the forms callers use (reference §5)", () => {
  const cases: [string, string[], Record<string, unknown>, string | undefined][] = [
    [
      "@azure/identity 4.14 execFile",
      [
        "account",
        "get-access-token",
        "--output",
        "json",
        "--resource",
        R,
        "--tenant",
        "t1",
        "--subscription",
        '"My Sub"',
      ],
      { resource: R, tenant: "t1", subscription: '"My Sub"' },
      "json",
    ],
    [
      "azure-identity (Python) argv",
      ["account", "get-access-token", "--output", "json", "--resource", R],
      { resource: R },
      "json",
    ],
    [
      "Terraform go-azure-sdk",
      [
        "account",
        "get-access-token",
        "--scope",
        "https://management.azure.com/.default",
        "--subscription",
        "s1",
        "-o=json",
      ],
      { scope: ["https://management.azure.com/.default"], subscription: "s1" },
      "json",
    ],
    [
      "Go azidentity / Pulumi (after /bin/sh -c)",
      ["account", "get-access-token", "-o", "json", "--resource", R, "--subscription", "My Sub"],
      { resource: R, subscription: "My Sub" },
      "json",
    ],
    ["az account show (Terraform)", ["account", "show", "-o=json"], {}, "json"],
    [
      "az account show --subscription (Pulumi)",
      ["account", "show", "-o", "json", "--subscription", "My Sub"],
      { subscription: "My Sub" },
      "json",
    ],
    ["az account list", ["account", "list", "-o=json"], {}, "json"],
    ["az version", ["version", "-o=json"], {}, "json"],
    [
      "--key=value forms",
      ["account", "get-access-token", "--resource=" + R, "--query=accessToken", "--output=tsv"],
      { resource: R },
      "tsv",
    ],
    [
      "several scopes",
      ["account", "get-access-token", "--scope", "a/.default", "b/.default", "-t", "x"],
      { scope: ["a/.default", "b/.default"], tenant: "x" },
      undefined,
    ],
    ["-n is --subscription", ["account", "show", "-n", "Dev"], { subscription: "Dev" }, undefined],
  ];
  for (const [name, argv, options, output] of cases) {
    it(name, () => {
      const p = parseShimArgs(argv);
      assert.ok(p);
      assert.deepEqual(p.options, options);
      assert.equal(p.globals.output, output);
    });
  }

  it("a query is kept for the formatter", () => {
    assert.equal(
      parseShimArgs(["account", "get-access-token", "--query", "accessToken", "-o", "tsv"])?.globals.query,
      "accessToken",
    );
  });

  it("other commands go to the real az", () => {
    for (const argv of [
      [],
      ["login"],
      ["group", "list"],
      ["account", "set", "-s", "x"],
      ["account", "show", "--help"],
      ["--version"],
    ]) {
      assert.equal(parseShimArgs(argv), undefined, argv.join(" "));
    }
  });

  it("an unknown flag of an answered command is a usage error (az: exit 2)", () => {
    assert.throws(() => parseShimArgs(["account", "get-access-token", "--bogus"]), ShimUsageError);
    assert.throws(
      () => parseShimArgs(["account", "get-access-token", "--resource"]),
      /expected one argument/,
    );
  });
});
