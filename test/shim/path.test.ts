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

describe("the hot-path loaders", () => {
  it("bin/azkeep.js and shim/az wrap the bundles exactly as the code cache was made", () => {
    const repo = join(SHIM_DIR, "..");
    const line = /`\(function \(exports, require, module, __filename, __dirname\) \{ \$\{[^}]+\}\\n\}\);`/;
    const wrapperOf = (file: string) =>
      line.exec(readFileSync(join(repo, file), "utf8"))?.[0]?.replace(/\$\{[^}]+\}/, "${}");
    const reference = wrapperOf("shim/code-cache.cjs");
    assert.ok(reference, "code-cache.cjs has the wrapper");
    assert.equal(wrapperOf("bin/azkeep.js"), reference);
    assert.equal(wrapperOf("shim/az"), reference);
  });

  it("the build made code caches that V8 accepts", async () => {
    const vm = await import("node:vm");
    const repo = join(SHIM_DIR, "..");
    for (const bundle of [
      "dist/cli/agent-lane.cjs",
      "dist/cli/fast.cjs",
      "dist/shim/agent-lane.cjs",
      "dist/shim/az.cjs",
    ]) {
      const file = join(repo, bundle);
      const source = `(function (exports, require, module, __filename, __dirname) { ${readFileSync(file, "utf8")}\n});`;
      const script = new vm.Script(source, {
        filename: file,
        cachedData: readFileSync(file.replace(/\.cjs$/, ".v8cache")),
      });
      assert.equal(script.cachedDataRejected, false, bundle);
    }
  });
});
