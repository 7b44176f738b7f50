/**
 * The front's handle on the release log when it runs on a thread of its own (`log-thread.ts`):
 * the same calls as `ReleaseLog` (`append`, `flush`, `readPage`, `problem`). Entries are handed
 * over every few milliseconds in one message; `flush` and `readPage` hand over what is pending
 * first, so they see every record appended before them, as in one thread.
 *
 * If the thread fails, the log goes on in this thread (a `ReleaseLog` opened afresh continues the
 * chain from the files): the entries not yet handed over are appended there; those the thread had
 * taken but not written are lost, as they would be in an agent killed at that moment.
 */
import { Worker } from "node:worker_threads";
import { ReleaseLog, type ReleaseLogOptions } from "./log.js";
import type { LogEntry } from "./log-chain.js";
import type { PageResult } from "./log-read.js";
import type { LogPageQuery } from "./protocol.js";

/** How long appended entries wait to be handed to the log's thread, at most. */
export const HAND_OVER_MS = 5;

/** What the gate needs of a release log, in this thread or on its own. */
export interface ReleaseLogHandle {
  readonly problem: string | undefined;
  append(entry: LogEntry): void;
  flush(): Promise<void>;
  readPage(q?: LogPageQuery): Promise<PageResult>;
  /** Writes what is pending and ends the log's thread, if it has one. */
  close?(): Promise<void>;
}

export class WorkerReleaseLog implements ReleaseLogHandle {
  private worker: Worker | undefined;
  private buffer: LogEntry[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  /** Resolves when the thread has opened the log (or failed, and the log went on here). */
  private readonly opened: Promise<void>;
  private openProblem: string | undefined;
  /** Set when the thread failed: the log goes on here. */
  private inline: ReleaseLog | undefined;
  private closed = false;

  /**
   * `after`: the previous log's close (a lock, then an unlock): this thread opens the files only
   * once the previous one has written its last records, so two writers never overlap.
   */
  constructor(
    entry: string,
    private readonly dir: string,
    private readonly key: Uint8Array,
    private readonly now: () => number,
    private readonly options: ReleaseLogOptions,
    after: Promise<void> = Promise.resolve(),
  ) {
    this.opened = after
      .catch(() => {})
      .then(
        () =>
          new Promise<void>((resolve) => {
            const worker = new Worker(entry, { workerData: { dir, key, options } });
            worker.unref();
            this.worker = worker;
            worker.on(
              "message",
              (m: { t: string; id?: number; result?: unknown; error?: string; problem?: string }) => {
                if (m.t === "opened") {
                  this.openProblem = m.problem;
                  resolve();
                  this.handOver();
                  return;
                }
                const w = m.id !== undefined ? this.waiting.get(m.id) : undefined;
                if (!w) return;
                this.waiting.delete(m.id!);
                if (m.error !== undefined) w.reject(new Error(m.error));
                else w.resolve(m.result);
              },
            );
            const fail = () => {
              this.failOver();
              resolve();
            };
            worker.once("error", fail);
            worker.once("exit", () => {
              if (!this.closed) fail();
            });
          }),
      );
  }

  get problem(): string | undefined {
    return this.inline ? this.inline.problem : this.openProblem;
  }

  append(entry: LogEntry): void {
    const e = entry.at !== undefined ? entry : { ...entry, at: this.now() };
    if (this.inline) {
      this.inline.append(e);
      return;
    }
    this.buffer.push(e);
    this.timer ??= setTimeout(() => this.handOver(), HAND_OVER_MS);
  }

  async flush(): Promise<void> {
    await this.call("flush", {});
  }

  async readPage(q: LogPageQuery = {}): Promise<PageResult> {
    return (await this.call("page", { q })) as PageResult;
  }

  async close(): Promise<void> {
    await this.flush().catch(() => {});
    this.closed = true;
    await this.worker?.terminate().catch(() => 0);
  }

  /** Hands the buffered entries to the thread (kept until it has opened the log). */
  private handOver(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.buffer.length === 0) return;
    if (this.inline) {
      for (const e of this.buffer.splice(0)) this.inline.append(e);
      return;
    }
    // Before the thread exists (the previous log still closing) the entries wait; the thread's
    // `opened` hands them over.
    if (!this.worker) return;
    this.worker.postMessage({ t: "append", entries: this.buffer.splice(0) });
  }

  private async call(t: "flush" | "page", body: Record<string, unknown>): Promise<unknown> {
    await this.opened;
    this.handOver();
    if (this.inline)
      return t === "flush" ? this.inline.flush() : this.inline.readPage(body.q as LogPageQuery);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker!.postMessage({ t, id, ...body });
    });
  }

  /** The thread failed: go on in this one, and answer what waited for the thread. */
  private failOver(): void {
    if (this.inline || this.closed) return;
    this.inline = ReleaseLog.open(this.dir, this.key, this.now, this.options);
    this.handOver();
    const waiting = [...this.waiting.values()];
    this.waiting.clear();
    for (const w of waiting) w.reject(new Error("The release log's thread ended; ask again."));
  }
}
