/**
 * The front's listening socket on libuv's pipe handle, without `node:net` (see `conn.ts` for
 * why): the same handle and request classes `net` itself uses, reached through
 * `process.binding("pipe_wrap")` and `("stream_wrap")`, as the client side does (`raw-pipe.ts`,
 * whose checks and fallback this follows). {@link listenRaw} answers `undefined` when anything is
 * not exactly as known — a class, a method, a constant, or `--pending-deprecation` — and the
 * daemon listens with `node:net` then.
 *
 * A connection here is for short frames: no backpressure beyond libuv's own write queue (an
 * answer that does not fit the socket's buffer is written as libuv drains it), no half-close (a
 * client that ends its side is closed, as `net` does without `allowHalfOpen`).
 */
import type { Socket } from "node:net";
import { makeListener, type AgentConn, type AgentListener } from "./conn.js";
import { checkedStreamBindings, pendingDeprecation, uvError } from "./raw-pipe.js";

interface ConnHandle {
  readonly fd: number;
  readStart(): number;
  readStop(): number;
  writeUtf8String(req: object, data: string): number;
  shutdown(req: object): number;
  close(cb?: () => void): void;
  onread: (arrayBuffer: ArrayBuffer | undefined) => void;
}

interface ServerHandle {
  bind(path: string): number;
  listen(backlog: number): number;
  close(cb?: () => void): void;
  onconnection: (status: number, handle: ConnHandle | undefined) => void;
}

interface Request {
  handle?: unknown;
  oncomplete?: (status: number) => void;
}

interface ServerBindings {
  Pipe: new (type: number) => ServerHandle;
  SERVER: number;
  WriteWrap: new () => Request;
  ShutdownWrap: new () => Request;
  state: Int32Array;
  kReadBytesOrError: number;
  kArrayBufferOffset: number;
  kLastWriteWasAsync: number;
}

/** `net.Server#listen`'s default backlog. */
const BACKLOG = 511;

let bindings: ServerBindings | null | undefined;

function loadServerBindings(env: Readonly<Record<string, string | undefined>>): ServerBindings | null {
  if (pendingDeprecation(env)) return null;
  if (bindings !== undefined) return bindings;
  const b = checkedStreamBindings({
    pipe: [],
    stream: ["WriteWrap", "ShutdownWrap"],
    streamNumbers: ["kReadBytesOrError", "kArrayBufferOffset", "kLastWriteWasAsync"],
    constants: ["SERVER"],
    methods: ["bind", "listen", "writeUtf8String", "readStart", "readStop", "shutdown", "close"],
  });
  bindings = b && {
    Pipe: b.pipe.Pipe as ServerBindings["Pipe"],
    SERVER: b.constants.SERVER!,
    WriteWrap: b.stream.WriteWrap as ServerBindings["WriteWrap"],
    ShutdownWrap: b.stream.ShutdownWrap as ServerBindings["ShutdownWrap"],
    state: b.stream.streamBaseState as Int32Array,
    kReadBytesOrError: b.stream.kReadBytesOrError as number,
    kArrayBufferOffset: b.stream.kArrayBufferOffset as number,
    kLastWriteWasAsync: b.stream.kLastWriteWasAsync as number,
  };
  return bindings;
}

class RawConn implements AgentConn {
  destroyed = false;
  /** Handed to a `net.Socket` (`toSocket`): nothing here touches the handle any more. */
  private given = false;
  private readonly dataFns: ((chunk: Uint8Array) => void)[] = [];
  private readonly closeFns: (() => void)[] = [];
  private corked = 0;
  private held: { text: string; done: (() => void) | undefined }[] = [];
  private idle: NodeJS.Timeout | undefined;
  private idleFn: (() => void) | undefined;
  /** Requests in flight must stay reachable until libuv completes them. */
  private readonly pending = new Set<Request>();
  /** The client ended: closed once `pending` is empty. */
  private closing = false;

  constructor(
    private readonly b: ServerBindings,
    private readonly handle: ConnHandle,
  ) {
    handle.onread = (ab) => this.onRead(ab);
    const err = handle.readStart();
    if (err < 0) queueMicrotask(() => this.destroy());
  }

  get fd(): number | undefined {
    const fd = this.handle.fd;
    return typeof fd === "number" && fd >= 0 ? fd : undefined;
  }

  private onRead(ab: ArrayBuffer | undefined): void {
    const n = this.b.state[this.b.kReadBytesOrError]!;
    if (n === 0) return;
    if (n < 0 || !ab) {
      // The client's end (UV_EOF) or a read error (a reset): this connection is over once what
      // is queued for it is written (as `net` closes a socket without `allowHalfOpen`).
      this.closeWhenWritten();
      return;
    }
    this.touch();
    const chunk = new Uint8Array(ab, this.b.state[this.b.kArrayBufferOffset], n);
    for (const fn of this.dataFns) fn(chunk);
  }

