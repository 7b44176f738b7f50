/**
 * Standard output for the hot paths: written synchronously, and a reader that went away
 * (`| head`, `| true`) is a quiet success, as with az.
 */
import { writeSync } from "node:fs";

/**
 * Writes all of `text` to a file descriptor synchronously. The hot paths write stdout this way
 * instead of through `process.stdout`, whose stream (a socket for a pipe) costs 1–2 ms to set
 * up; and the output is complete when the process exits right after.
 */
export function writeAllSync(fd: number, text: string): void {
  if (closedFds.has(fd)) return;
  let buf = Buffer.from(text, "utf8");
  let spins = 0;
  while (buf.length > 0) {
    try {
      const n = writeSync(fd, buf);
      // (All of it, as nearly always: no `subarray`, which a short process would compile for this.)
      if (n >= buf.length) return;
      buf = buf.subarray(n);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // The reader went away (`| head`, `| true`): nothing more to say there; az exits 0.
      if (code === "EPIPE") {
        closedFds.add(fd);
        return;
      }
      // A non-blocking pipe that is full: wait a little for the reader.
      if (code !== "EAGAIN" || ++spins > 10_000) throw e;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
    }
  }
}

const closedFds = new Set<number>();

/** Whether a write to `fd` found its reader gone (then the exit code is 0, as az's). */
export function readerGone(fd: number): boolean {
  return closedFds.has(fd);
}
