#!/usr/bin/env node
// The only place azkeep calls process.exit: after stdout has drained, so piped output is whole.
import { main } from "../dist/cli/main.js";

const code = await main(process.argv.slice(2));
process.stdout.write("", () => process.exit(code));
