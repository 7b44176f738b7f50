/** Terminal prompts, loaded only when a prompt is needed. */
import { createInterface } from "node:readline";
import { Writable } from "node:stream";
import { UsageError } from "./errors.js";

/** Asks `question` on the terminal (stderr); with `secret` the typed characters are not echoed. */
export async function askOnTerminal(question: string, secret: boolean): Promise<string> {
  if (!process.stdin.isTTY) {
    throw new UsageError("A value is needed but there is no terminal to ask on.", {
      hint: "Pass it with a flag, a file or standard input (see --help).",
    });
  }
  let muted = false;
  const output = new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (!muted) process.stderr.write(chunk);
      cb();
    },
  });
  const rl = createInterface({ input: process.stdin, output, terminal: true });
  try {
    return await new Promise<string>((resolve, reject) => {
      rl.question(question, (answer) => resolve(answer));
      muted = secret;
      rl.on("SIGINT", () => reject(new UsageError("Cancelled.")));
    });
  } finally {
    rl.close();
    if (secret) process.stderr.write("\n");
  }
}
