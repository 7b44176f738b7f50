/**
 * The fast path of `azkeep account get-access-token`: `bin/azkeep.js` requires this module (one
 * CommonJS file, no commander: `dist/cli/fast.cjs`) for that command, since scripts call it in loops and tools through the
 * shim. It answers exactly as the full command-line frame would; anything it does not fully
 * understand (help, an unknown flag, a bad value) goes to the frame (`dist/cli/main.js`), whose
 * messages are the reference.
 */
import { fastParse } from "./fast-parse.js";
import { abortOnSignals, readerGone, runParsed, writeAllSync } from "./run.js";

/** Loads the full frame (`dist/cli/main.js`); given by bin, so this bundle does not contain it. */
export type FrameLoader = () => Promise<{ main: (argv: readonly string[]) => Promise<number> }>;

/**
 * Runs the command; resolves its exit code once all output is written, so the caller may
 * `process.exit` at once. `agentGone`: the agent lane saw the agent go away mid-request.
 */
export async function main(
  argv: readonly string[],
  frame: FrameLoader,
  options: { agentGone?: boolean } = {},
): Promise<number> {
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
        ...(options.agentGone ? { agentGone: true } : {}),
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
