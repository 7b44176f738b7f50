/**
 * One client connection of the agent's front, and the listener that hands them out, whatever
 * carries them: libuv's pipe handle directly (`raw-server.ts`, the front's default) or
 * `node:net` (where those bindings are not exactly as known, and in tests). `server.ts` speaks
 * only this interface; `test/agent/conn.test.ts` runs one contract suite against both.
 *
 * Why two: a `net.Socket` is a whole stream (readable and writable state, a dozen listeners,
 * buffers) built for every connection, and every new process asking for a token is a new
 * connection to a front that has been idle since the last one. Without it the front answers a
 * new process's first request ~0.14 ms sooner (docs/benchmarks.md).
 */
import type { Server, Socket } from "node:net";

export interface AgentConn {
  readonly destroyed: boolean;
  /** The socket's descriptor (the peer's credentials are read from it); undefined when unknown. */
  readonly fd: number | undefined;
  /** Bytes as they arrive (a view that is the listener's until it returns). */
  onData(fn: (chunk: Uint8Array) => void): void;
  /** Once, when the connection is closed (by either side, or `destroy`). */
  onClose(fn: () => void): void;
  /** Queues `text`; `done` once it is handed to the kernel (never, if the connection fails first). */
  write(text: string, done?: () => void): void;
  /** Writes `text`, then ends this side: the client reads the end after it. */
  end(text: string): void;
  destroy(): void;
  /**
   * Calls `fn` after `ms` without a read or a write (0: never), as `net.Socket#setTimeout`
   * does; a later call replaces an earlier one.
   */
  setIdle(ms: number, fn?: () => void): void;
  /** Writes made until `uncork` go out as one. */
  cork(): void;
  uncork(): void;
  /** Stops reading at once: what the client sends next stays in the kernel (a passphrase). */
  stopReading(): void;
  /** This connection as a `net.Socket`, to send to another process (`child.send`). */
  toSocket(): Promise<Socket>;
}

export interface AgentListener {
  readonly transport: "raw-pipe" | "node-net";
  /** Connections accepted before a handler is set wait for it. */
  onConnection(fn: (conn: AgentConn) => void): void;
  /** Stops listening (the socket file is removed) and closes nothing else. */
  close(): void;
}

/** A `net.Socket` as an {@link AgentConn}. */
class NetConn implements AgentConn {
  private idleFn: (() => void) | undefined;

  constructor(private readonly socket: Socket) {
    // The front never reacts to a connection's errors but by its close (which follows).
    socket.on("error", () => {});
    socket.on("timeout", () => this.idleFn?.());
  }

  get destroyed(): boolean {
    return this.socket.destroyed;
  }

  get fd(): number | undefined {
    const fd = (this.socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    return typeof fd === "number" && fd >= 0 ? fd : undefined;
  }

  onData(fn: (chunk: Uint8Array) => void): void {
    this.socket.on("data", fn);
  }

  onClose(fn: () => void): void {
    this.socket.once("close", fn);
  }

  write(text: string, done?: () => void): void {
    if (this.socket.destroyed) return;
    this.socket.write(
      text,
      done
        ? (e) => {
            if (!e) done();
          }
        : undefined,
    );
  }

  end(text: string): void {
    this.socket.end(text);
  }

  destroy(): void {
    this.socket.destroy();
  }

  setIdle(ms: number, fn?: () => void): void {
    this.idleFn = fn;
    this.socket.setTimeout(ms);
  }

  cork(): void {
    this.socket.cork();
  }

  uncork(): void {
    this.socket.uncork();
  }

  stopReading(): void {
    // pause() alone keeps libuv reading into the stream's buffer; readStop leaves the next
    // bytes in the kernel.
    (this.socket as unknown as { _handle?: { readStop?: () => number } })._handle?.readStop?.();
    this.socket.pause();
  }

  toSocket(): Promise<Socket> {
    return Promise.resolve(this.socket);
  }
}

/**
 * The {@link AgentListener} of a transport: `give` hands each accepted connection to the
 * handler, holding those that come before one is set.
 */
export function makeListener(
  transport: AgentListener["transport"],
  close: () => void,
): { listener: AgentListener; give(conn: AgentConn): void } {
  const waiting: AgentConn[] = [];
  let handler: ((conn: AgentConn) => void) | undefined;
  return {
    listener: {
      transport,
      onConnection(fn) {
        handler = fn;
        for (const conn of waiting.splice(0)) fn(conn);
      },
      close,
    },
    give(conn) {
      if (handler) handler(conn);
      else waiting.push(conn);
    },
  };
}

/** A listening `net.Server` as an {@link AgentListener}. */
export function netListener(server: Server): AgentListener {
  const l = makeListener("node-net", () => server.close());
  server.on("connection", (socket: Socket) => l.give(new NetConn(socket)));
  return l.listener;
}
