/**
 * The agent's client: tiny on purpose, since it is on the hot path of a cached
 * `azkeep account get-access-token` (only `node:net`, the protocol module and the error class).
 *
 * ```ts
 * const agent = await connectAgent({ socketPath, configDir });   // undefined: no agent runs
 * if (agent) {
 *   try {
 *     const t = await agent.getToken({ resourceType: "arm" });     // AgentToken
 *     const acct = await agent.getAccount({ subscription: "dev" }); // az account show's entry
 *   } finally {
 *     agent.close();
 *   }
 * }
 * ```
 * Errors are `AzkeepError`s with the agent's code, message and hint (a locked agent:
 * `store_unavailable` with "Run `azkeep agent unlock`"; a denial by the release gate: `denied`);
 * an agent that goes away mid-request is an `AgentGoneError` (the caller falls back: restart,
 * or the direct path when agent-only mode is off).
 */
import { AzkeepError, type ErrorCode } from "../core/errors.js";
import { RawPipeSocket, openRawPipe } from "./raw-pipe.js";
import {
  PROTOCOL_VERSION,
  RESTART_HINT,
  LineReader,
  encodeFrame,
  type AgentErrorBody,
  type AgentRequest,
  type AgentResponse,
  type AgentStatus,
  type AgentToken,
  type HelloResult,
  type LogCursor,
  type LogPage,
  type LogPageQuery,
  type PolicyChange,
  type PolicyView,
  type RunInfo,
  type TokenQuery,
} from "./protocol.js";

/** The whole release log as the agent checked it, page after page (`AgentConnection.releaseLog`). */
export interface ReleaseLogResult {
  ok: boolean;
  records: unknown[];
  /** Every problem, in words naming the file and record. */
  problems: string[];
  notes: string[];
  /** The files read, oldest first. */
  files: string[];
  checked: number;
  /** A log found broken when the agent unlocked, kept aside. */
  previous?: string;
}

/** More pages than any log the agent keeps has (4 files of 8 MiB, 256 KiB a page): a loop guard. */
const MAX_LOG_PAGES = 10_000;

/** The agent closed the connection (or died) before answering. */
export class AgentGoneError extends AzkeepError {
  constructor(message = "The azkeep agent stopped answering.") {
    super("store_unavailable", message, { hint: "Run `azkeep agent start` to start it again." });
    this.name = "AgentGoneError";
  }
}

const KNOWN_CODES = new Set<string>([
  "usage",
  "auth_required",
  "auth_failed",
  "not_found",
  "network",
  "store_damaged",
  "store_tampered",
  "store_unavailable",
  "bad_input",
  "config",
  "cancelled",
  "denied",
  "internal",
]);

/** The agent's error body as the library's error (same code, message and hint). */
export function errorFromBody(body: AgentErrorBody): AzkeepError {
  if (body.code === "agent_version") return new AzkeepError("config", body.message, { hint: RESTART_HINT });
  const code = (KNOWN_CODES.has(body.code) ? body.code : "internal") as ErrorCode;
  return new AzkeepError(code, body.message, body.hint ? { hint: body.hint } : {});
}

type Body<R> = R extends unknown ? Omit<R, "id"> : never;

export interface ConnectOptions {
  socketPath: string;
  /** The config folder the client serves; an agent of another folder is refused. */
  configDir?: string;
  /** Gives up connecting after this long (default 2 s; `node:net` only, see `connectAgent`). */
  connectTimeoutMs?: number;
  /** The azkeep version of the client, for the agent's logs. */
  azkeep?: string;
  /**
   * Talk over libuv's pipe handle directly instead of `node:net` where this Node allows it
   * (`raw-pipe.ts`): for one short exchange on the hot path, whose start-up `node:net` would
   * dominate. Falls back to `node:net` by itself.
   */
  lean?: boolean;
}

/** What the client needs of a socket: `net.Socket`, or `raw-pipe.ts`'s `RawPipeSocket`. */
export interface AgentSocket {
  on(event: "data", listener: (chunk: Uint8Array) => void): unknown;
  on(event: "error", listener: (e: Error) => void): unknown;
  on(event: "close", listener: () => void): unknown;
  once(event: "connect", listener: () => void): unknown;
  once(event: "error", listener: (e: NodeJS.ErrnoException) => void): unknown;
  off(event: "error", listener: (e: NodeJS.ErrnoException) => void): unknown;
  write(data: string): unknown;
  destroy(): unknown;
  readonly destroyed: boolean;
}

/** One connection to the agent; requests are answered in order. Close it when done. */
export class AgentConnection {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  private readonly reader = new LineReader();
  private gone: Error | undefined;
  /** The hello's frame until it goes out: with the first request, or alone when `hello` is asked for first. */
  private pendingHello: string | undefined;
  private readonly helloAnswer: Promise<HelloResult>;

