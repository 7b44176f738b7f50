/**
 * The release log on a thread of its own (`log-worker.ts` starts it): the agent's front makes
 * and writes its records here, off the thread that answers. Making a record (its MAC, its line,
 * kept until the write) on that thread was most of the tail of the front's answer latency at
 * 1,000 answers a second (docs/benchmarks.md, "The front under load"); here it has its own heap
 * and its own collector.
 *
 * The writer is `ReleaseLog` itself, unchanged: the chain, the head, rotation and page reads are
 * the same code as in one thread. Messages: `append` (entries with their time), `flush` and
 * `page` (answered by `done` with the request's id); `opened` tells what the log looked like.
 */
import { parentPort, workerData } from "node:worker_threads";
import { ReleaseLog, type ReleaseLogOptions } from "./log.js";
import type { LogEntry } from "./log-chain.js";
import type { LogPageQuery } from "./protocol.js";
import { lowerThisThread } from "./threads.js";

interface Setup {
  dir: string;
  key: Uint8Array;
  options: ReleaseLogOptions;
}

type Message =
  | { t: "append"; entries: LogEntry[] }
  | { t: "flush"; id: number }
  | { t: "page"; id: number; q: LogPageQuery };

const port = parentPort;
if (port) {
  // Its work can wait a millisecond; the front's answers cannot (threads.ts).
  lowerThisThread();
  const setup = workerData as Setup;
  const log = ReleaseLog.open(setup.dir, setup.key, Date.now, setup.options);
  port.postMessage({ t: "opened", problem: log.problem });
  port.on("message", (m: Message) => {
    if (m.t === "append") {
      for (const e of m.entries) log.append(e);
      return;
    }
    const work = m.t === "flush" ? log.flush() : log.readPage(m.q);
    work.then(
      (result) => port.postMessage({ t: "done", id: m.id, result }),
      (e: unknown) =>
        port.postMessage({ t: "done", id: m.id, error: e instanceof Error ? e.message : String(e) }),
    );
  });
}
