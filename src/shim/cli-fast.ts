/**
 * The fast path of `azkeep account get-access-token`: `bin/azkeep.js` loads this module (one
 * file, no commander) for that command, since scripts call it in loops and tools through the
 * shim. It answers exactly as the full command-line frame would; anything it does not fully
 * understand (help, an unknown flag, a bad value) goes to the frame (`dist/cli/main.js`), whose
 * messages are the reference.
 */
import { RESOURCE_TYPES } from "../core/clouds.js";
import { isOutputFormat } from "../cli/output/format.js";
import { parseShimArgs, type ParsedShimArgs } from "./argv.js";
import { abortOnSignals, runParsed } from "./run.js";

async function frame(argv: readonly string[]): Promise<number> {
  // A runtime URL so the bundler leaves the (code-split) frame out of this file.
  const url = new URL("./main.js", import.meta.url).href;
  const { main } = (await import(url)) as { main: (argv: readonly string[]) => Promise<number> };
  return main(argv);
}

export function fastParse(argv: readonly string[]): ParsedShimArgs | undefined {
  // Global flags may come first (`azkeep -o tsv account get-access-token`): leave those to the frame.
  if (argv[0] !== "account" || argv[1] !== "get-access-token") return undefined;
  let p: ParsedShimArgs | undefined;
  try {
    p = parseShimArgs(argv, "azkeep");
  } catch {
    return undefined;
  }
  // Values the frame validates with its own messages.
  if (p?.globals.output !== undefined && !isOutputFormat(p.globals.output)) return undefined;
  const rt = p?.options.resourceType;
  if (rt !== undefined && !(typeof rt === "string" && rt in RESOURCE_TYPES)) return undefined;
  return p;
}

export async function main(argv: readonly string[]): Promise<number> {
  const parsed = fastParse(argv);
  if (!parsed) return frame(argv);
  const signals = abortOnSignals();
  try {
    return await runParsed(
      parsed,
      {
        stdout: (s) => void process.stdout.write(s),
        stderr: (s) => void process.stderr.write(s),
        env: process.env,
        signal: signals.signal,
      },
      "azkeep",
    );
  } finally {
    signals.dispose();
  }
}
