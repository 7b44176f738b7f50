/**
 * The D-Bus wire protocol, as much as azkeep needs to talk to the session bus in pure
 * JavaScript: the socket address, SASL EXTERNAL authentication, message encoding, a strict
 * parser (any byte order, every length and offset checked) and one bounded conversation.
 * Used by the Secret Service probe (`dbus-probe.ts`) and reader (`secret-service.ts`).
 * `node:net` is imported only when a conversation starts (a static import would cost every
 * command in the one-file bundle).
 */
import type { Socket } from "node:net";
import { join } from "node:path";
import type { Env } from "../../context.js";

/** The session bus's socket path (`unix:path=` or Linux `unix:abstract=`), or undefined if unsupported. */
export function sessionBusPath(env: Env): string | undefined {
  const address = env.DBUS_SESSION_BUS_ADDRESS;
  if (!address) {
    const runtime = env.XDG_RUNTIME_DIR || (process.getuid ? `/run/user/${process.getuid()}` : undefined);
    return runtime ? join(runtime, "bus") : undefined;
  }
  for (const entry of address.split(";")) {
    const m = /^unix:(.*)$/.exec(entry);
    if (!m?.[1]) continue;
    const params = new Map(m[1].split(",").map((kv) => kv.split("=", 2) as [string, string]));
    const path = params.get("path");
    if (path) return decodeURIComponent(path);
    const abstract = params.get("abstract");
    if (abstract) return "\0" + decodeURIComponent(abstract);
  }
  return undefined;
}

/** Largest message accepted from the bus (the spec allows 128 MiB; a key lookup needs a few KiB). */
const MAX_MESSAGE = 1 << 20;
const MAX_DEPTH = 32;

/** A reply that cannot be read: the caller reports it, it never falls through to a guess. */
export class WireError extends Error {}

// ---------------------------------------------------------------------------------------------
// Writing (little endian; a message starts 8-aligned, so offsets relative to it align correctly).

export class Writer {
  private buf = Buffer.alloc(512);
  pos = 0;
  private ensure(n: number) {
    if (this.pos + n > this.buf.length)
      this.buf = Buffer.concat([this.buf, Buffer.alloc(Math.max(this.buf.length, n))]);
  }
  align(n: number) {
    const pad = (n - (this.pos % n)) % n;
    this.ensure(pad);
    this.buf.fill(0, this.pos, this.pos + pad);
    this.pos += pad;
  }
  byte(b: number) {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }
  u32(v: number) {
    this.align(4);
    this.ensure(4);
    this.buf.writeUInt32LE(v, this.pos);
    this.pos += 4;
  }
  patchU32(at: number, v: number) {
    this.buf.writeUInt32LE(v, at);
  }
  str(s: string) {
    const b = Buffer.from(s, "utf8");
    this.u32(b.length);
    this.ensure(b.length + 1);
    b.copy(this.buf, this.pos);
    this.pos += b.length;
    this.buf[this.pos++] = 0;
  }
  /** An `ay`. */
  bytes(b: Uint8Array) {
    this.u32(b.length);
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  sig(s: string) {
    this.byte(s.length);
    this.ensure(s.length + 1);
    this.buf.write(s, this.pos, "latin1");
    this.pos += s.length;
    this.buf[this.pos++] = 0;
  }
  done(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.pos));
  }
}

export interface OutMessage {
  /** 1 METHOD_CALL, 2 METHOD_RETURN, 3 ERROR, 4 SIGNAL. */
  type?: number;
  serial: number;
  dest?: string;
  path?: string;
  iface?: string;
  member?: string;
  errorName?: string;
  replySerial?: number;
  signature?: string;
  body?: (w: Writer) => void;
}

/** One little-endian message (exported for tests, which play the bus). */
export function encodeMessage(c: OutMessage): Buffer {
  let body: Buffer = Buffer.alloc(0);
  if (c.body) {
    const b = new Writer();
    c.body(b);
    body = b.done();
  }
  const w = new Writer();
  w.byte(0x6c); // 'l': little endian
  w.byte(c.type ?? 1);
  w.byte(0); // flags: a reply is expected, auto-start allowed
  w.byte(1); // protocol version
  w.u32(body.length);
  w.u32(c.serial);
  const lenAt = w.pos;
  w.u32(0); // header fields array length, patched below
  const start = w.pos;
  const field = (code: number, type: string, write: () => void) => {
    w.align(8);
    w.byte(code);
    w.sig(type);
    write();
  };
  if (c.path !== undefined) field(1, "o", () => w.str(c.path!));
  if (c.iface !== undefined) field(2, "s", () => w.str(c.iface!));
  if (c.member !== undefined) field(3, "s", () => w.str(c.member!));
  if (c.errorName !== undefined) field(4, "s", () => w.str(c.errorName!));
  if (c.replySerial !== undefined) field(5, "u", () => w.u32(c.replySerial!));
  if (c.dest !== undefined) field(6, "s", () => w.str(c.dest!));
  if (c.signature) field(8, "g", () => w.sig(c.signature!));
  w.patchU32(lenAt, w.pos - start);
  w.align(8);
  return Buffer.concat([w.done(), body]);
}

