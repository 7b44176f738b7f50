/**
 * Helpers for the interop tests: real third-party clients (the Azure CLI from Debian, the
 * Azure SDKs, MSAL) talk to the emulator as if it were Azure.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const AZ_INSTALL = "apt-get install -y azure-cli";
export const AZ_CLI_CLIENT_ID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";

/** The default seed's cast, as the interop tests use it. */
export const SEEDED = {
  contoso: "11111111-1111-1111-1111-111111111111",
  fabrikam: "22222222-2222-2222-2222-222222222222",
  woodgrove: "33333333-3333-3333-3333-333333333333",
  tailspin: "44444444-4444-4444-4444-444444444444",
  alice: {
    upn: "alice@contoso.onmicrosoft.com",
    password: "alice-Passw0rd!",
    oid: "aaaaaaaa-0000-4000-8000-000000000001",
  },
  sp: { clientId: "5e5e5e5e-0000-4000-8000-00000000c001", secret: "azkeep-ci-secret-value" },
  miSystem: "3a3a3a3a-0000-4000-8000-00000000d001",
  miUser: "3a3a3a3a-0000-4000-8000-00000000d002",
  subs: {
    dev: "c0ffee00-0000-4000-8000-000000000001",
    prod: "c0ffee00-0000-4000-8000-000000000002",
    legacy: "c0ffee00-0000-4000-8000-000000000003",
    fabrikam: "c0ffee00-0000-4000-8000-000000000004",
    woodgrove: "c0ffee00-0000-4000-8000-000000000005",
  },
} as const;

/** The claims of a JWT (not verified: the emulator's tests verify signatures). */
export function jwtClaims(token: string): Record<string, unknown> {
  const part = token.split(".")[1];
  if (!part) throw new Error("not a JWT");
  return JSON.parse(Buffer.from(part, "base64url").toString("utf8")) as Record<string, unknown>;
}

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

/** Variables every child gets: enough to run, nothing from the developer's own Azure setup. */
export function baseEnv(home: string): Record<string, string> {
  return {
    PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
    HOME: home,
    LANG: "C.UTF-8",
    TZ: "UTC",
  };
}

/**
 * A throwaway Azure CLI config folder. `versionCheck.json` is pre-seeded with a fresh
 * timestamp so az skips its update check (which would otherwise try azure.microsoft.com and
 * GitHub before every command).
 */
export function azConfigDir(root: string, name: string): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // az compares with datetime.now() in local time; the az env pins TZ=UTC.
  const now = new Date().toISOString().replace("T", " ").replace("Z", "000");
  writeFileSync(
    join(dir, "versionCheck.json"),
    JSON.stringify({
      versions: {
        "azure-cli": { local: "2.45.0" },
        core: { local: "2.45.0" },
        telemetry: { local: "1.0.8" },
      },
      update_time: now,
    }),
  );
  return dir;
}

/** The Azure CLI's environment: the stock AzureCloud, reached through the emulator's proxy. */
export function azEnv(
  home: string,
  configDir: string,
  proxyUrl: string,
  caCertPath: string,
): Record<string, string> {
  return {
    ...baseEnv(home),
    AZURE_CONFIG_DIR: configDir,
    HTTPS_PROXY: proxyUrl,
    HTTP_PROXY: proxyUrl,
    // The only CA requests trusts: nothing but the emulator can answer.
    REQUESTS_CA_BUNDLE: caCertPath,
    AZURE_CORE_COLLECT_TELEMETRY: "false",
    AZURE_CORE_NO_COLOR: "true",
    AZURE_CORE_SURVEY_MESSAGE: "false",
  };
}

/** Node + tsx, for child processes that need process-start settings such as NODE_EXTRA_CA_CERTS. */
export const TSX_IMPORT = ["--import", "tsx"];
export const FIXTURES = fileURLToPath(new URL("./fixtures/", import.meta.url));
const REPO = fileURLToPath(new URL("../../", import.meta.url));
