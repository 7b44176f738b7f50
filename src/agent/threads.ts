/**
 * The front answers on its main thread. Its other threads — V8's helpers (the collector's
 * concurrent marking and sweeping, compile jobs), libuv's pool, the release log's thread — do
 * work that can wait a millisecond; on a machine with few cores they took the main thread's core
 * just when an answer was due. Measured on this project's 2-core machines at 1,000 token requests
 * a second from 20 connections (bench/agent.mjs with bench/loadgen.c, docs/benchmarks.md, "The
 * front's helper threads"): answer p99 1.15–2.18 ms with them at the main thread's priority,
 * 0.79–1.21 ms with them at nice 19, eight alternated pairs, lower in every pair.
 *
 * Linux keeps a nice value per thread, and any process may lower its own threads' priority, so
 * the front does that at start and after each unlock (threads made later by the main thread
 * inherit its nice value 0), and the release log's thread lowers itself when it starts.
 */
import { readdirSync } from "node:fs";
import { getPriority, setPriority } from "node:os";

/** The nice value of the front's helper threads (the lowest priority). */
export const HELPER_NICE = 19;

/** Lowers every thread of this process but the main one to `nice`; answers how many were lowered. */
export function lowerHelperThreads(nice = HELPER_NICE): number {
  let tids: number[];
  try {
    tids = readdirSync("/proc/self/task").map(Number);
  } catch {
    return 0; // no /proc: nothing to do
  }
  let lowered = 0;
  for (const tid of tids) if (tid !== process.pid && Number.isInteger(tid) && lower(tid, nice)) lowered++;
  return lowered;
}

/** Lowers the calling thread (the release log's thread calls it at its start; Linux: per thread). */
export function lowerThisThread(nice = HELPER_NICE): void {
  lower(0, nice);
}

/** Lowers thread `tid` (0: the calling one) to `nice` unless it is there already; true when it did. */
function lower(tid: number, nice: number): boolean {
  try {
    if (getPriority(tid) >= nice) return false;
    setPriority(tid, nice);
    return true;
  } catch {
    return false; // the thread ended meanwhile: nothing to lower
  }
}
