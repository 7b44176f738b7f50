import assert from "node:assert/strict";
import { accessSync, constants, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { runCli, tempHome } from "../helpers/cli.js";
import { SHIM_DIR } from "../tokens/signed-in.js";

describe("azkeep shim path", () => {
  it("prints the shim's folder, raw, for PATH; it holds an executable az that says what it is", async () => {
    using h = tempHome();
    const r = await runCli(["shim", "path"], { env: h.env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${SHIM_DIR.replace(/\/$/, "")}\n`, "not JSON-quoted");
    const az = join(r.stdout.trim(), "az");
    accessSync(az, constants.X_OK);
    assert.match(readFileSync(az, "utf8"), /azkeep-az-shim/);
  });

  it("az version through the shim answers without any sign-in", async () => {
    using h = tempHome();
    const r = await runCli(["shim", "path"], { env: h.env });
    const { execFileSync } = await import("node:child_process");
    const out = execFileSync(join(r.stdout.trim(), "az"), ["version", "-o=json"], {
      env: { ...process.env, ...h.env },
    });
    assert.match(JSON.parse(out.toString())["azure-cli"] as string, /^2\.\d+\.\d+$/);
  });
});
