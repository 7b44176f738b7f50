#!/usr/bin/env node
// The only place azkeep calls process.exit: after stdout has drained, so piped output is whole.
//
// CommonJS (bin/package.json), so that `account get-access-token` — the hot path scripts call
// in loops — runs without starting the ES module loader: it loads one file without commander
// (dist/cli/fast.cjs) with its build-time V8 code cache (see shim/code-cache.cjs, whose
// loader is repeated here to spare a module load; test/shim/path.test.ts keeps them the same),
// and that file hands anything unusual to the full frame.
"use strict";

const argv = process.argv.slice(2);
const frame = () => import("../dist/cli/main.js");
if (argv[0] === "account" && argv[1] === "get-access-token") {
  const fs = require("node:fs");
  const file = require("node:path").join(__dirname, "..", "dist", "cli", "fast.cjs");
  let cachedData;
  try {
    cachedData = fs.readFileSync(file.replace(/\.cjs$/, ".v8cache"));
  } catch {
    cachedData = undefined;
  }
  const source = `(function (exports, require, module, __filename, __dirname) { ${fs.readFileSync(file, "utf8")}\n});`;
  const script = new (require("node:vm").Script)(source, {
    filename: file,
    ...(cachedData ? { cachedData } : {}),
  });
  const mod = { exports: {} };
  script
    .runInThisContext()
    .call(mod.exports, mod.exports, require, mod, file, require("node:path").dirname(file));
  // The fast path writes its output synchronously (and drains the frame's when it hands over).
  mod.exports.main(argv, frame).then((code) => process.exit(code));
} else {
  frame()
    .then((m) => m.main(argv))
    .then((code) => process.stdout.write("", () => process.exit(code)));
}
