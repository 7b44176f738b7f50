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

  it("bin/azkeep.js and shim/az read the code cache as shim/code-cache.cjs does", () => {
    const repo = join(SHIM_DIR, "..");
    // readBytes, from its first line to its closing `};`, without indentation.
    const readerOf = (file: string) => {
      const text = readFileSync(join(repo, file), "utf8");
      const m = /^( *)const readBytes = \(file\) => \{\n[\s\S]*?\n\1\};$/m.exec(text);
      return m?.[0]
        .split("\n")
        .map((l) => l.slice(m[1]!.length))
        .join("\n");
    };
    const reference = readerOf("shim/code-cache.cjs");
    assert.ok(reference?.includes("fs.readSync"), "code-cache.cjs has readBytes");
    assert.equal(readerOf("bin/azkeep.js"), reference);
    assert.equal(readerOf("shim/az"), reference);
  });

  it("readBytes gives a file's bytes, whatever its size", async () => {
    const { mkdtempSync, writeFileSync, rmSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { createRequire } = await import("node:module");
    const { readBytes } = createRequire(import.meta.url)(join(SHIM_DIR, "code-cache.cjs")) as {
      readBytes: (file: string) => Uint8Array;
    };
    const dir = mkdtempSync(join(tmpdir(), "azkeep-readbytes-"));
    try {
      for (const size of [0, 1, 262143, 262144, 262145, 600000]) {
        const bytes = Buffer.alloc(size);
        for (let i = 0; i < size; i++) bytes[i] = (i * 7919) & 0xff;
        const file = join(dir, `f${size}`);
        writeFileSync(file, bytes);
        const got = readBytes(file);
        assert.equal(got.length, size);
        assert.ok(Buffer.from(got.buffer, got.byteOffset, got.length).equals(bytes), `size ${size}`);
      }
      assert.throws(() => readBytes(join(dir, "missing")), { code: "ENOENT" });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
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
