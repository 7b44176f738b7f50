/** Searching a live process's memory for a string (as root: /proc/PID/maps + /proc/PID/mem). */
import { closeSync, openSync, readFileSync, readSync } from "node:fs";

/**
 * Whether `needle` (as Latin-1/UTF-8 bytes, or UTF-16LE as V8 keeps two-byte strings) is in any
 * readable mapping of `pid`. Throws when the memory cannot be opened at all.
 */
export function memoryContains(pid: number, needle: string): boolean {
  const one = Buffer.from(needle, "latin1");
  const two = Buffer.from(needle, "utf16le");
  const maps = readFileSync(`/proc/${pid}/maps`, "utf8").trim().split("\n");
  const fd = openSync(`/proc/${pid}/mem`, "r");
  try {
    for (const line of maps) {
      const m = /^([0-9a-f]+)-([0-9a-f]+) (r)/.exec(line);
      if (!m || line.includes("[vvar]") || line.includes("[vsyscall]")) continue;
      const start = BigInt(`0x${m[1]}`);
      const end = BigInt(`0x${m[2]}`);
      const CHUNK = 8n << 20n;
      for (let at = start; at < end; at += CHUNK) {
        const len = Number(end - at < CHUNK ? end - at : CHUNK);
        // Overlap by the needle's length so a string across a chunk edge is found too.
        const buf = Buffer.alloc(len + two.length);
        let n = 0;
        try {
          n = readSync(fd, buf, 0, Math.min(buf.length, Number(end - at)), at);
        } catch {
          break; // an unreadable part of a mapping (guard pages)
        }
        const view = buf.subarray(0, n);
        if (view.includes(one) || view.includes(two)) return true;
      }
    }
  } finally {
    closeSync(fd);
  }
  return false;
}
