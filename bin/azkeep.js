#!/usr/bin/env node
// The only place azkeep calls process.exit: after stdout has drained, so piped output is whole.
//
// CommonJS (bin/package.json), so that `account get-access-token` — the hot path scripts call
// in loops — runs without starting the ES module loader: it requires one file without
// commander (dist/cli/fast.cjs), which hands anything unusual to the full frame.
"use strict";

const argv = process.argv.slice(2);
const frame = () => import("../dist/cli/main.js");
const run =
  argv[0] === "account" && argv[1] === "get-access-token"
    ? require("../dist/cli/fast.cjs").main(argv, frame)
    : frame().then((m) => m.main(argv));
run.then((code) => process.stdout.write("", () => process.exit(code)));
