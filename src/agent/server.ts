/**
 * The agent's front process: it owns the socket, checks who connects, keeps the lock state and
 * its timers, asks the release gate, and forwards token and profile requests to the vault.
 *
 * Two processes, so that "locked" is true by construction: the front never unseals the store
 * and never sees a refresh token, secret or key (it sees access tokens on their way out). The
 * unlocked store lives in the vault (`vault.ts`), a child process; `lock`, `stop` and idle/max
 * expiry end the vault, and the kernel frees its memory — JavaScript strings cannot be wiped,
 * a process can. The passphrase of `unlock` goes to the vault too: the front hands the client's
 * socket to the vault before the passphrase frame is read, so the front never holds it.
 *
 * Per connection: the peer's uid must be the agent's own (SO_PEERCRED, `peer.ts`); a frame
 * must arrive whole within FRAME_TIMEOUT_MS and be at most MAX_FRAME_BYTES; a malformed frame
 * gets one error answer and the connection is closed. None of this affects other connections.
 */
import { fork, type ChildProcess } from "node:child_process";
import type { Socket } from "node:net";
import { AzkeepError } from "../core/errors.js";
import {
  FRAME_TIMEOUT_MS,
  IDLE_CONNECTION_MS,
  LineReader,
  PROTOCOL_REVISION,
  PROTOCOL_VERSION,
  UNLOCK_HINT,
  encodeFrame,
  encodeResultFrame,
  EncodedResult,
  type AgentErrorBody,
  type AgentStatus,
  type PolicyChange,
} from "./protocol.js";
import { ReleasedTokens } from "./front-cache.js";
import type { AgentConn, AgentListener } from "./conn.js";
import type { PeerCredentials } from "./peer.js";
import type { ReleaseGate, ReleaseKeysMessage, ReleaseRequest } from "./release.js";

/** What the front tells the vault, and what it answers (over the IPC channel). */
export interface VaultCall {
  id: number;
  op: "token" | "account" | "accounts" | "identities" | "write" | "policy-mark" | "policy-write" | "cloud";
  body: Record<string, unknown>;
}

export type VaultReply =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: AgentErrorBody }
  /** `release`: the release policy's MAC keys (base64), derived in the vault; the gate keeps them. */
  | { event: "ready"; identities: string[]; release?: ReleaseKeysMessage }
  | { event: "unlock-failed"; error: AgentErrorBody };

export interface AgentServerOptions {
  /** Where connections come from (`raw-server.ts`, or `node:net` through `netListener`). */
  server: AgentListener;
  socketPath: string;
  configDir: string;
  /** The vault's entry point (dist/agent/vault.js). */
  vaultEntry: string;
  /** The vault's environment (the agent's, without passphrase variables). */
  vaultEnv: Record<string, string | undefined>;
  gate: ReleaseGate;
  /** Lock after this long without a request (0: never). */
  idleMs: number;
  /** Lock this long after an unlock, whatever happens (0: never). */
  maxMs: number;
  /** The store's key provider as config.json names it (`passphrase` needs `unlock`). */
  provider: () => string | undefined;
  agentOnly: () => boolean;
  peer: (conn: AgentConn) => PeerCredentials | undefined;
  peerCheck: string;
  nonDumpable: boolean;
  azkeep: string;
  /** Whether to unlock at once (providers that need no passphrase). */
  unlockAtStart: boolean;
  log: (line: string) => void;
  onStop: () => void;
  /** Called at each unlock (the daemon lowers threads made since start: `threads.ts`). */
  onUnlocked?: () => void;
  /** A connection with no request in progress is closed after this long (default IDLE_CONNECTION_MS). */
  idleConnectionMs?: number;
}

const uid = typeof process.getuid === "function" ? process.getuid() : -1;

function errBody(e: unknown): AgentErrorBody {
  if (e instanceof AzkeepError) {
    return { code: e.code, message: e.message, ...(e.hint ? { hint: e.hint } : {}) };
  }
  return { code: "internal", message: e instanceof Error ? e.message : String(e) };
}

/** An error whose body goes to the client as it is (the vault's errors, a lock, a version). */
export class ReplyError extends Error {
  constructor(readonly body: AgentErrorBody) {
    super(body.message);
  }
}

