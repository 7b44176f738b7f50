/**
 * A unix-socket client without `node:net`, for the one place where its cost decides a budget:
 * the agent lane of a cached `azkeep account get-access-token` (`cli/agent-lane.ts`).
 *
 * Why: loading `node:net` (and the whole streams stack under it) costs ~3.3 ms of a ~55 ms
 * Node start on this project's machines; the budget for the whole answer through the agent is
 * 15 % of that start (docs/benchmarks.md, "The agent lane"). libuv's pipe handle, which
 * `net.Socket` wraps, is reachable directly through `process.binding("pipe_wrap")` and
 * `("stream_wrap")` — the handle and request classes `net` itself uses.
 *
 * Those bindings are Node internals (process.binding is deprecated, documentation-only, DEP0111),
 * so everything here is checked before use and the caller falls back to `node:net` whenever
 * anything is not exactly as expected: {@link openRawPipe} answers `undefined` when a class, a
 * method or a constant is missing, and when the process runs with `--pending-deprecation` (where
 * `process.binding` would print a warning on stderr, which callers of `az` read as trouble).
 * `test/agent/raw-pipe.test.ts` checks that this Node takes the raw path and that both transports
 * carry the same bytes.
 *
 * It is a socket for one short exchange: connect, write a few small frames, read the answers,
 * close. No backpressure (frames are a few hundred bytes), no half-close, no timeouts (a
 * release prompt may keep the agent's answer for a minute, as with `node:net`).
 */
// Loaded with Node itself: importing it costs nothing at start.
import { getSystemErrorName } from "node:util";

interface PipeHandle {
  connect(req: object, path: string): number;
  writeUtf8String(req: object, data: string): number;
  readStart(): number;
  readStop(): number;
  close(cb?: () => void): void;
  onread: (arrayBuffer: ArrayBuffer | undefined) => void;
}

interface Bindings {
  Pipe: new (type: number) => PipeHandle;
  PipeConnectWrap: new () => { oncomplete?: (status: number) => void };
  WriteWrap: new () => { handle?: unknown; oncomplete?: (status: number) => void; async?: boolean };
  SOCKET: number;
  state: Int32Array;
  kReadBytesOrError: number;
  kArrayBufferOffset: number;
}

let bindings: Bindings | null | undefined;

/** True where `process.binding` would print a deprecation warning (`--pending-deprecation`). */
export function pendingDeprecation(env: Readonly<Record<string, string | undefined>>): boolean {
  return (
    process.execArgv.some((a) => a.includes("pending-deprecation")) ||
    (env.NODE_OPTIONS ?? "").includes("pending-deprecation") ||
    env.NODE_PENDING_DEPRECATION === "1"
  );
}

/** `process.binding(name)` (deprecated, documentation-only); undefined where this Node has none. */
function processBinding(name: string): Record<string, unknown> | undefined {
  const binding = (process as unknown as { binding?: (name: string) => Record<string, unknown> }).binding;
  return typeof binding === "function" ? binding(name) : undefined;
}

/**
 * `pipe_wrap` and `stream_wrap` (the handle and request classes `net` itself uses) when every
 * member named in `want` is there as expected — functions of either binding, numbers of
 * `stream_wrap` and of `pipe_wrap.constants`, methods of `Pipe.prototype` — else null. The
 * client (here) and the front's listener (`raw-server.ts`) each name what they use.
 */
export function checkedStreamBindings(want: {
  pipe: string[];
  stream: string[];
  streamNumbers: string[];
  constants: string[];
  methods: string[];
}): {
  pipe: Record<string, unknown>;
  stream: Record<string, unknown>;
  constants: Record<string, number>;
} | null {
  try {
    const pipe = processBinding("pipe_wrap");
    const stream = processBinding("stream_wrap");
    if (!pipe || !stream) return null;
    const constants = pipe.constants as Record<string, unknown> | undefined;
    const proto = (pipe.Pipe as { prototype?: Record<string, unknown> } | undefined)?.prototype;
    const ok =
      typeof pipe.Pipe === "function" &&
      stream.streamBaseState instanceof Int32Array &&
      want.pipe.every((k) => typeof pipe[k] === "function") &&
      want.stream.every((k) => typeof stream[k] === "function") &&
      want.streamNumbers.every((k) => typeof stream[k] === "number") &&
      want.constants.every((k) => typeof constants?.[k] === "number") &&
      want.methods.every((m) => typeof proto?.[m] === "function");
    return ok ? { pipe, stream, constants: constants as Record<string, number> } : null;
  } catch {
    return null;
  }
}

