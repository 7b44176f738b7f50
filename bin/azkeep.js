#!/usr/bin/env node
// The only place azkeep calls process.exit: after stdout has drained, so piped output is whole.
//
// CommonJS (bin/package.json), so that `account get-access-token` — the hot path scripts call
// in loops — runs without starting the ES module loader. It loads the agent lane first
// (dist/cli/agent-lane.cjs: a running agent answers, nothing else is loaded), which hands
// anything else to the full fast lane (dist/cli/fast.cjs, without commander), which hands
// anything unusual to the full frame. Each bundle comes with its build-time V8 code cache (see
// shim/code-cache.cjs, whose loader is repeated here to spare a module load;
// test/shim/path.test.ts keeps them the same).
"use strict";

const argv = process.argv.slice(2);
const frame = () => import("../dist/cli/main.js");
if (argv[0] === "account" && argv[1] === "get-access-token") {
  const fs = require("node:fs");
  const dir = require("node:path").join(__dirname, "..", "dist", "cli");
  // shim/code-cache.cjs's readBytes (test/shim/path.test.ts keeps them the same).
  const readBytes = (file) => {
    const fd = fs.openSync(file, "r");
    try {
      let bytes = new Uint8Array(262144);
      let n = 0;
      for (let r; (r = fs.readSync(fd, bytes, n, bytes.length - n, null)) > 0;) {
        n += r;
        if (n === bytes.length) {
          const more = new Uint8Array(bytes.length * 2);
          more.set(bytes);
          bytes = more;
        }
      }
      return bytes.subarray(0, n);
    } finally {
      fs.closeSync(fd);
    }
  };
  const load = (name) => {
    const file = `${dir}/${name}.cjs`;
    let cachedData;
    try {
      cachedData = readBytes(`${dir}/${name}.v8cache`);
    } catch {
      cachedData = undefined;
    }
    const source = `(function (exports, require, module, __filename, __dirname) { ${fs.readFileSync(file, "utf8")}\n});`;
    const script = new (require("node:vm").Script)(source, {
      filename: file,
      ...(cachedData ? { cachedData } : {}),
    });
    const mod = { exports: {} };
    script.runInThisContext().call(mod.exports, mod.exports, require, mod, file, dir);
    return mod.exports;
  };
  // Both lanes write their output synchronously (and drain the frame's when they hand over).
  load("agent-lane")
    .main(argv, (options) => load("fast").main(argv, frame, options))
    .then((code) => process.exit(code));
} else {
  frame()
    .then((m) => m.main(argv))
    .then((code) => process.stdout.write("", () => process.exit(code)));
}