function lockedError(lockedBy: string | undefined): ReplyError {
  const why =
    lockedBy === "idle"
      ? " after its idle time"
      : lockedBy === "max"
        ? " at the end of its maximum lifetime"
        : lockedBy === "vault-exit"
          ? " (its vault process ended)"
          : "";
  return new ReplyError({
    code: "store_unavailable",
    message: `The azkeep agent is locked${why}.`,
    hint: UNLOCK_HINT,
  });
}

/** The last 1,000 answer times (ms), for `agent status`: what the agent itself takes per request. */
class AnswerTimes {
  private readonly ring = new Float64Array(1000);
  private n = 0;

  add(ms: number): void {
    this.ring[this.n++ % this.ring.length] = ms;
  }

  summary(): { answerMs?: { p50: number; p99: number; count: number } } {
    const count = Math.min(this.n, this.ring.length);
    if (count === 0) return {};
    const sorted = this.ring.slice(0, count).sort();
    const at = (p: number) => Math.round(sorted[Math.min(count - 1, Math.floor(p * count))]! * 1000) / 1000;
    return { answerMs: { p50: at(0.5), p99: at(0.99), count } };
  }
}

export class AgentServer {
  private vault: ChildProcess | undefined;
  private vaultReady: Promise<void> | undefined;
  private identities: string[] = [];
  private locked = true;
  private lockedBy: string | undefined = "start";
  private since = new Date();
  private readonly startedAt = new Date();
  private idleTimer: NodeJS.Timeout | undefined;
  private maxTimer: NodeJS.Timeout | undefined;
  private untilIdle: number | undefined;
  private untilMax: number | undefined;
  private nextCall = 1;
  private readonly calls = new Map<number, { resolve(v: unknown): void; reject(e: ReplyError): void }>();
  private readonly sockets = new Set<AgentConn>();
  /** How long the last answers to token and profile requests took here (`agent status`). */
  private readonly answers = new AnswerTimes();
  /** Access tokens released, reused while the vault would reuse them (front-cache.ts). */
  private readonly released: ReleasedTokens;

  constructor(private readonly o: AgentServerOptions) {
    this.released = new ReleasedTokens(o.configDir);
    o.server.onConnection((c) => this.onConnection(c));
    if (o.unlockAtStart) this.spawnVault().catch(() => {});
  }

  // ---- lock state -----------------------------------------------------------------------

  private spawnVault(passphraseSocket?: Socket): Promise<void> {
    if (this.vault && this.vaultReady) return this.vaultReady;
    const child = fork(this.o.vaultEntry, [], {
      env: this.o.vaultEnv,
      stdio: ["ignore", "ignore", "inherit", "ipc"],
      serialization: "json",
    });
    this.vault = child;
    this.vaultReady = new Promise<void>((resolve, reject) => {
      child.on("message", (m: VaultReply) => {
        if ("event" in m) {
          if (m.event === "ready") {
            this.identities = m.identities;
            this.o.gate.unlocked?.(m.release, {
              mark: (mac) => this.callVault("policy-mark", { mac }).then(() => undefined),
              write: (policy) =>
                this.callVault("policy-write", { policy }).then((r) => (r as { mac: string }).mac),
            });
            this.setUnlocked();
            resolve();
          } else {
            reject(new ReplyError(m.error));
            this.endVault("start");
          }
          return;
        }
        const c = this.calls.get(m.id);
        if (!c) return;
        this.calls.delete(m.id);
        if (m.ok) c.resolve(m.result);
        else c.reject(new ReplyError(m.error));
      });
      child.on("exit", (code, signal) => {
        if (this.vault === child) {
          this.o.log(`vault ${child.pid} ended (${signal ?? code}); the agent is locked`);
          this.vault = undefined;
          this.vaultReady = undefined;
          if (!this.locked) this.setLocked("vault-exit");
        }
        reject(lockedError("vault-exit"));
        for (const c of this.calls.values()) c.reject(lockedError("vault-exit"));
        this.calls.clear();
      });
    });
    this.vaultReady.catch(() => {});
    if (passphraseSocket) child.send({ op: "passphrase" }, passphraseSocket);
    else child.send({ op: "open" });
    return this.vaultReady;
  }