// ---------------------------------------------------------------------------------------------
// Reading: any byte order, every length and offset checked.

type Value = number | bigint | boolean | string | Buffer | Value[] | { sig: string; value: Value };

class Reader {
  pos: number;
  constructor(
    private readonly buf: Buffer,
    private readonly le: boolean,
    pos: number,
    private readonly end: number,
  ) {
    this.pos = pos;
  }
  private need(n: number) {
    if (n < 0 || this.pos + n > this.end) throw new WireError("a value runs past the end of its message");
  }
  align(n: number) {
    const to = Math.ceil(this.pos / n) * n;
    if (to > this.end) throw new WireError("padding runs past the end of its message");
    this.pos = to;
  }
  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }
  u32(): number {
    this.align(4);
    this.need(4);
    const v = this.le ? this.buf.readUInt32LE(this.pos) : this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  private text(len: number): string {
    this.need(len + 1);
    const s = this.buf.toString("utf8", this.pos, this.pos + len);
    if (this.buf[this.pos + len] !== 0) throw new WireError("a string is not NUL-terminated");
    this.pos += len + 1;
    return s;
  }
  str(): string {
    return this.text(this.u32());
  }
  sig(): string {
    const s = this.text(this.u8());
    if (!/^[ybnqiuxtdsogavh(){}]*$/.test(s)) throw new WireError("a signature holds an unknown type");
    return s;
  }
  /** Reads one complete type from `sig` at `i`, returning the value and the index after it. */
  value(sig: string, i: number, depth = 0): [Value, number] {
    if (depth > MAX_DEPTH) throw new WireError("values are nested too deeply");
    const t = sig[i];
    switch (t) {
      case "y":
        return [this.u8(), i + 1];
      case "b": {
        const v = this.u32();
        if (v > 1) throw new WireError("a boolean is neither 0 nor 1");
        return [v === 1, i + 1];
      }
      case "n":
      case "q": {
        this.align(2);
        this.need(2);
        const v =
          t === "n"
            ? this.le
              ? this.buf.readInt16LE(this.pos)
              : this.buf.readInt16BE(this.pos)
            : this.le
              ? this.buf.readUInt16LE(this.pos)
              : this.buf.readUInt16BE(this.pos);
        this.pos += 2;
        return [v, i + 1];
      }
      case "i":
      case "u":
      case "h":
        return [this.u32(), i + 1];
      case "x":
      case "t":
      case "d": {
        this.align(8);
        this.need(8);
        const v =
          t === "d"
            ? this.le
              ? this.buf.readDoubleLE(this.pos)
              : this.buf.readDoubleBE(this.pos)
            : this.le
              ? this.buf.readBigUInt64LE(this.pos)
              : this.buf.readBigUInt64BE(this.pos);
        this.pos += 8;
        return [v, i + 1];
      }
      case "s":
      case "o":
        return [this.str(), i + 1];
      case "g":
        return [this.sig(), i + 1];
      case "v": {
        const inner = this.sig();
        const [v, next] = this.value(inner, 0, depth + 1);
        if (next !== inner.length) throw new WireError("a variant holds more than one type");
        return [{ sig: inner, value: v }, i + 1];
      }
      case "a": {
        const len = this.u32();
        if (len > MAX_MESSAGE) throw new WireError("an array is too long");
        const elemEnd = completeType(sig, i + 1);
        const elem = sig.slice(i + 1, elemEnd);
        this.align(alignment(elem[0]));
        this.need(len);
        const stop = this.pos + len;
        if (elem === "y") {
          const bytes = Buffer.from(this.buf.subarray(this.pos, stop));
          this.pos = stop;
          return [bytes, elemEnd];
        }
        const items: Value[] = [];
        while (this.pos < stop) {
          const before = this.pos;
          const [v] = this.value(elem, 0, depth + 1);
          // Every valid element takes at least one byte; zero would loop forever.
          if (this.pos === before) throw new WireError("an array element takes no space");
          items.push(v);
          if (this.pos > stop) throw new WireError("an array element runs past its array");
        }
        return [items, elemEnd];
      }
      case "(":
      case "{": {
        this.align(8);
        const close = t === "(" ? ")" : "}";
        const fields: Value[] = [];
        let j = i + 1;
        while (sig[j] !== close) {
          if (j >= sig.length) throw new WireError("a struct in a signature is not closed");
          const [v, next] = this.value(sig, j, depth + 1);
          fields.push(v);
          j = next;
        }
        if (fields.length === 0 || (t === "{" && fields.length !== 2))
          throw new WireError("an empty struct or a dict entry without a key and a value");
        return [fields, j + 1];
      }
      default:
        throw new WireError(`unexpected type ${JSON.stringify(t ?? "")} in a signature`);
    }
  }
  /** Reads every value of `sig`. */
  all(sig: string): Value[] {
    const out: Value[] = [];
    let i = 0;
    while (i < sig.length) {
      const [v, next] = this.value(sig, i);
      out.push(v);
      i = next;
    }
    return out;
  }
}