  onData(fn: (chunk: Uint8Array) => void): void {
    this.dataFns.push(fn);
  }

  onClose(fn: () => void): void {
    this.closeFns.push(fn);
  }

  write(text: string, done?: () => void): void {
    if (this.destroyed || this.given) return;
    if (this.corked > 0) this.held.push({ text, done });
    else this.send(text, done);
  }

  /** Closes now, or once the writes libuv still holds are done. */
  private closeWhenWritten(): void {
    this.uncorkAll();
    this.stopReading();
    if (this.pending.size === 0) this.destroy();
    else this.closing = true;
  }

  private send(text: string, done: (() => void) | undefined): void {
    this.touch();
    const req = new this.b.WriteWrap();
    req.handle = this.handle;
    req.oncomplete = (status: number) => {
      this.pending.delete(req);
      if (status < 0) this.destroy();
      else done?.();
      if (this.closing && this.pending.size === 0) this.destroy();
    };
    const err = this.handle.writeUtf8String(req, text);
    if (err < 0) {
      this.destroy();
      return;
    }
    // Written at once (the usual case for a few KB on a unix socket): libuv calls nothing back.
    if (this.b.state[this.b.kLastWriteWasAsync]) this.pending.add(req);
    else if (done) queueMicrotask(done);
  }

  end(text: string): void {
    if (this.destroyed || this.given) return;
    this.write(text);
    this.uncorkAll();
    // After the queued writes (libuv orders a shutdown behind them); the client's own end, or
    // the caller's destroy, closes the connection.
    const req = new this.b.ShutdownWrap();
    req.handle = this.handle;
    req.oncomplete = () => {
      this.pending.delete(req);
      if (this.closing && this.pending.size === 0) this.destroy();
    };
    if (this.handle.shutdown(req) >= 0) this.pending.add(req);
  }

  destroy(): void {
    if (this.destroyed || this.given) return;
    this.destroyed = true;
    this.setIdle(0);
    // Node checks that onread is a function (an assertion aborts the process otherwise).
    this.handle.onread = () => {};
    try {
      this.handle.readStop();
    } catch {
      /* not reading */
    }
    this.handle.close(() => {
      for (const fn of this.closeFns.splice(0)) fn();
    });
  }

  setIdle(ms: number, fn?: () => void): void {
    this.idleFn = fn;
    if (ms > 0 && !this.destroyed) {
      if (this.idle) clearTimeout(this.idle);
      this.idle = setTimeout(() => {
        this.idle = undefined;
        this.idleFn?.();
      }, ms);
      this.idle.unref();
    } else if (this.idle) {
      clearTimeout(this.idle);
      this.idle = undefined;
    }
  }

  /** A read or a write: the idle time starts again (one timer, refreshed, as `net` does it). */
  private touch(): void {
    this.idle?.refresh();
  }

  cork(): void {
    this.corked++;
  }

  uncork(): void {
    if (this.corked > 0 && --this.corked === 0) this.uncorkAll();
  }

  private uncorkAll(): void {
    this.corked = 0;
    const held = this.held;
    if (held.length === 0) return;
    this.held = [];
    if (this.destroyed) return;
    const dones = held.map((h) => h.done).filter((d): d is () => void => d !== undefined);
    this.send(held.map((h) => h.text).join(""), dones.length ? () => dones.forEach((d) => d()) : undefined);
  }

  stopReading(): void {
    try {
      this.handle.readStop();
    } catch {
      /* not reading */
    }
  }

  async toSocket(): Promise<Socket> {
    this.uncorkAll();
    this.setIdle(0);
    this.stopReading();
    const { Socket } = await import("node:net");
    // From here the handle is the socket's: it reads nothing until asked (pauseOnCreate).
    this.given = true;
    return new Socket({ handle: this.handle, pauseOnCreate: true, readable: true, writable: true } as never);
  }
}

/**
 * Listens on the unix socket `path` (created with the process's umask, as `net` does);
 * `undefined` when this Node's pipe bindings are not the ones known here (use `node:net` then).
 * Throws `net`'s errors (`EADDRINUSE`, `EACCES`, …) when the socket cannot be made.
 */
export function listenRaw(
  path: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
): AgentListener | undefined {
  const b = loadServerBindings(env);
  if (!b) return undefined;
  let handle: ServerHandle;
  try {
    handle = new b.Pipe(b.SERVER);
  } catch {
    return undefined;
  }
  let err = handle.bind(path);
  if (err >= 0) err = handle.listen(BACKLOG);
  if (err < 0) {
    handle.close();
    throw uvError(err, `listen ${path}`);
  }
  let closed = false;
  const l = makeListener("raw-pipe", () => {
    // libuv removes the socket's file when a bound pipe closes.
    if (!closed) handle.close();
    closed = true;
  });
  handle.onconnection = (status, client) => {
    // A failed accept (EMFILE, …) loses that one connection, as with `net`.
    if (status >= 0 && client) l.give(new RawConn(b, client));
  };
  return l.listener;
}