  private endVault(lockedBy: string): void {
    const v = this.vault;
    this.vault = undefined;
    this.vaultReady = undefined;
    if (v && v.exitCode === null) {
      // SIGKILL: the vault holds nothing to save (every write is already sealed on disk), and
      // its memory goes back to the kernel at once.
      v.kill("SIGKILL");
    }
    this.setLocked(lockedBy);
  }

  private setLocked(by: string): void {
    if (!this.locked) this.o.log(`locked (${by})`);
    this.released.clear();
    this.o.gate.locked?.();
    this.locked = true;
    this.lockedBy = by;
    this.since = new Date();
    this.identities = [];
    clearTimeout(this.idleTimer);
    clearTimeout(this.maxTimer);
    this.untilIdle = this.untilMax = undefined;
  }

  private setUnlocked(): void {
    this.locked = false;
    this.lockedBy = undefined;
    this.since = new Date();
    this.o.log(`unlocked (vault ${this.vault?.pid})`);
    this.o.onUnlocked?.();
    if (this.o.maxMs > 0) {
      this.untilMax = Date.now() + this.o.maxMs;
      this.maxTimer = setTimeout(() => this.endVault("max"), this.o.maxMs);
      this.maxTimer.unref();
    }
    this.touch();
  }

  /** A request was served: the idle timer starts again. */
  private touch(): void {
    if (this.o.idleMs <= 0 || this.locked) return;
    clearTimeout(this.idleTimer);
    this.untilIdle = Date.now() + this.o.idleMs;
    this.idleTimer = setTimeout(() => this.endVault("idle"), this.o.idleMs);
    this.idleTimer.unref();
  }

  status(): AgentStatus {
    const until = [this.untilIdle, this.untilMax].filter((t): t is number => t !== undefined);
    const provider = this.o.provider();
    return {
      pid: process.pid,
      ...(this.vault?.pid && !this.locked ? { vaultPid: this.vault.pid } : {}),
      locked: this.locked,
      since: this.since.toISOString(),
      ...(until.length ? { until: new Date(Math.min(...until)).toISOString() } : {}),
      ...(this.locked && this.lockedBy ? { lockedBy: this.lockedBy } : {}),
      ...(this.o.idleMs ? { idleMs: this.o.idleMs } : {}),
      ...(this.o.maxMs ? { maxMs: this.o.maxMs } : {}),
      startedAt: this.startedAt.toISOString(),
      socket: this.o.socketPath,
      configDir: this.o.configDir,
      ...(provider ? { provider } : {}),
      ...(this.locked ? {} : { identities: this.identities }),
      peerCheck: this.o.peerCheck,
      transport: this.o.server.transport,
      nonDumpable: this.o.nonDumpable,
      agentOnly: this.o.agentOnly(),
      ...this.answers.summary(),
      azkeep: this.o.azkeep,
      protocol: PROTOCOL_VERSION,
    };
  }

  private callVault(op: VaultCall["op"], body: Record<string, unknown>): Promise<unknown> {
    const v = this.vault;
    if (!v || this.locked) return Promise.reject(lockedError(this.lockedBy));
    const id = this.nextCall++;
    return new Promise((resolve, reject) => {
      this.calls.set(id, { resolve, reject });
      v.send({ id, op, body } satisfies VaultCall);
    });
  }

  // ---- connections ----------------------------------------------------------------------

