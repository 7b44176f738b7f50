/**
 * A small pure-JavaScript Secret Service client that READS one item over the D-Bus session bus:
 * the `keyring` provider's hot path on Linux, instead of loading @napi-rs/keyring (~10 ms) and
 * letting it open its own session (~13 ms).
 *
 * One connection, two round trips after authentication: `Hello`, `Service.OpenSession("plain")`
 * and `Service.SearchItems(attributes)` are sent together; then `Item.GetSecret(session)` on the
 * one unlocked item found. Everything is bounded by one timeout, every length and offset in a
 * reply is checked, and a reply that does not parse is an error, never a hang or a guess.
 *
 * It answers only what it can decide for sure:
 * - `found`: exactly one unlocked item matches and its secret came back;
 * - `missing`: the service answered that no item (locked or not) matches;
 * - `undecided`: the service is alive but something needs more than this client does (a locked
 *   item or collection to unlock, a prompt, several matching items, an error reply it does not
 *   know): the caller then asks the native module, which can unlock and prompt;
 * - `unavailable`: no bus, no service, a timeout or a reply that does not parse.
 *
 * The "plain" algorithm: the secret travels over the session bus unencrypted, as with libsecret's
 * own clients when they choose it. The session bus is a per-user socket (mode 0700 folder /
 * credentials-checked); anyone who can read that traffic can already ask the keyring directly.
 */
import type { Socket } from "node:net";
import type { Env } from "../../context.js";
import { sessionBusPath } from "./dbus-probe.js";

export type SecretLookup =
  | { kind: "found"; secret: Uint8Array }
  | { kind: "missing" }
  | { kind: "undecided"; reason: string }
  | { kind: "unavailable"; reason: string };

/** Largest message accepted from the bus (the spec allows 128 MiB; a key lookup needs a few KiB). */
const MAX_MESSAGE = 1 << 20;
const MAX_DEPTH = 32;

const SECRETS = "org.freedesktop.secrets";
const SERVICE_PATH = "/org/freedesktop/secrets";

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
// The lookup.

const isPath = (v: unknown): v is string => typeof v === "string" && v.startsWith("/");

function classifyError(name: string, what: string): SecretLookup {
  if (
    name === "org.freedesktop.DBus.Error.ServiceUnknown" ||
    name === "org.freedesktop.DBus.Error.NameHasNoOwner"
  )
    return {
      kind: "unavailable",
      reason: "no Secret Service (e.g. gnome-keyring) is running or installed on the session bus",
    };
  if (/\.Spawn\.|NoReply|Timeout/.test(name))
    return { kind: "unavailable", reason: `the Secret Service could not be started (${name})` };
  // Alive, but saying something this client does not handle (IsLocked, NotSupported, …).
  return { kind: "undecided", reason: `${what} answered ${name || "an error"}` };
}

/**
 * Looks up the one item whose attributes include `attributes` and returns its secret, within
 * `timeoutMs` overall. Never throws.
 */