function alignment(t: string | undefined): number {
  switch (t) {
    case "n":
    case "q":
      return 2;
    case "b":
    case "i":
    case "u":
    case "h":
    case "s":
    case "o":
    case "a":
      return 4;
    case "x":
    case "t":
    case "d":
    case "(":
    case "{":
      return 8;
    default:
      return 1;
  }
}

/** The index just after the single complete type that starts at `i` in `sig`. */
function completeType(sig: string, i: number, depth = 0): number {
  if (depth > MAX_DEPTH) throw new WireError("a signature is nested too deeply");
  const t = sig[i];
  if (t === undefined) throw new WireError("a signature ends inside a type");
  if (t === "a") return completeType(sig, i + 1, depth + 1);
  if (t === "(" || t === "{") {
    const close = t === "(" ? ")" : "}";
    let j = i + 1;
    let fields = 0;
    while (sig[j] !== close) {
      if (j >= sig.length) throw new WireError("a struct in a signature is not closed");
      j = completeType(sig, j, depth + 1);
      fields++;
    }
    if (fields === 0 || (t === "{" && fields !== 2))
      throw new WireError("an empty struct or a dict entry without a key and a value");
    return j + 1;
  }
  if (!"ybnqiuxtdsogvh".includes(t))
    throw new WireError(`unexpected type ${JSON.stringify(t)} in a signature`);
  return i + 1;
}

export interface Message {
  type: number;
  serial: number;
  replySerial?: number;
  errorName?: string;
  member?: string;
  signature: string;
  body: Value[];
}

/** Parses the complete messages at the start of `buf`; returns them and the bytes left over. */
export function parseMessages(buf: Buffer): { messages: Message[]; rest: Buffer } {
  const messages: Message[] = [];
  let off = 0;
  while (buf.length - off >= 16) {
    const endian = buf[off];
    if (endian !== 0x6c && endian !== 0x42) throw new WireError("a message has no valid byte order mark");
    const le = endian === 0x6c;
    if (buf[off + 3] !== 1) throw new WireError("a message has an unknown protocol version");
    const u32 = (p: number) => (le ? buf.readUInt32LE(p) : buf.readUInt32BE(p));
    const bodyLen = u32(off + 4);
    const fieldsLen = u32(off + 12);
    if (bodyLen > MAX_MESSAGE || fieldsLen > MAX_MESSAGE) throw new WireError("a message is too large");
    const bodyStart = Math.ceil((16 + fieldsLen) / 8) * 8;
    const total = bodyStart + bodyLen;
    if (total > MAX_MESSAGE) throw new WireError("a message is too large");
    if (buf.length - off < total) break;
    const msgBuf = buf.subarray(off, off + total);
    const type = msgBuf[1]!;
    const serial = u32(off + 8);
    const header = new Reader(msgBuf, le, 12, 16 + fieldsLen);
    const [fields] = header.value("a(yv)", 0);
    const msg: Message = { type, serial, signature: "", body: [] };
    for (const f of fields as Value[][]) {
      const code = f[0] as number;
      const v = f[1] as { sig: string; value: Value };
      if (code === 5 && v.sig === "u") msg.replySerial = v.value as number;
      else if (code === 4 && v.sig === "s") msg.errorName = v.value as string;
      else if (code === 8 && v.sig === "g") msg.signature = v.value as string;
      else if (code === 3 && v.sig === "s") msg.member = v.value as string;
    }
    if (msg.signature) {
      const body = new Reader(msgBuf, le, bodyStart, total);
      msg.body = body.all(msg.signature);
      if (body.pos !== total) throw new WireError("a message body is longer than its signature says");
    }
    messages.push(msg);
    off += total;
  }
  return { messages, rest: buf.subarray(off) };
}

