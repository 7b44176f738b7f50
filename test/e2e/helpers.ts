/**
 * Shared pieces of the cross-cutting end-to-end tests: a HOME per "machine", real processes
 * (optionally as another user), the tokens the emulator hands out, and a search for exact
 * secret strings in files and output.
 */
import { spawn } from "node:child_process";
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BIN } from "../helpers/cli.js";

export { BIN };

export interface Home {
  home: string;
  /** `$HOME/.config/azkeep`: where azkeep keeps its files when nothing overrides it. */
  configDir: string;
  /** `$XDG_RUNTIME_DIR/azkeep`. */
  runtimeDir: string;
  env: Record<string, string>;
  [Symbol.dispose](): void;
}

/**
 * A fresh HOME standing for one machine or user: azkeep's folders are the defaults under it
 * (no AZKEEP_CONFIG_DIR), and nothing of the test runner's session leaks in (no D-Bus address,
 * no XDG overrides, no azkeep settings).
 */
export function freshHome(prefix: string, extra: Record<string, string> = {}): Home {
  const home = mkdtempSync(join(tmpdir(), prefix));
  const run = join(home, "run");
  mkdirSync(run, { mode: 0o700 });
  chmodSync(run, 0o700);
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined) continue;
    if (
      /^(AZKEEP_|AZURE_|XDG_|DBUS_|NODE_TEST_|NODE_OPTIONS$|NODE_EXTRA_CA_CERTS$|REQUESTS_CA_BUNDLE$|TMPDIR$|(HTTPS?|NO)_PROXY$|(https?|no)_proxy$)/.test(
        k,
      )
    )
      continue;
    env[k] = v;
  }
  Object.assign(env, { HOME: home, XDG_RUNTIME_DIR: run, NO_COLOR: "1", ...extra });
  return {
    home,
    configDir: join(home, ".config", "azkeep"),
    runtimeDir: join(run, "azkeep"),
    env,
    [Symbol.dispose]() {
      rmSync(home, { recursive: true, force: true });
    },
  };
}

export interface Ran {
  code: number | null;
  stdout: string;
  /** The program's standard error (with a wrapper that sends it to fd 3, see `inGnomeKeyring`). */
  stderr: string;
  /** The wrapper's own standard error (the session bus's and gnome-keyring's chatter). */
  noise: string;
}

/**
 * Runs a real process in its own process group (killed whole on timeout), optionally as another
 * user. File descriptor 3 is a pipe too: a wrapper whose helpers write to stderr sends the
 * program's stderr there, so the two never interleave within a line.
 */
export function run(
  argv: string[],
  o: {
    env: Record<string, string>;
    input?: string;
    uid?: number;
    gid?: number;
    cwd?: string;
    timeoutMs?: number;
  },
): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const [cmd, ...args] = argv;
    const child = spawn(cmd!, args, {
      env: o.env,
      cwd: o.cwd ?? o.env.HOME ?? tmpdir(),
      detached: true,
      stdio: ["pipe", "pipe", "pipe", "pipe"],
      ...(o.uid !== undefined ? { uid: o.uid, gid: o.gid ?? o.uid } : {}),
    });
    let stdout = "";
    let fd2 = "";
    let fd3 = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (fd2 += d.toString()));
    (child.stdio[3] as NodeJS.ReadableStream).on("data", (d: Buffer) => (fd3 += d.toString()));
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        /* gone */
      }
    }, o.timeoutMs ?? 60_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      const redirected = argv.includes(TO_FD3);
      resolve({ code, stdout, stderr: redirected ? fd3 : fd2, noise: redirected ? fd2 : fd3 });
    });
    child.stdin.on("error", () => {}); // a child that never reads stdin
    child.stdin.end(o.input ?? "");
  });
}

const TO_FD3 =
  'printf azkeep-test | gnome-keyring-daemon --unlock --components=secrets >/dev/null && exec "$0" "$@" 2>&3 3>&-';

/**
 * `argv` in a fresh D-Bus session with an unlocked gnome-keyring (kept in
 * `$HOME/.local/share/keyrings`); its stderr goes to fd 3, away from the bus daemon's messages,
 * which arrive in pieces and would otherwise split the program's lines.
 */
export function inGnomeKeyring(argv: string[]): string[] {
  return ["dbus-run-session", "--", "sh", "-c", TO_FD3, ...argv];
}

/** `argv` in a new anonymous kernel session keyring. */
export function inKeyctlSession(argv: string[]): string[] {
  return ["keyctl", "session", "-", ...argv];
}

/** What a Node stack trace looks like in output. */
export const STACK_TRACE = /^\s+at .+(:\d+:\d+\)?|\(node:.+\))$|^\w*Error: .*\n\s+at /m;

export interface IssuedTokens {
  /** Every access, refresh and id token in a response of this process's HTTP servers so far. */
  readonly all: Map<string, "access token" | "refresh token" | "id token">;
  count(kind: "access token" | "refresh token" | "id token"): number;
  [Symbol.dispose](): void;
}

const TOKEN_FIELDS = {
  access_token: "access token",
  refresh_token: "refresh token",
  id_token: "id token",
} as const;

/**
 * Records the tokens the in-process emulator sends, by watching `ServerResponse#end` of this
 * process (the emulator answers every request, HTTPS and proxied ones included, with one
 * `res.end(body)`). It only reads: bodies go out unchanged. This is how the tests learn the
 * exact strings to search for — the control API's request log deliberately holds no secret.
 */