  constructor(
    private readonly socket: AgentSocket,
    options: ConnectOptions,
  ) {
    socket.on("data", (chunk: Uint8Array) => this.onData(chunk));
    socket.on("error", (e) =>
      this.fail(new AgentGoneError(`The azkeep agent's socket failed: ${e.message}.`)),
    );
    socket.on("close", () => this.fail(new AgentGoneError()));
    // The hello goes out with the first request, in the same write (one round trip).
    this.helloAnswer = this.send({
      op: "hello",
      version: PROTOCOL_VERSION,
      ...(options.configDir !== undefined ? { configDir: options.configDir } : {}),
      ...(options.azkeep !== undefined ? { azkeep: options.azkeep } : {}),
    }).then((r) => {
      const h = r as HelloResult;
      if (h.version !== PROTOCOL_VERSION) {
        throw new AzkeepError(
          "config",
          `The running azkeep agent speaks protocol ${h.version}; this azkeep speaks ${PROTOCOL_VERSION}.`,
          { hint: RESTART_HINT },
        );
      }
      return h;
    });
    this.helloAnswer.catch(() => {});
  }

  /**
   * The agent's answer to the hello. Asked for before any request, it sends the hello alone;
   * otherwise the hello has gone with the first request. (No timer or setImmediate for that:
   * each would cost the hot path a turn of the event loop.)
   */
  get hello(): Promise<HelloResult> {
    if (this.pendingHello !== undefined) {
      if (!this.socket.destroyed) this.socket.write(this.pendingHello);
      this.pendingHello = undefined;
    }
    return this.helloAnswer;
  }

  private onData(chunk: Uint8Array): void {
    const lines = this.reader.push(chunk);
    if (lines === "oversized") {
      this.fail(new AgentGoneError("The azkeep agent sent an oversized answer."));
      this.socket.destroy();
      return;
    }
    for (const line of lines) {
      let msg: AgentResponse;
      try {
        msg = JSON.parse(line) as AgentResponse;
      } catch {
        this.fail(new AgentGoneError("The azkeep agent sent a malformed answer."));
        this.socket.destroy();
        return;
      }
      const w = this.waiting.get(msg.id);
      if (!w) continue;
      this.waiting.delete(msg.id);
      if (msg.ok) w.resolve(msg.result);
      else w.reject(errorFromBody(msg.error));
    }
  }

  private fail(e: Error): void {
    this.gone ??= e;
    for (const w of this.waiting.values()) w.reject(this.gone);
    this.waiting.clear();
  }