  private onConnection(socket: AgentConn): void {
    const peer = this.o.peer(socket);
    // Another local user (or root on behalf of one) talking to the socket: refused before a
    // single byte is read. The socket's mode already stops non-root users of other uids.
    if (peer && peer.uid !== uid) {
      this.o.log(`refused a connection from uid ${peer.uid} (pid ${peer.pid})`);
      // Drain what it sends (closing with unread data would reset the connection and lose
      // the answer), say why once, and close.
      socket.onData(() => {});
      socket.end(
        encodeFrame({
          id: 0,
          ok: false,
          error: { code: "denied", message: `The azkeep agent serves uid ${uid} only.` },
        }),
      );
      setTimeout(() => socket.destroy(), 1_000).unref();
      return;
    }
    this.sockets.add(socket);
    if (peer?.pid && !this.locked) this.o.gate.connected?.(peer.pid);
    const reader = new LineReader();
    let frameTimer: NodeJS.Timeout | undefined;
    let handedOver = false;
    let queue = Promise.resolve();
    // Idle means between requests: one that waits for the person (a prompt of up to
    // `promptTimeout`, pinentry killed 10 s after it) is not cut off, the timer is armed again.
    // (Not a setTimeout(0) and a new timer around every request: at 1,000 answers a second
    // those were two timer objects an answer for the collector. Reads and writes re-arm it.)
    let busy = 0;
    const idleMs = this.o.idleConnectionMs ?? IDLE_CONNECTION_MS;
    const onIdle = () => {
      if (busy > 0) socket.setIdle(idleMs, onIdle);
      else socket.destroy();
    };
    socket.setIdle(idleMs, onIdle);
    const refuse = (message: string) => {
      handedOver = true; // nothing more is read from this connection
      socket.end(encodeFrame({ id: 0, ok: false, error: { code: "bad_input", message } }));
      setTimeout(() => socket.destroy(), 1_000).unref();
    };
    socket.onClose(() => {
      clearTimeout(frameTimer);
      this.sockets.delete(socket);
    });
    socket.onData((chunk) => {
      if (handedOver) return;
      const lines = reader.push(chunk);
      if (lines === "oversized") return refuse("The request is larger than the agent accepts.");
      clearTimeout(frameTimer);
      if (reader.pending) {
        // Part of a frame: the rest must follow soon (a slow client holds nothing up but itself).
        frameTimer = setTimeout(() => socket.destroy(), FRAME_TIMEOUT_MS);
      }
      // Frames that came together (a client's `hello` and its request) are answered together
      // when the answers are ready in this turn (a remembered token): one write, one wake-up of
      // the client instead of two.
      if (lines.length > 1 && !socket.destroyed) {
        socket.cork();
        setImmediate(() => socket.uncork());
      }
      for (const line of lines) {
        let msg: Record<string, unknown>;
        try {
          const v = JSON.parse(line) as unknown;
          if (!v || typeof v !== "object" || Array.isArray(v)) throw new Error("not an object");
          msg = v as Record<string, unknown>;
        } catch {
          return refuse("The request is not a JSON object on one line.");
        }
        queue = queue.then(async () => {
          if (handedOver || socket.destroyed) return;
          const id = typeof msg.id === "number" ? msg.id : 0;
          if (msg.op === "unlock" && this.o.provider() === "passphrase" && this.locked) {
            if (peer?.pid) this.o.gate.promptFrom?.(peer.pid);
            // The passphrase frame must reach the vault only: stop reading here, answer, and
            // hand the socket over before the client sends it.
            handedOver = true;
            // Nothing more is read here: the passphrase stays in the kernel for the vault.
            socket.stopReading();
            socket.setIdle(0);
            this.sockets.delete(socket);
            const answer = encodeFrame({ id, ok: true, result: { needPassphrase: true } });
            socket.write(answer, () => {
              this.endVault("start");
              socket
                .toSocket()
                .then((s) => this.spawnVault(s))
                .catch(() => {});
            });
            return;
          }
          let reply: string;
          busy++;
          try {
            const started = performance.now();
            const result = await this.handle(msg, peer);
            if (msg.op === "token" || msg.op === "account" || msg.op === "accounts")
              this.answers.add(performance.now() - started);
            reply =
              result instanceof EncodedResult
                ? encodeResultFrame(id, result)
                : encodeFrame({ id, ok: true, result: result ?? null });
          } catch (e) {
            const error = e instanceof ReplyError ? e.body : errBody(e);
            reply = encodeFrame({ id, ok: false, error });
          } finally {
            busy--;
          }
          if (!socket.destroyed) socket.write(reply);
          if (msg.op === "stop") setImmediate(() => this.stop());
        });
      }
    });
  }