export function tapIssuedTokens(): IssuedTokens {
  const proto = ServerResponse.prototype;
  const own = Object.getOwnPropertyDescriptor(proto, "end"); // usually inherited from OutgoingMessage
  const end = Reflect.get(proto, "end") as (this: ServerResponse, ...a: unknown[]) => ServerResponse;
  const all = new Map<string, "access token" | "refresh token" | "id token">();
  const collect = (chunk: unknown) => {
    if (typeof chunk !== "string" && !Buffer.isBuffer(chunk)) return;
    const text = chunk.toString();
    if (!text.startsWith("{") || !/_token"/.test(text)) return;
    try {
      const body = JSON.parse(text) as Record<string, unknown>;
      for (const [field, kind] of Object.entries(TOKEN_FIELDS)) {
        const v = body[field];
        if (typeof v === "string" && v.length >= 16) all.set(v, kind);
      }
    } catch {
      /* not JSON */
    }
  };
  proto.end = function (this: ServerResponse, ...args: unknown[]) {
    collect(args[0]);
    return end.apply(this, args);
  } as typeof proto.end;
  return {
    all,
    count: (kind) => [...all.values()].filter((k) => k === kind).length,
    [Symbol.dispose]() {
      if (own) Object.defineProperty(proto, "end", own);
      else delete (proto as { end?: unknown }).end;
    },
  };
}

export interface Secret {
  label: string;
  value: string;
}

/** The issued tokens as secrets to search for; a JWT also by its signature alone (a token cut short in a log). */
export function tokenSecrets(tokens: IssuedTokens): Secret[] {
  const out: Secret[] = [];
  let i = 0;
  for (const [value, kind] of tokens.all) {
    i++;
    out.push({ label: `${kind} #${i}`, value });
    const parts = value.split(".");
    if (parts.length === 3 && (parts[2]?.length ?? 0) >= 40)
      out.push({ label: `${kind} #${i} (its signature)`, value: parts[2]! });
  }
  return out;
}

export interface Place {
  label: string;
  text: Buffer | string;
}

/** Every place that holds one of the secrets, as "label in place" lines (empty: none). */
export function leaks(secrets: Secret[], places: Place[]): string[] {
  const found: string[] = [];
  for (const p of places) {
    const buf = Buffer.isBuffer(p.text) ? p.text : Buffer.from(p.text);
    for (const s of secrets)
      if (s.value.length >= 6 && buf.includes(s.value)) found.push(`${s.label} in ${p.label}`);
  }
  return found;
}

/** Regular files under `dir` (not following symbolic links), with their mtime and size. */
export function filesUnder(dir: string, out = new Map<string, string>()): Map<string, string> {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of names) {
    const p = join(dir, name);
    let st;
    try {
      st = lstatSync(p);
    } catch {
      continue;
    }
    if (st.isDirectory()) filesUnder(p, out);
    else if (st.isFile()) out.set(p, `${st.mtimeMs}:${st.size}:${st.ino}`);
  }
  return out;
}

/** The files that are new or changed in `after` compared with `before`. */
export function changedFiles(before: Map<string, string>, after: Map<string, string>): string[] {
  return [...after].filter(([p, v]) => before.get(p) !== v).map(([p]) => p);
}

/** Reads files as places to search; files that vanished meanwhile (other tests' temp files) hold nothing. */
export function readPlaces(files: Iterable<string>, maxBytes = 64 * 1024 * 1024): Place[] {
  const out: Place[] = [];
  for (const f of files) {
    try {
      if (lstatSync(f).size > maxBytes) continue;
      out.push({ label: f, text: readFileSync(f) });
    } catch {
      /* removed or unreadable since listing */
    }
  }
  return out;
}

/**
 * Samples the command lines (`/proc/<pid>/cmdline`) of this process's descendants until
 * stopped, to catch a secret handed to any of them in argv — which every user on the machine
 * can read. Only descendants: other processes on the machine are none of this test's business.
 * A sample, not a trace: a process living less than one interval can be missed.
 */
export function sampleCommandLines(intervalMs = 40): { seen(): string[]; stop(): void } {
  const seen = new Set<string>();
  const sweep = () => {
    const parent = new Map<number, number>();
    try {
      for (const name of readdirSync("/proc")) {
        if (!/^\d+$/.test(name)) continue;
        try {
          const stat = readFileSync(`/proc/${name}/stat`, "utf8");
          // pid (comm) state ppid …; comm may hold spaces and parentheses.
          const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
          parent.set(Number(name), ppid);
        } catch {
          /* gone */
        }
      }
    } catch {
      return;
    }
    const isOurs = (pid: number) => {
      for (let p = parent.get(pid), n = 0; p !== undefined && p > 1 && n < 64; p = parent.get(p), n++)
        if (p === process.pid) return true;
      return false;
    };
    for (const pid of parent.keys()) {
      if (!isOurs(pid)) continue;
      try {
        const c = readFileSync(`/proc/${pid}/cmdline`);
        if (c.length > 0) seen.add(c.toString("utf8").replaceAll("\0", " ").trimEnd());
      } catch {
        /* gone */
      }
    }
  };
  sweep();
  const timer = setInterval(sweep, intervalMs);
  return {
    seen: () => [...seen],
    stop: () => clearInterval(timer),
  };
}
