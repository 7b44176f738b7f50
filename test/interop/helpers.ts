/**
 * Helpers for the interop tests: real third-party clients (the Azure CLI from Debian, the
 * Azure SDKs, MSAL) talk to the emulator as if it were Azure.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { fileURLToPath } from "node:url";
import {
  ALICE,
  CONTOSO,
  DEV_SUB,
  FABRIKAM,
  FABRIKAM_SUB,
  LEGACY_SUB,
  MI_SYSTEM,
  MI_USER,
  PROD_SUB,
  SP,
  TAILSPIN,
  WOODGROVE,
  WOODGROVE_SUB,
} from "../helpers/seed.js";

/** The default seed's cast, as the interop tests use it. */
export const SEEDED = {
  contoso: CONTOSO,
  fabrikam: FABRIKAM,
  woodgrove: WOODGROVE,
  tailspin: TAILSPIN,
  alice: ALICE,
  sp: SP,
  miSystem: MI_SYSTEM,
  miUser: MI_USER.clientId,
  subs: {
    dev: DEV_SUB,
    prod: PROD_SUB,
    legacy: LEGACY_SUB,
    fabrikam: FABRIKAM_SUB,
    woodgrove: WOODGROVE_SUB,
  },
} as const;

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface Running {
  child: ChildProcessWithoutNullStreams;
  /** Output so far. */
  readonly stdout: string;
  readonly stderr: string;
  /** Resolves when stderr or stdout matches. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  done: Promise<RunResult>;
}

/** Spawns a process with exactly `env` (no inherited variables), killing it after `timeoutMs`. */
export function start(
  cmd: string,
  args: string[],
  env: Record<string, string>,
  timeoutMs = 120_000,
): Running {
  const child = spawn(cmd, args, { env, cwd: REPO, stdio: ["pipe", "pipe", "pipe"] });
  child.stdin.end();
  let stdout = "";
  let stderr = "";
  const waiters: { re: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];
  const check = (): void => {
    for (const w of [...waiters]) {
      const m = stderr.match(w.re) ?? stdout.match(w.re);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  };
  child.stdout.on("data", (d: Buffer) => {
    stdout += d.toString();
    check();
  });
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
    check();
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const done = new Promise<RunResult>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return {
    child,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    waitFor(re, ms = 60_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`timed out waiting for ${String(re)}; stderr so far:\n${stderr}`)),
          ms,
        );
        waiters.push({
          re,
          resolve: (m) => {
            clearTimeout(timer);
            resolve(m);
          },
        });
        check();
        void done.then(() => {
          clearTimeout(timer);
          reject(new Error(`process ended before ${String(re)}; stderr:\n${stderr}`));
        });
      });
    },
    done,
  };
}

/** Node + tsx, for child processes that need process-start settings such as NODE_EXTRA_CA_CERTS. */
export const TSX_IMPORT = ["--import", "tsx"];
export const FIXTURES = fileURLToPath(new URL("./fixtures/", import.meta.url));
const REPO = fileURLToPath(new URL("../../", import.meta.url));