  private async handle(msg: Record<string, unknown>, peer: PeerCredentials | undefined): Promise<unknown> {
    const op = msg.op;
    switch (op) {
      case "hello": {
        if (msg.version !== PROTOCOL_VERSION) {
          throw new ReplyError({
            code: "agent_version",
            message: `The running azkeep agent speaks protocol ${PROTOCOL_VERSION}; this client speaks ${String(msg.version)}.`,
          });
        }
        if (typeof msg.configDir === "string" && msg.configDir !== this.o.configDir) {
          throw new AzkeepError(
            "config",
            `The azkeep agent on this socket serves ${this.o.configDir}, not ${msg.configDir}.`,
            { hint: "Unset AZKEEP_AGENT_SOCK, or point it at the agent of this config folder." },
          );
        }
        return {
          version: PROTOCOL_VERSION,
          revision: PROTOCOL_REVISION,
          pid: process.pid,
          azkeep: this.o.azkeep,
        };
      }
      case "status":
        // A vault being opened (start, unlock) is waited for: the answer is then true.
        if (this.vaultReady) await this.vaultReady.catch(() => {});
        return this.status();
      case "lock":
        this.endVault("lock");
        return this.status();
      case "unlock":
        // The terminal `unlock` runs in is where the agent asks the person from now on.
        if (peer?.pid) this.o.gate.promptFrom?.(peer.pid);
        if (!this.locked) return this.status();
        this.endVault("start");
        await this.spawnVault();
        return this.status();
      case "stop":
        return { stopping: true };
      case "token":
      case "account":
      case "accounts":
        return this.release(op, msg, peer);
      case "log":
        if (!this.o.gate.readLog) throw new AzkeepError("bad_input", "This agent keeps no release log.");
        return this.o.gate.readLog(msg);
      case "cloud":
        return this.callVaultOrRestart("cloud", {});
      case "write": {
        // Signing the person out or in, or changing the default subscription, is decided like a
        // release: a same-uid program in the background must not do it behind their back.
        await this.admit(this.writeRequest(msg, peer));
        this.released.clear();
        const r = await this.callVaultOrRestart("write", { write: msg.write });
        this.touch();
        return r;
      }
      case "policy":
        return this.policy(msg, peer);
      default:
        throw new AzkeepError("bad_input", `The agent does not know the request '${String(op)}'.`, {
          hint: "Update azkeep, or restart the agent: `azkeep agent stop && azkeep agent start`.",
        });
    }
  }

  /** The store is unlocked (or being unlocked) and the gate allows `req`; else logged and thrown. */
  private async admit(req: ReleaseRequest): Promise<void> {
    await this.unlockedFor(req);
    const decision = await this.o.gate.decide(req);
    if (!decision.allow) {
      this.o.log(`denied ${req.op} to pid ${req.peer.pid}${decision.rule ? ` (rule ${decision.rule})` : ""}`);
      throw new AzkeepError("denied", decision.reason ?? "The agent's release policy refused this request.", {
        hint: "`azkeep agent log` shows the agent's decisions; docs/policy.md how a rule allows a caller.",
      });
    }
  }

  /** Waits for a vault being opened; a locked agent refuses `req` (logged) with the unlock hint. */
  private async unlockedFor(req: ReleaseRequest): Promise<void> {
    if (!this.locked) return;
    if (this.vaultReady) await this.vaultReady.catch(() => {});
    if (this.locked) {
      const err = lockedError(this.lockedBy);
      this.o.gate.refused?.(req, "locked", err.message);
      throw err;
    }
  }

  /** What the gate is told of a `write` frame: which write, and whose (names, never the record's secrets). */
  private writeRequest(msg: Record<string, unknown>, peer: PeerCredentials | undefined): ReleaseRequest {
    const w = msg.write as Record<string, unknown> | undefined;
    if (!w || typeof w !== "object" || typeof w.kind !== "string")
      throw new AzkeepError("bad_input", "The write request has no `write.kind`.");
    const str = (v: unknown) => (typeof v === "string" && v ? v : undefined);
    const record = (w.record ?? {}) as { user?: { name?: unknown }; entries?: { tenantId?: unknown }[] };
    const user =
      w.kind === "signin"
        ? str(record.user?.name)
        : w.kind === "signout"
          ? str((w.usernames as unknown[] | undefined)?.[0])
          : str(w.username);
    const tenant =
      w.kind === "signin" && Array.isArray(record.entries) ? str(record.entries[0]?.tenantId) : undefined;
    return {
      peer: peer ?? { pid: 0, uid, gid: -1 },
      kind: "write",
      op: "write",
      write: w.kind,
      ...(user ? { user } : {}),
      ...(tenant ? { tenant } : {}),
      ...(w.kind === "set-default" && str(w.subscription) ? { subscription: str(w.subscription)! } : {}),
    };
  }

