/**
 * A pure-JavaScript check that a Secret Service answers on the D-Bus session bus, run before
 * @napi-rs/keyring is touched.
 *
 * Why: the native module connects synchronously on the main thread and cannot be cancelled.
 * Measured here: on a bus that accepts the connection and never speaks it blocks forever, and
 * once a native call is stuck even `process.exit()` hangs (the addon's runtime is joined at
 * exit). So azkeep asks the bus itself, with a timeout: authenticate (SASL EXTERNAL), `Hello`,
 * then `org.freedesktop.DBus.Peer.Ping` to `org.freedesktop.secrets` (which also starts the
 * service by activation if it is installed but not running). Only when that answers does the
 * native module get to talk to it. About 1–2 ms against a live gnome-keyring.
 */
import type { Socket } from "node:net";
import { join } from "node:path";
import type { Env } from "../../context.js";

export type ProbeResult = { ok: true } | { ok: false; reason: string };

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

class Writer {
  private buf = Buffer.alloc(256);
  pos = 0;
  private ensure(n: number) {
    if (this.pos + n > this.buf.length) this.buf = Buffer.concat([this.buf, Buffer.alloc(Math.max(256, n))]);
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
  str(s: string) {
    const b = Buffer.from(s, "utf8");
    this.u32(b.length);
    this.ensure(b.length + 1);
    b.copy(this.buf, this.pos);
    this.pos += b.length;
    this.buf[this.pos++] = 0;
  }
  sig(s: string) {
    this.byte(s.length);
    this.ensure(s.length + 1);
    this.buf.write(s, this.pos, "latin1");
    this.pos += s.length;
    this.buf[this.pos++] = 0;
  }
  done(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

/** A METHOD_CALL with no body. */
function methodCall(serial: number, dest: string, path: string, iface: string, member: string): Buffer {
  const w = new Writer();
  w.byte(0x6c); // 'l': little endian
  w.byte(1); // METHOD_CALL
  w.byte(0); // flags (auto-start allowed)
  w.byte(1); // protocol version
  w.u32(0); // body length
  w.u32(serial);
  const lenAt = w.pos;
  w.u32(0); // header fields array length, patched below
  const start = w.pos;
  const field = (code: number, type: string, value: string) => {
    w.align(8);
    w.byte(code);
    w.sig(type);
    w.str(value);
  };
  field(1, "o", path);
  field(2, "s", iface);
  field(3, "s", member);
  field(6, "s", dest);
  const fieldsLen = w.pos - start;
  w.align(8);
  const msg = Buffer.from(w.done());
  msg.writeUInt32LE(fieldsLen, lenAt);
  return msg;
}

interface Reply {
  type: number;
  replySerial?: number;
  errorName?: string;
}

/** Parses complete messages from `buf`; returns them and the bytes left over. */
function parseMessages(buf: Buffer): { messages: Reply[]; rest: Buffer } {
  const messages: Reply[] = [];
  let off = 0;
  while (buf.length - off >= 16) {
    const le = buf[off] === 0x6c;
    const u32 = (p: number) => (le ? buf.readUInt32LE(p) : buf.readUInt32BE(p));
    const bodyLen = u32(off + 4);
    const fieldsLen = u32(off + 12);
    const headerEnd = off + 16 + fieldsLen;
    const total = Math.ceil((16 + fieldsLen) / 8) * 8 + bodyLen;
    if (buf.length - off < total) break;
    const reply: Reply = { type: buf[off + 1]! };
    let p = off + 16;
    while (p < headerEnd) {
      p = off + Math.ceil((p - off) / 8) * 8;
      if (p >= headerEnd) break;
      const code = buf[p]!;
      const sigLen = buf[p + 1]!;
      const sig = buf.toString("latin1", p + 2, p + 2 + sigLen);
      p += 3 + sigLen;
      const align4 = () => (p = off + Math.ceil((p - off) / 4) * 4);
      if (sig === "u") {
        align4();
        if (code === 5) reply.replySerial = u32(p);
        p += 4;
      } else if (sig === "s" || sig === "o") {
        align4();
        const len = u32(p);
        if (code === 4) reply.errorName = buf.toString("utf8", p + 4, p + 4 + len);
        p += 4 + len + 1;
      } else if (sig === "g") {
        p += 1 + buf[p]! + 1;
      } else break; // not a type a reply header carries; the fields we need come first in practice
    }
    messages.push(reply);
    off += total;
  }
  return { messages, rest: buf.subarray(off) };
}

/** Asks the session bus whether a Secret Service answers, within `timeoutMs`. Never throws. */
export async function probeSecretService(env: Env, timeoutMs: number): Promise<ProbeResult> {
  // node:net is loaded here, not at start-up: in a one-file bundle a static import would cost
  // every command, keyring or not.
  const { connect } = await import("node:net");
  const path = sessionBusPath(env);
  if (!path)
    return { ok: false, reason: "no D-Bus session bus address (DBUS_SESSION_BUS_ADDRESS is not set)" };
  return new Promise((resolve) => {
    let settled = false;
    const socket: Socket = connect({ path });
    const finish = (r: ProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const timer = setTimeout(
      () =>
        finish({
          ok: false,
          reason: `the D-Bus session bus or the Secret Service did not answer within ${timeoutMs} ms`,
        }),
      timeoutMs,
    );
    let stage: "auth" | "messages" = "auth";
    let pending: Buffer = Buffer.alloc(0);
    socket.on("error", (e) =>
      finish({
        ok: false,
        reason: `cannot reach the D-Bus session bus at ${path.replace("\0", "@")}: ${e.message}`,
      }),
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
    socket.on("data", (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      if (stage === "auth") {
        const nl = pending.indexOf("\r\n");
        if (nl < 0) return;
        const line = pending.toString("latin1", 0, nl);
        pending = pending.subarray(nl + 2);
        if (!line.startsWith("OK "))
          return finish({ ok: false, reason: `the D-Bus session bus refused authentication (${line})` });
        stage = "messages";
        socket.write(
          Buffer.concat([
            Buffer.from("BEGIN\r\n"),
            methodCall(1, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "Hello"),
            methodCall(
              2,
              "org.freedesktop.secrets",
              "/org/freedesktop/secrets",
              "org.freedesktop.DBus.Peer",
              "Ping",
            ),
          ]),
        );
      }
      const { messages, rest } = parseMessages(pending);
      pending = rest;
      for (const m of messages) {
        if (m.replySerial !== 2) continue;
        if (m.type === 2) return finish({ ok: true });
        if (m.type === 3) {
          const name = m.errorName ?? "";
          if (
            name === "org.freedesktop.DBus.Error.ServiceUnknown" ||
            name === "org.freedesktop.DBus.Error.NameHasNoOwner"
          )
            return finish({
              ok: false,
              reason: "no Secret Service (e.g. gnome-keyring) is running or installed on the session bus",
            });
          if (/\.Spawn\.|NoReply|Timeout/.test(name))
            return finish({ ok: false, reason: `the Secret Service could not be started (${name})` });
          // Any other error (UnknownMethod, …) is still an answer: the service is alive.
          return finish({ ok: true });
        }
      }
    });
  });
}
