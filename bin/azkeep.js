#!/usr/bin/env node
// The only place azkeep calls process.exit: after stdout has drained, so piped output is whole.
//
// CommonJS (bin/package.json), so that `account get-access-token` — the hot path scripts call
// in loops — runs without starting the ES module loader: it loads one file without commander
// (dist/cli/fast.cjs, with its build-time V8 code cache), which hands anything unusual to the
// full frame.
"use strict";

const argv = process.argv.slice(2);
const frame = () => import("../dist/cli/main.js");
if (argv[0] === "account" && argv[1] === "get-access-token") {
  // Writes its output synchronously (and drains the frame's when it hands over): exit at once.
  const fast = require("../shim/code-cache.cjs").load(
    require("node:path").join(__dirname, "../dist/cli/fast.cjs"),
  );
  fast.main(argv, frame).then((code) => process.exit(code));
} else {
  frame()
    .then((m) => m.main(argv))
    .then((code) => process.stdout.write("", () => process.exit(code)));
}
