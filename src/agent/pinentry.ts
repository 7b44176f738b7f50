/**
 * A client for `pinentry`, the program gpg-agent asks a person through, over the Assuan
 * protocol (one command per line on its stdin, `OK` / `ERR code text` / `D data` / `S status`
 * back on its stdout; arguments percent-escaped).
 *
 * The agent uses it for the two questions only a person may answer: "may this program have
 * this token?" (CONFIRM) and the store passphrase at unlock (GETPIN). The channel matters more
 * than the words: the asking program must not be able to answer for itself, so the prompt goes
 * to the terminal the agent was started or unlocked from (`OPTION ttyname`), or to a desktop
 * dialog (`pinentry-gnome3`), never to a pipe the caller holds.
 *
 * Anything but an explicit OK — cancel, timeout, a pinentry that cannot be started or that
 * answers garbage — is a refusal.
 */
import { spawn as nodeSpawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { existsSync } from "node:fs";

/** Where pinentry programs are looked for. Fixed system folders only: a same-uid program must
 *  not be able to put a "pinentry" that always says yes earlier on the agent's PATH. */
export const PINENTRY_DIRS = ["/usr/bin", "/usr/local/bin", "/bin"];

export type PinentryKind = "tty" | "desktop";

/**
 * Chooses a pinentry program: on a desktop (DISPLAY or WAYLAND_DISPLAY) a dialog
 * (gnome3, qt, gtk2), otherwise one for a terminal (curses, tty). `preferred` (an absolute path
 * from the sealed policy) wins when it exists. Undefined = none installed.
 */
export function findPinentry(
  options: {
    desktop?: boolean;
    preferred?: string;
    exists?: (path: string) => boolean;
  } = {},
): { program: string; kind: PinentryKind } | undefined {
  const exists = options.exists ?? existsSync;
  if (options.preferred && options.preferred.startsWith("/") && exists(options.preferred)) {
    const kind: PinentryKind = /(curses|tty)$/.test(options.preferred) ? "tty" : "desktop";
    return { program: options.preferred, kind };
  }
  const names: [string, PinentryKind][] = [
    ...(options.desktop
      ? ([
          ["pinentry-gnome3", "desktop"],
          ["pinentry-qt", "desktop"],
          ["pinentry-gtk-2", "desktop"],
        ] as [string, PinentryKind][])
      : []),
    ["pinentry-curses", "tty"],
    ["pinentry-tty", "tty"],
  ];
  for (const [name, kind] of names)
    for (const dir of PINENTRY_DIRS) {
      const p = `${dir}/${name}`;
      if (exists(p)) return { program: p, kind };
    }
  return undefined;
}

/** Assuan escapes `%`, CR and LF in command arguments. */
export function assuanEscape(text: string): string {
  return text.replace(/[%\r\n]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0")}`);
}

/** Decodes `%XX` in a data line into bytes (a passphrase never becomes a JS string here). */
export function assuanUnescape(line: Buffer): Buffer {
  const out = Buffer.alloc(line.length);
  let n = 0;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === 0x25 && i + 2 < line.length) {
      const v = Number.parseInt(String.fromCharCode(line[i + 1]!, line[i + 2]!), 16);
      if (!Number.isNaN(v)) {
        out[n++] = v;
        i += 2;
        continue;
      }
    }
    out[n++] = c;
  }
  const res = Buffer.from(out.subarray(0, n));
  out.fill(0);
  return res;
}

/** Assuan lines are at most 1000 bytes; a description is cut to fit, on a character boundary. */
const MAX_LINE = 1000;
function fit(command: string, text: string): string {
  let arg = assuanEscape(text);
  while (Buffer.byteLength(`${command} ${arg}`) > MAX_LINE - 2) {
    text = text.slice(0, Math.max(0, text.length - 20));
    arg = assuanEscape(`${text}…`);
  }
  return `${command} ${arg}`;
}

/** GPG error codes (low 16 bits of an Assuan ERR): what pinentry answers on cancel/timeout. */
const GPG_ERR_TIMEOUT = 62;
const GPG_ERR_CANCELED = 99;
const GPG_ERR_NOT_CONFIRMED = 114;

export interface AssuanReply {
  ok: boolean;
  /** The GPG error code (low 16 bits) of an ERR line. */
  code?: number | undefined;
  message?: string;
  /** Concatenated, decoded D lines (wipe it when it held a secret). */
  data: Buffer;
}

export interface PinentryOptions {
  /** Absolute path of the pinentry program. */
  program: string;
  /** The terminal to ask on (`--ttyname` / `OPTION ttyname`); needed by curses/tty. */
  ttyname?: string;
  ttytype?: string;
  lcCtype?: string;
  /** X display for desktop pinentries. */
  display?: string;
  /** Seconds the person has to answer; then it counts as a refusal. */
  timeoutSec: number;
  /** The environment pinentry runs with (DISPLAY, DBUS_SESSION_BUS_ADDRESS, …). */
  env?: Record<string, string | undefined>;
  /** Injected spawn (tests); node's by default. */
  spawn?: typeof nodeSpawn;
}