/** The pipe bindings when they are what this module was written against, else null. */
function loadBindings(env: Readonly<Record<string, string | undefined>>): Bindings | null {
  if (pendingDeprecation(env)) return null;
  if (bindings !== undefined) return bindings;
  const b = checkedStreamBindings({
    pipe: ["PipeConnectWrap"],
    stream: ["WriteWrap"],
    streamNumbers: ["kReadBytesOrError", "kArrayBufferOffset"],
    constants: ["SOCKET"],
    methods: ["connect", "writeUtf8String", "readStart", "readStop", "close"],
  });
  bindings = b && {
    Pipe: b.pipe.Pipe as Bindings["Pipe"],
    PipeConnectWrap: b.pipe.PipeConnectWrap as Bindings["PipeConnectWrap"],
    WriteWrap: b.stream.WriteWrap as Bindings["WriteWrap"],
    SOCKET: b.constants.SOCKET!,
    state: b.stream.streamBaseState as Int32Array,
    kReadBytesOrError: b.stream.kReadBytesOrError as number,
    kArrayBufferOffset: b.stream.kArrayBufferOffset as number,
  };
  return bindings;
}

/** `process.binding("fs").lstat` as Node 20–24 have it (four arguments; see {@link lstatLean}). */
type LstatBinding = (
  path: string,
  bigint: false,
  req: undefined,
  ctx: { errno?: number; code?: string },
) => unknown;

let lstatBinding: LstatBinding | null | undefined;

/**
 * The owner and mode of `path` (not following a symlink), as `fs.lstatSync` gives them, through
 * `fs`'s binding: `lstatSync` builds a `Stats` with four dates, seven functions a short client
 * process compiles for two numbers (~0.9 M instructions of a cached `get-access-token`,
 * docs/benchmarks.md). `undefined` when this Node's binding is not the one known here (or where
 * `process.binding` would warn): use `fs.lstatSync` then. Throws as `lstatSync` does, with
 * its `code` (`ENOENT`, …).
 *
 * The call passes a context object last: Node 20's later releases and Node 22+ take that
 * argument as "throw if there is no entry" (an object is not `false`: they throw), earlier ones
 * as the place to put the error (checked below). The answer must be the stat array (mode
 * second, uid fourth, as `fs` reads it) with a file type in the mode; anything else is
 * `undefined`. `test/agent/raw-pipe.test.ts` compares it with `lstatSync` on this Node.
 */
export function lstatLean(
  path: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
): { uid: number; mode: number } | undefined {
  if (pendingDeprecation(env)) return undefined;
  if (lstatBinding === undefined) {
    lstatBinding = null;
    try {
      const lstat = processBinding("fs")?.lstat;
      if (typeof lstat === "function") lstatBinding = lstat as LstatBinding;
    } catch {
      lstatBinding = null;
    }
  }
  if (!lstatBinding) return undefined;
  const ctx: { errno?: number; code?: string } = {};
  let r: unknown;
  try {
    r = lstatBinding(path, false, undefined, ctx);
  } catch (e) {
    if (typeof (e as NodeJS.ErrnoException)?.code === "string") throw e;
    return undefined;
  }
  if (ctx.errno !== undefined || ctx.code !== undefined)
    throw Object.assign(new Error(`lstat ${ctx.code ?? ctx.errno}`), { code: ctx.code, errno: ctx.errno });
  if (!(r instanceof Float64Array) || r.length < 10) return undefined;
  const mode = r[1]!;
  const uid = r[3]!;
  if (!Number.isInteger(mode) || !Number.isInteger(uid) || uid < 0 || (mode & 0o170000) === 0)
    return undefined;
  return { uid, mode };
}

/** libuv's end-of-stream (UV_EOF). */
const UV_EOF = -4095;

/** An Error with the `code` `node:net` would give (`ENOENT`, `ECONNREFUSED`, …). */
export function uvError(status: number, what: string): NodeJS.ErrnoException {
  let code = `E${-status}`;
  try {
    code = getSystemErrorName(status);
  } catch {
    /* keep the number */
  }
  return Object.assign(new Error(`${what} ${code}`), { code, errno: status });
}

type Listener = (...args: never[]) => void;