export async function lookupSecret(
  env: Env,
  attributes: Record<string, string>,
  timeoutMs: number,
): Promise<SecretLookup> {
  // node:net is loaded here, not at start-up (a static import would cost every command).
  const { connect } = await import("node:net");
  const path = sessionBusPath(env);
  if (!path)
    return {
      kind: "unavailable",
      reason: "no D-Bus session bus address (DBUS_SESSION_BUS_ADDRESS is not set)",
    };
  return new Promise((resolve) => {
    let settled = false;
    const socket: Socket = connect({ path });
    const finish = (r: SecretLookup) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const timer = setTimeout(
      () =>
        finish({
          kind: "unavailable",
          reason: `the D-Bus session bus or the Secret Service did not answer within ${timeoutMs} ms`,
        }),
      timeoutMs,
    );
    const garbled = (detail: string) =>
      finish({
        kind: "unavailable",
        reason: `the D-Bus session bus sent a reply azkeep cannot read (${detail})`,
      });
    let stage: "auth" | "messages" = "auth";
    let pending: Buffer = Buffer.alloc(0);
    let session: string | undefined;
    let found: { unlocked: string[]; locked: string[] } | undefined;
    socket.on("error", (e) =>
      finish({
        kind: "unavailable",
        reason: `cannot reach the D-Bus session bus at ${path.replace("\0", "@")}: ${e.message}`,
      }),
    );
    socket.on("close", () =>
      finish({ kind: "unavailable", reason: "the D-Bus session bus closed the connection" }),
    );
    socket.on("connect", () => {
      const uid = String(process.getuid?.() ?? 0);
      socket.write(
        Buffer.concat([
          Buffer.from([0]),
          Buffer.from(`AUTH EXTERNAL ${Buffer.from(uid).toString("hex")}\r\n`),
        ]),
      );
    });
    const getSecret = () => {
      if (!session || !found) return;
      if (found.locked.length > 0) return finish({ kind: "undecided", reason: "the item is locked" });
      if (found.unlocked.length === 0) return finish({ kind: "missing" });
      if (found.unlocked.length > 1)
        return finish({ kind: "undecided", reason: `${found.unlocked.length} items match` });
      socket.write(
        encodeMessage({
          serial: 4,
          dest: SECRETS,
          path: found.unlocked[0]!,
          iface: "org.freedesktop.Secret.Item",
          member: "GetSecret",
          signature: "o",
          body: (w) => w.str(session!),
        }),
      );
    };
    const onMessage = (m: Message) => {
      if (m.type !== 2 && m.type !== 3) return; // signals (NameAcquired), calls to us: not ours
      if (m.replySerial === 1) {
        if (m.type === 3) garbled(`the bus refused Hello: ${m.errorName ?? "error"}`);
        return;
      }
      if (m.replySerial === 2) {
        if (m.type === 3) return finish(classifyError(m.errorName ?? "", "OpenSession"));
        const out = m.body[1];
        if (m.signature !== "vo" || !isPath(out)) return garbled(`OpenSession returned ${m.signature}`);
        session = out;
        return getSecret();
      }
      if (m.replySerial === 3) {
        if (m.type === 3) return finish(classifyError(m.errorName ?? "", "SearchItems"));
        const [unlocked, locked] = m.body;
        if (
          m.signature !== "aoao" ||
          !Array.isArray(unlocked) ||
          !Array.isArray(locked) ||
          !unlocked.every(isPath) ||
          !locked.every(isPath)
        )
          return garbled(`SearchItems returned ${m.signature}`);
        found = { unlocked, locked };
        return getSecret();
      }
      if (m.replySerial === 4) {
        if (m.type === 3) return finish(classifyError(m.errorName ?? "", "GetSecret"));
        const s = m.body[0];
        if (m.signature !== "(oayays)" || !Array.isArray(s) || s.length !== 4)
          return garbled(`GetSecret returned ${m.signature}`);
        const [, params, value] = s;
        if (!Buffer.isBuffer(params) || !Buffer.isBuffer(value))
          return garbled("GetSecret returned a malformed secret");
        // "plain" has no parameters; anything else is not what was negotiated.
        if (params.length !== 0)
          return finish({ kind: "undecided", reason: "the secret came back encrypted" });
        return finish({ kind: "found", secret: new Uint8Array(value) });
      }
    };
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
          return finish({
            kind: "unavailable",
            reason: `the D-Bus session bus refused authentication (${line.slice(0, 80)})`,
          });
        stage = "messages";
        socket.write(
          Buffer.concat([
            Buffer.from("BEGIN\r\n"),
            encodeMessage({
              serial: 1,
              dest: "org.freedesktop.DBus",
              path: "/org/freedesktop/DBus",
              iface: "org.freedesktop.DBus",
              member: "Hello",
            }),
            encodeMessage({
              serial: 2,
              dest: SECRETS,
              path: SERVICE_PATH,
              iface: "org.freedesktop.Secret.Service",
              member: "OpenSession",
              signature: "sv",
              body: (w) => {
                w.str("plain");
                w.sig("s");
                w.str("");
              },
            }),
            encodeMessage({
              serial: 3,
              dest: SECRETS,
              path: SERVICE_PATH,
              iface: "org.freedesktop.Secret.Service",
              member: "SearchItems",
              signature: "a{ss}",
              body: (w) => {
                const lenAt = w.pos;
                w.u32(0);
                w.align(8);
                const start = w.pos;
                for (const [k, v] of Object.entries(attributes)) {
                  w.align(8);
                  w.str(k);
                  w.str(v);
                }
                w.patchU32(lenAt, w.pos - start);
              },
            }),
          ]),
        );
      }
      let messages: Message[];
      try {
        ({ messages, rest: pending } = parseMessages(pending));
      } catch (e) {
        return garbled((e as Error).message);
      }
      for (const m of messages) {
        onMessage(m);
        if (settled) return;
      }
    });
  });
}