  /** `policy`: show it, or change it once the person allowed it on the agent's pinentry (the gate asks). */
  private async policy(msg: Record<string, unknown>, peer: PeerCredentials | undefined): Promise<unknown> {
    const change = msg.change as PolicyChange | undefined;
    if (!change || typeof change !== "object" || !["show", "add", "remove", "reset"].includes(change.kind))
      throw new AzkeepError("bad_input", "The policy request has no valid `change`.", {
        hint: "Update azkeep, or restart the agent: `azkeep agent stop && azkeep agent start`.",
      });
    if (!this.o.gate.policy)
      throw new AzkeepError("bad_input", "This agent has no release policy to change.");
    const req: ReleaseRequest = {
      peer: peer ?? { pid: 0, uid, gid: -1 },
      kind: "policy",
      op: `policy ${change.kind}`,
    };
    if (change.kind === "show") {
      if (this.locked) throw lockedError(this.lockedBy);
    } else await this.unlockedFor(req);
    // A prompt may take a minute: the connection is not idle meanwhile.
    const r = await this.o.gate.policy(req, change);
    this.touch();
    return r;
  }

  private async release(
    op: "token" | "account" | "accounts",
    msg: Record<string, unknown>,
    peer: PeerCredentials | undefined,
  ): Promise<unknown> {
    const q = (op === "token" ? msg.request : msg) as Record<string, unknown> | undefined;
    if (!q || typeof q !== "object")
      throw new AzkeepError("bad_input", "The token request has no `request`.");
    const str = (v: unknown) => (typeof v === "string" ? v : undefined);
    const scopes = Array.isArray(q.scopes)
      ? q.scopes.filter((s): s is string => typeof s === "string")
      : undefined;
    const run = msg.run as ReleaseRequest["run"] | undefined;
    const req: ReleaseRequest = {
      peer: peer ?? { pid: 0, uid, gid: -1 },
      kind: op === "token" ? "token" : "profile",
      op,
      ...(str(q.resource) ? { resource: str(q.resource)! } : {}),
      ...(scopes ? { scopes } : {}),
      ...(str(q.tenant) ? { tenant: str(q.tenant)! } : {}),
      ...(str(q.subscription) ? { subscription: str(q.subscription)! } : {}),
      ...(str(q.resourceType) ? { resourceType: str(q.resourceType)! } : {}),
      ...(run && typeof run === "object" ? { run } : {}),
    };
    await this.admit(req);
    const body: Record<string, unknown> =
      op === "token"
        ? { request: q }
        : op === "account"
          ? { ...(str(msg.subscription) ? { subscription: str(msg.subscription) } : {}) }
          : { all: msg.all === true };
    // A token the vault would answer from its cache anyway: answered here (front-cache.ts).
    const key = op === "token" ? this.released.keyOf(q) : undefined;
    const files = key !== undefined ? this.released.filesNow() : "";
    if (key !== undefined) {
      const hit = this.released.answer(key, files);
      if (hit) {
        this.touch();
        return hit;
      }
    }
    const r = await this.callVaultOrRestart(op, body);
    if (key !== undefined && !this.locked) this.released.put(key, files, r);
    this.touch();
    return r;
  }

  /**
   * A vault that died by itself (OOM, a crash, a SIGKILL of it alone) is started again and the
   * request asked once more, when the store opens without a person (no passphrase): every
   * write it made is sealed on disk, so nothing is lost. With a passphrase the agent stays
   * locked and says so.
   */
  private async callVaultOrRestart(op: VaultCall["op"], body: Record<string, unknown>): Promise<unknown> {
    try {
      return await this.callVault(op, body);
    } catch (e) {
      if (!(e instanceof ReplyError) || this.lockedBy !== "vault-exit" || this.o.provider() === "passphrase")
        throw e;
      this.o.log("the vault ended by itself; starting a new one");
      await this.spawnVault();
      return this.callVault(op, body);
    }
  }

  /** Ends the vault, closes the socket (removing its file) and every connection. */
  stop(): void {
    this.endVault("stop");
    for (const s of this.sockets) s.destroy();
    this.o.server.close();
    this.o.onStop();
  }
}