/**
 * The few `EventEmitter` methods the agent client calls (`on`, `once`, `off`), in this bundle:
 * `node:events`' own would be compiled by each short client process for them (~0.4 M
 * instructions, docs/benchmarks.md). As with `EventEmitter`, an `error` nobody listens to is
 * thrown.
 */
class Events {
  private readonly listeners = new Map<string, { fn: Listener; once: boolean }[]>();

  on(event: string, fn: Listener): this {
    const list = this.listeners.get(event);
    if (list) list.push({ fn, once: false });
    else this.listeners.set(event, [{ fn, once: false }]);
    return this;
  }

  once(event: string, fn: Listener): this {
    this.on(event, fn);
    this.listeners.get(event)!.at(-1)!.once = true;
    return this;
  }

  off(event: string, fn: Listener): this {
    const list = this.listeners.get(event);
    const i = list ? list.findIndex((l) => l.fn === fn) : -1;
    if (i >= 0) list!.splice(i, 1);
    return this;
  }

  protected emit(event: string, ...args: unknown[]): boolean {
    const list = this.listeners.get(event);
    if (!list?.length) {
      if (event === "error") throw args[0];
      return false;
    }
    for (const l of [...list]) {
      if (l.once) this.off(event, l.fn);
      (l.fn as (...a: unknown[]) => void)(...args);
    }
    return true;
  }
}

/**
 * The part of `net.Socket` the agent client uses: events `connect`, `data` (plain
 * `Uint8Array`s, not Buffers), `error`, `close`; `write(text)`, `destroy()`, `destroyed`.
 */
export class RawPipeSocket extends Events {
  destroyed = false;
  private readonly handle: PipeHandle;
  /** Requests in flight must stay reachable until libuv completes them. */
  private readonly pending = new Set<object>();

  constructor(
    private readonly b: Bindings,
    path: string,
  ) {
    super();
    this.handle = new b.Pipe(b.SOCKET);
    const req = new b.PipeConnectWrap();
    this.pending.add(req);
    req.oncomplete = (status: number) => {
      this.pending.delete(req);
      if (this.destroyed) return;
      if (status < 0) return this.fail(uvError(status, "connect"));
      this.handle.onread = (ab) => this.onRead(ab);
      const err = this.handle.readStart();
      if (err < 0) return this.fail(uvError(err, "read"));
      this.emit("connect");
    };
    const err = this.handle.connect(req, path);
    if (err < 0) {
      this.pending.delete(req);
      queueMicrotask(() => this.fail(uvError(err, "connect")));
    }
  }

  private onRead(ab: ArrayBuffer | undefined): void {
    const n = this.b.state[this.b.kReadBytesOrError]!;
    if (n === 0) return;
    if (n < 0 || !ab) {
      if (n !== UV_EOF && n < 0) this.emit("error", uvError(n, "read"));
      this.destroy();
      return;
    }
    const offset = this.b.state[this.b.kArrayBufferOffset]!;
    this.emit("data", new Uint8Array(ab, offset, n));
  }

  write(data: string): boolean {
    if (this.destroyed) return false;
    const req = new this.b.WriteWrap();
    req.handle = this.handle;
    req.async = false;
    req.oncomplete = (status: number) => {
      this.pending.delete(req);
      if (status < 0) this.fail(uvError(status, "write"));
    };
    this.pending.add(req);
    const err = this.handle.writeUtf8String(req, data);
    if (err < 0) {
      this.pending.delete(req);
      this.fail(uvError(err, "write"));
      return false;
    }
    // Written at once (small frames): no completion will come.
    if (!req.async) this.pending.delete(req);
    return true;
  }

  private fail(e: Error): void {
    if (this.destroyed) return;
    this.emit("error", e);
    this.destroy();
  }

  destroy(): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    // Node checks that onread is a function (an assertion aborts the process otherwise).
    this.handle.onread = () => {};
    try {
      this.handle.readStop();
    } catch {
      /* not reading */
    }
    this.handle.close(() => this.emit("close"));
    return this;
  }
}

/**
 * Connects to the unix socket `path` without `node:net`; `undefined` when this Node's pipe
 * bindings are not the ones this module knows (use `node:net` then). Connection errors arrive
 * as an `error` event with `net`'s codes.
 */
export function openRawPipe(
  path: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
): RawPipeSocket | undefined {
  const b = loadBindings(env);
  if (!b) return undefined;
  try {
    return new RawPipeSocket(b, path);
  } catch {
    return undefined;
  }
}