// ---------------------------------------------------------------------------------------------
// One conversation: connect, authenticate, send the opening messages, hand each reply over.

export interface Conversation<R> {
  /** The messages sent right after authentication. */
  opening(): Buffer[];
  /** Each parsed message; return a result to end the conversation. `send` writes more. */
  onMessage(m: Message, send: (b: Buffer) => void): R | undefined;
  /** The result for any failure: no bus, refusal, timeout, a reply that does not parse. */
  unavailable(reason: string): R;
}

/** Runs `c` on the session bus within `timeoutMs` overall. Never throws. */
export async function converse<R>(env: Env, timeoutMs: number, c: Conversation<R>): Promise<R> {
  const { connect } = await import("node:net");
  const path = sessionBusPath(env);
  if (!path) return c.unavailable("no D-Bus session bus address (DBUS_SESSION_BUS_ADDRESS is not set)");
  return new Promise((resolve) => {
    let settled = false;
    const socket: Socket = connect({ path });
    const finish = (r: R) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const fail = (reason: string) => finish(c.unavailable(reason));
    const timer = setTimeout(
      () => fail(`the D-Bus session bus or the Secret Service did not answer within ${timeoutMs} ms`),
      timeoutMs,
    );
    const garbled = (detail: string) =>
      fail(`the D-Bus session bus sent a reply azkeep cannot read (${detail})`);
    const send = (b: Buffer) => void socket.write(b);
    let stage: "auth" | "messages" = "auth";
    let pending: Buffer = Buffer.alloc(0);
    socket.on("error", (e) =>
      fail(`cannot reach the D-Bus session bus at ${path.replace("\0", "@")}: ${e.message}`),
    );
    socket.on("close", () => fail("the D-Bus session bus closed the connection"));
    socket.on("connect", () => {
      const uid = String(process.getuid?.() ?? 0);
      socket.write(
        Buffer.concat([
          Buffer.from([0]),
          Buffer.from(`AUTH EXTERNAL ${Buffer.from(uid).toString("hex")}\r\n`),
        ]),
      );
    });
    socket.on("data", (chunk: Buffer) => {
      if (settled) return;
      pending = Buffer.concat([pending, chunk]);
      if (stage === "auth") {
        const nl = pending.indexOf("\r\n");
        if (nl < 0) {
          if (pending.length > 4096) garbled("an authentication line without an end");
          return;
        }
        const line = pending.toString("latin1", 0, nl);
        pending = pending.subarray(nl + 2);
        if (!/^OK [0-9a-f]+$/.test(line))
          return fail(`the D-Bus session bus refused authentication (${line.slice(0, 80)})`);
        stage = "messages";
        socket.write(Buffer.concat([Buffer.from("BEGIN\r\n"), ...c.opening()]));
      }
      let messages: Message[];
      try {
        ({ messages, rest: pending } = parseMessages(pending));
      } catch (e) {
        return garbled((e as Error).message);
      }
      for (const m of messages) {
        const r = c.onMessage(m, send);
        if (r !== undefined) return finish(r);
      }
    });
  });
}

/** A call with no arguments, e.g. `Hello` or `Peer.Ping`. */
export function call(serial: number, dest: string, path: string, iface: string, member: string): Buffer {
  return encodeMessage({ serial, dest, path, iface, member });
}

/** Why an error reply to a call on `org.freedesktop.secrets` means the service is not there; undefined when it is alive. */
export function secretServiceDown(errorName: string): string | undefined {
  if (
    errorName === "org.freedesktop.DBus.Error.ServiceUnknown" ||
    errorName === "org.freedesktop.DBus.Error.NameHasNoOwner"
  )
    return "no Secret Service (e.g. gnome-keyring) is running or installed on the session bus";
  if (/\.Spawn\.|NoReply|Timeout/.test(errorName))
    return `the Secret Service could not be started (${errorName})`;
  return undefined;
}