export type ConfirmOutcome =
  { answer: "allow" } | { answer: "cancel" } | { answer: "timeout" } | { answer: "failed"; detail: string };

export interface Dialog {
  title?: string;
  description: string;
  prompt?: string;
  ok?: string;
  cancel?: string;
}

/** One running pinentry and its Assuan conversation. */
export class Pinentry {
  private child: ChildProcessWithoutNullStreams;
  private buf = Buffer.alloc(0);
  private waiting: ((line: Buffer | undefined) => void)[] = [];
  private lines: Buffer[] = [];
  private closed = false;
  private stderr = "";
  private killTimer: NodeJS.Timeout | undefined;

  private constructor(child: ChildProcessWithoutNullStreams) {
    this.child = child;
    child.stdout.on("data", (d: Buffer) => this.onData(d));
    child.stderr.on("data", (d: Buffer) => {
      if (this.stderr.length < 2000) this.stderr += d.toString("utf8");
    });
    const onEnd = () => {
      this.closed = true;
      for (const w of this.waiting.splice(0)) w(undefined);
    };
    child.on("close", onEnd);
    child.on("error", onEnd);
    child.stdin.on("error", () => {});
  }

  /** Starts pinentry and reads its greeting; rejects when it cannot be started. */
  static async open(options: PinentryOptions): Promise<Pinentry> {
    const args: string[] = [];
    if (options.ttyname) args.push("--ttyname", options.ttyname);
    if (options.ttytype) args.push("--ttytype", options.ttytype);
    if (options.display) args.push("--display", options.display);
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(options.env ?? {})) if (v !== undefined) env[k] = v;
    const child = (options.spawn ?? nodeSpawn)(options.program, args, {
      stdio: ["pipe", "pipe", "pipe"],
      env,
    });
    const p = new Pinentry(child);
    // A pinentry that hangs past the person's time is killed: the answer is then "no".
    p.killTimer = setTimeout(() => p.kill(), (options.timeoutSec + 10) * 1000);
    p.killTimer.unref();
    const greeting = await p.readReply();
    if (!greeting.ok) {
      p.kill();
      throw new Error(`${options.program} did not start: ${greeting.message ?? "no greeting"}`);
    }
    if (options.ttyname) await p.expectOk(`OPTION ttyname=${options.ttyname}`);
    await p.expectOk(`OPTION ttytype=${options.ttytype ?? "xterm"}`);
    if (options.lcCtype) await p.expectOk(`OPTION lc-ctype=${options.lcCtype}`);
    if (options.display) await p.command(`OPTION display=${options.display}`);
    // Pinentry can say which pid asks (gpg-agent does this); the dialog text names it anyway.
    await p.command(`SETTIMEOUT ${Math.max(1, Math.floor(options.timeoutSec))}`);
    return p;
  }

  private onData(d: Buffer) {
    this.buf = Buffer.concat([this.buf, d]);
    for (;;) {
      const nl = this.buf.indexOf(0x0a);
      if (nl < 0) break;
      const line = Buffer.from(this.buf.subarray(0, nl));
      this.buf.fill(0, 0, nl + 1);
      this.buf = this.buf.subarray(nl + 1);
      const w = this.waiting.shift();
      if (w) w(line);
      else this.lines.push(line);
    }
    if (this.buf.length > 64 * 1024) this.kill(); // no real pinentry sends such a line
  }

  private nextLine(): Promise<Buffer | undefined> {
    const l = this.lines.shift();
    if (l) return Promise.resolve(l);
    if (this.closed) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private async readReply(): Promise<AssuanReply> {
    const data: Buffer[] = [];
    for (;;) {
      const line = await this.nextLine();
      if (!line) {
        const why = this.stderr.trim().split("\n")[0];
        return { ok: false, message: why || "pinentry exited", data: Buffer.concat(data) };
      }
      const head = line.subarray(0, 3).toString("latin1");
      if (line.length >= 2 && line[0] === 0x4f && line[1] === 0x4b && (line.length === 2 || line[2] === 0x20))
        return { ok: true, data: concatWipe(data) };
      if (head === "ERR") {
        const m = /^ERR (\d+)\s*(.*)$/.exec(line.toString("utf8"));
        return {
          ok: false,
          code: m ? Number(m[1]) & 0xffff : undefined,
          message: m?.[2] ?? "error",
          data: concatWipe(data),
        };
      }
      if (line[0] === 0x44 && line[1] === 0x20) {
        data.push(assuanUnescape(line.subarray(2)));
        line.fill(0);
        continue;
      }
      if (head === "INQ") {
        // We offer nothing to inquire: end it so pinentry does not wait forever.
        this.write("CAN");
        continue;
      }
      // "S …" status and "# …" comments carry nothing we decide on.
    }
  }

  private write(line: string) {
    if (!this.closed) this.child.stdin.write(`${line}\n`);
  }

  /** Sends one command and reads its reply. */
  async command(line: string): Promise<AssuanReply> {
    if (this.closed) return { ok: false, message: "pinentry exited", data: Buffer.alloc(0) };
    this.write(line);
    return this.readReply();
  }

  private async expectOk(line: string) {
    const r = await this.command(line);
    if (!r.ok) throw new Error(`pinentry refused "${line.split(" ")[0]}": ${r.message ?? ""}`);
  }

  private async setDialog(d: Dialog) {
    if (d.title) await this.command(fit("SETTITLE", d.title));
    await this.expectOk(fit("SETDESC", d.description));
    if (d.prompt) await this.command(fit("SETPROMPT", d.prompt));
    if (d.ok) await this.command(fit("SETOK", d.ok));
    if (d.cancel) await this.command(fit("SETCANCEL", d.cancel));
  }

  /** Asks a yes/no question; only an explicit OK allows. */
  async confirm(d: Dialog): Promise<ConfirmOutcome> {
    try {
      await this.setDialog(d);
    } catch (e) {
      return { answer: "failed", detail: (e as Error).message };
    }
    const r = await this.command("CONFIRM");
    if (r.ok) return { answer: "allow" };
    if (r.code === GPG_ERR_CANCELED || r.code === GPG_ERR_NOT_CONFIRMED) return { answer: "cancel" };
    if (r.code === GPG_ERR_TIMEOUT) return { answer: "timeout" };
    return { answer: "failed", detail: r.message ?? "pinentry failed" };
  }

  /** Asks for a secret; undefined on cancel/timeout/failure. The caller wipes the buffer. */
  async getPin(d: Dialog): Promise<Buffer | undefined> {
    try {
      await this.setDialog(d);
    } catch {
      return undefined;
    }
    const r = await this.command("GETPIN");
    if (!r.ok) {
      r.data.fill(0);
      return undefined;
    }
    return r.data;
  }

  kill() {
    if (this.killTimer) clearTimeout(this.killTimer);
    if (!this.closed)
      try {
        this.child.kill("SIGKILL");
      } catch {
        /* gone */
      }
  }

  /** Says BYE and makes sure the process is gone. */
  async close(): Promise<void> {
    if (this.killTimer) clearTimeout(this.killTimer);
    if (!this.closed) {
      this.write("BYE");
      await Promise.race([
        new Promise<void>((resolve) => this.child.once("close", () => resolve())),
        new Promise<void>((resolve) => setTimeout(resolve, 500).unref()),
      ]);
    }
    this.kill();
  }
}

