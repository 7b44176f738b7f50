import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { errorText } from "../../src/cli/error-text.js";
import { AuthenticationRequiredError, AzkeepError, UsageError } from "../../src/core/errors.js";
import { ShimUsageError } from "../../src/shim/argv.js";
import { errorText as shimErrorText } from "../../src/shim/run.js";

const JWT = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
const abort = () => Object.assign(new Error("Interrupted"), { name: "AbortError" });

describe("error text (frame and shim)", () => {
  const cases: [string, unknown, boolean, string, number][] = [
    [
      "message and hint, redacted",
      new AzkeepError("not_found", `No such thing ${JWT}`, { hint: "Run `azkeep x`." }),
      false,
      "ERROR: No such thing [REDACTED]\nRun `azkeep x`.\n",
      1,
    ],
    ["usage → 2", new UsageError("bad flag"), false, "ERROR: bad flag\n", 2],
    ["Ctrl-C → 130", abort(), false, "ERROR: Interrupted.\n", 130],
    [
      "--debug adds the cause",
      new AzkeepError("network", "down", { cause: new Error(`reset ${JWT}`) }),
      true,
      "ERROR: down\nDEBUG: caused by: Error: reset [REDACTED]\n",
      1,
    ],
    [
      "a bug says how to report it",
      new TypeError("x is undefined"),
      false,
      "ERROR: x is undefined\nThis is a bug in azkeep. Run the command again with --debug and report the output (it is redacted).\n",
      1,
    ],
  ];
  for (const [name, e, debug, text, code] of cases) {
    it(name, () => {
      const r = errorText(e, { debug });
      const shown = debug ? r.text.replace(/\n {4}at .*/g, "") : r.text;
      assert.equal(shown, text);
      assert.equal(r.code, code);
      // The CLI's fast lane says exactly what the frame says.
      const fast = shimErrorText(e, "azkeep", debug);
      assert.deepEqual(fast, r);
    });
  }

  it("the az shim adds its sign-in line when nobody is signed in, and its own bug line", () => {
    const r = shimErrorText(
      new AuthenticationRequiredError("Please run 'azkeep login' to setup account.", {
        hint: "Run `azkeep login` to sign in.",
      }),
      "az",
      false,
    );
    assert.equal(
      r.text,
      "ERROR: Please run 'azkeep login' to setup account.\nRun `azkeep login` to sign in.\n" +
        "This az is azkeep's shim: sign in with `azkeep login` (not az login).\n",
    );
    assert.equal(r.code, 1);
    const aadsts = shimErrorText(new AuthenticationRequiredError("AADSTS50076: MFA"), "az", false);
    assert.equal(aadsts.text, "ERROR: AADSTS50076: MFA\n");
    assert.match(shimErrorText(new Error("boom"), "az", false).text, /bug in azkeep's az shim/);
    assert.deepEqual(shimErrorText(new ShimUsageError("argument --x: bad"), "az", false), {
      text: "ERROR: argument --x: bad\n",
      code: 2,
    });
  });
});
