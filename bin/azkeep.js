#!/usr/bin/env node
// The only place azkeep calls process.exit: after stdout has drained, so piped output is whole.
const argv = process.argv.slice(2);
// `account get-access-token` is the hot path (scripts call it in loops): a one-file fast lane
// without commander, which hands anything unusual back to the full frame (dist/cli/main.js).
const entry = argv[0] === "account" && argv[1] === "get-access-token" ? "../dist/cli/fast.js" : "../dist/cli/main.js";
const { main } = await import(entry);

const code = await main(argv);
process.stdout.write("", () => process.exit(code));