function concatWipe(parts: Buffer[]): Buffer {
  const out = Buffer.concat(parts);
  for (const p of parts) p.fill(0);
  return out;
}

/** One CONFIRM question in its own pinentry; a pinentry that cannot start is `failed`. */
export async function pinentryConfirm(options: PinentryOptions, dialog: Dialog): Promise<ConfirmOutcome> {
  let p: Pinentry;
  try {
    p = await Pinentry.open(options);
  } catch (e) {
    return { answer: "failed", detail: (e as Error).message };
  }
  try {
    return await p.confirm(dialog);
  } finally {
    await p.close();
  }
}

/**
 * One GETPIN question in its own pinentry (the passphrase at unlock): the answer; `null` when
 * the person cancelled or let it time out; undefined when the pinentry could not start.
 */
export async function pinentryGetPin(
  options: PinentryOptions,
  dialog: Dialog,
): Promise<Buffer | null | undefined> {
  let p: Pinentry;
  try {
    p = await Pinentry.open(options);
  } catch {
    return undefined;
  }
  try {
    return (await p.getPin(dialog)) ?? null;
  } finally {
    await p.close();
  }
}

/**
 * How to run a pinentry found by `findPinentry` for a person whose environment is `env`: on
 * `ttyname` for curses/tty, on the display for a desktop one, with only the variables a
 * pinentry needs (the agent and `agent unlock` both use it).
 */
export function pinentryOptions(
  program: string,
  env: Record<string, string | undefined>,
  o: { ttyname?: string | undefined; timeoutSec: number },
): PinentryOptions {
  return {
    program,
    ...(o.ttyname ? { ttyname: o.ttyname } : {}),
    ...(env.DISPLAY ? { display: env.DISPLAY } : {}),
    ttytype: env.TERM && env.TERM !== "dumb" ? env.TERM : "xterm",
    lcCtype: env.LC_ALL || env.LC_CTYPE || env.LANG || "C.UTF-8",
    timeoutSec: o.timeoutSec,
    env: {
      PATH: "/usr/bin:/bin",
      HOME: env.HOME,
      DISPLAY: env.DISPLAY,
      WAYLAND_DISPLAY: env.WAYLAND_DISPLAY,
      DBUS_SESSION_BUS_ADDRESS: env.DBUS_SESSION_BUS_ADDRESS,
      XDG_RUNTIME_DIR: env.XDG_RUNTIME_DIR,
      TERM: env.TERM,
      LANG: env.LANG,
    },
  };
}
