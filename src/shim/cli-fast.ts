/**
 * The fast path of `azkeep account get-access-token`: `bin/azkeep.js` requires this module (one
 * CommonJS file, no commander: `dist/cli/fast.cjs`) for that command, since scripts call it in loops and tools through the
 * shim. It answers exactly as the full command-line frame would; anything it does not fully
 * understand (help, an unknown flag, a bad value) goes to the frame (`dist/cli/main.js`), whose
 * messages are the reference.
 */
import { RESOURCE_TYPES } from "../core/clouds.js";
import { isOutputFormat } from "../cli/output/format.js";
import { parseShimArgs, type ParsedShimArgs } from "./argv.js";
import { abortOnSignals, readerGone, runParsed, writeAllSync } from "./run.js";

/** Loads the full frame (`dist/cli/main.js`); given by bin, so this bundle does not contain it. */
export type FrameLoader = () => Promise<{ main: (argv: readonly string[]) => Promise<number> }>;

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

/**
 * Runs the command; resolves its exit code once all output is written, so the caller may
 * `process.exit` at once.
 */
export async function main(argv: readonly string[], frame: FrameLoader): Promise<number> {
  const parsed = fastParse(argv);
  if (!parsed) {
    const code = await (await frame()).main(argv);
    await new Promise<void>((resolve) => process.stdout.write("", () => resolve()));
    return code;
  }
  const signals = abortOnSignals();
  try {
    const code = await runParsed(
      parsed,
      {
        stdout: (s) => writeAllSync(1, s),
        stderr: (s) => writeAllSync(2, s),
        env: process.env,
        get signal() {
          return signals.signal;
        },
      },
      "azkeep",
    );
    return readerGone(1) ? 0 : code;
  } finally {
    signals.dispose();
  }
}