  /** Sends one request and resolves its result (rejects with the agent's error). */
  send(body: Body<AgentRequest> | Record<string, unknown>): Promise<unknown> {
    if (this.gone) return Promise.reject(this.gone);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      const frame = encodeFrame({ ...body, id });
      if (id === 1) {
        this.pendingHello = frame;
      } else {
        this.socket.write(this.pendingHello ? this.pendingHello + frame : frame);
        this.pendingHello = undefined;
      }
    });
  }

  /** Sends a request after the hello has been answered (so a version mismatch wins). */
  private async call(body: Body<AgentRequest>): Promise<unknown> {
    const r = this.send(body);
    r.catch(() => {});
    await this.helloAnswer;
    return r;
  }

  /** An access token (never a refresh token): the fields of `get-access-token`. */
  async getToken(query: TokenQuery, run?: RunInfo): Promise<AgentToken> {
    return (await this.call({ op: "token", request: query, ...(run ? { run } : {}) })) as AgentToken;
  }

  /** The account of `subscription` (id or name) or the default one: `az account show`'s entry. */
  async getAccount(q: { subscription?: string; run?: RunInfo } = {}): Promise<unknown> {
    return this.call({
      op: "account",
      ...(q.subscription !== undefined ? { subscription: q.subscription } : {}),
      ...(q.run ? { run: q.run } : {}),
    });
  }

  /** `az account list`'s entries (the active cloud's; every cloud's with `all`). */
  async listAccounts(q: { all?: boolean; run?: RunInfo } = {}): Promise<unknown[]> {
    return (await this.call({
      op: "accounts",
      ...(q.all ? { all: true } : {}),
      ...(q.run ? { run: q.run } : {}),
    })) as unknown[];
  }

  async status(): Promise<AgentStatus> {
    return (await this.call({ op: "status" })) as AgentStatus;
  }

  async lock(): Promise<AgentStatus> {
    return (await this.call({ op: "lock" })) as AgentStatus;
  }

  /**
   * Unlocks the store. `askPassphrase` is called only when the store's provider is the
   * passphrase: the passphrase then goes, in the next frame, to the agent's vault process.
   */
  async unlock(askPassphrase: () => Promise<string>): Promise<AgentStatus> {
    const r = (await this.call({ op: "unlock" })) as { needPassphrase?: boolean } & Partial<AgentStatus>;
    if (!r.needPassphrase) return r as AgentStatus;
    const passphrase = await askPassphrase();
    // The vault answers this frame with id 0 (it reads it straight from the socket).
    return new Promise((resolve, reject) => {
      if (this.gone) return reject(this.gone);
      this.waiting.set(0, { resolve: (v) => resolve(v as AgentStatus), reject });
      this.socket.write(JSON.stringify({ id: 0, passphrase }) + "\n");
    });
  }

  /**
   * The release log's records (oldest first, across its rotated files) and whether its MAC chain
   * verifies: page after page, each answer under the frame limit. `records: false`: check only.
   */
  async releaseLog(q: Omit<LogPageQuery, "page"> = {}): Promise<ReleaseLogResult> {
    const all: ReleaseLogResult = { ok: true, records: [], problems: [], notes: [], files: [], checked: 0 };
    let page: LogCursor | undefined;
    for (let n = 0; ; n++) {
      if (n === MAX_LOG_PAGES) {
        all.notes.push(`Stopped after ${MAX_LOG_PAGES} pages of the log.`);
        break;
      }
      // An agent of revision 2 answers everything at once, with `problem` and no `next`.
      const p = (await this.call({ op: "log", ...q, ...(page ? { page } : {}) })) as Partial<LogPage> & {
        problem?: string;
      };
      all.records.push(...(p.records ?? []));
      all.problems.push(...(p.problems ?? (p.problem ? [p.problem] : [])));
      for (const x of p.notes ?? []) if (!all.notes.includes(x)) all.notes.push(x);
      for (const f of p.files ?? []) if (!all.files.includes(f)) all.files.push(f);
      all.checked += p.checked ?? p.records?.length ?? 0;
      if (p.ok === false) all.ok = false;
      if (p.previous) all.previous = p.previous;
      if (!p.next) break;
      page = p.next;
    }
    if (all.problems.length) all.ok = false;
    return all;
  }

  async stop(): Promise<void> {
    await this.call({ op: "stop" });
  }

  /** The agent's active cloud (endpoints; verified against the seal by the agent). */
  async activeCloud(): Promise<unknown> {
    return this.call({ op: "cloud" });
  }

  async write(write: Extract<AgentRequest, { op: "write" }>["write"]): Promise<unknown> {
    return this.call({ op: "write", write });
  }

  /**
   * The release policy (`show`), or a change of it, which the agent makes only after the person
   * allows it on the agent's pinentry (a refusal is a `denied` error). Needs an agent of
   * protocol revision 2.
   */
  async policy(change: PolicyChange): Promise<PolicyView> {
    // Not pipelined: an older agent is not sent a request it does not know.
    const hello = await this.hello;
    if ((hello.revision ?? 1) < 2)
      throw new AzkeepError(
        "config",
        `The running azkeep agent (${hello.azkeep}) is older than this azkeep and cannot change the release policy.`,
        { hint: RESTART_HINT },
      );
    return (await this.send({ op: "policy", change })) as PolicyView;
  }

  close(): void {
    this.socket.destroy();
  }
}

/**
 * Connects to the agent at `socketPath`; `undefined` when no agent listens there (no socket
 * file, or a stale one nobody accepts on). The hello is sent at once; its answer is awaited by
 * the first request.
 */
export async function connectAgent(options: ConnectOptions): Promise<AgentConnection | undefined> {
  const socket: AgentSocket =
    (options.lean ? openRawPipe(options.socketPath) : undefined) ??
    (await import("node:net")).connect(options.socketPath);
  return new Promise((resolve, reject) => {
    // A unix socket's connect completes or fails at once (a full backlog is EAGAIN, not a wait),
    // so the raw pipe needs no timer, and a timer would cost its hot path a loop turn to clear.
    // node:net's socket keeps one, as it always had.
    const timer =
      socket instanceof RawPipeSocket
        ? undefined
        : setTimeout(() => {
            socket.destroy();
            resolve(undefined);
          }, options.connectTimeoutMs ?? 2_000);
    const onError = (e: NodeJS.ErrnoException) => {
      if (timer) clearTimeout(timer);
      socket.destroy();
      if (e.code === "ENOENT" || e.code === "ECONNREFUSED" || e.code === "ENOTSOCK") resolve(undefined);
      else if (e.code === "EACCES")
        reject(
          new AzkeepError(
            "store_unavailable",
            `The azkeep agent's socket ${options.socketPath} is not yours.`,
            {
              hint: "Check the owner of the runtime folder, or set AZKEEP_AGENT_SOCK to your own agent's socket.",
            },
          ),
        );
      else resolve(undefined);
    };
    socket.once("error", onError);
    socket.once("connect", () => {
      // (Not called without a timer: the raw pipe's process would compile `clearTimeout` for nothing.)
      if (timer) clearTimeout(timer);
      socket.off("error", onError);
      resolve(new AgentConnection(socket, options));
    });
  });
}
