/** A Context with a controllable clock and no real side effects, for the policy's unit tests. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Context } from "../../src/core/context.js";

export interface FakeContext extends Context {
  advance(ms: number): void;
  slept: number[];
  logs: string[];
  [Symbol.dispose](): void;
}

/** Folders of contexts not disposed by their test (`using`): removed when the process exits. */
const undisposed = new Set<string>();
let removeAtExit = false;

export function fakeContext(startMs = Date.UTC(2026, 10, 29, 0, 0, 0)): FakeContext {
  let now = startMs;
  const dir = mkdtempSync(join(tmpdir(), "azkeep-tokens-"));
  if (!removeAtExit) {
    removeAtExit = true;
    process.once("exit", () => {
      for (const d of undisposed) rmSync(d, { recursive: true, force: true });
    });
  }
  undisposed.add(dir);
  const slept: number[] = [];
  const logs: string[] = [];
  let n = 0;
  const ctx: FakeContext = {
    clock: {
      now: () => now,
      sleep: async (ms) => {
        slept.push(ms);
        now += ms;
      },
    },
    fetch: () => Promise.reject(new Error("no network in unit tests")),
    env: {},
    paths: { configDir: join(dir, "config"), runtimeDir: join(dir, "run"), home: dir },
    random: { bytes: (k) => new Uint8Array(k).fill(128), uuid: () => `uuid-${++n}` },
    logger: { debug: (m) => logs.push(m), info: (m) => logs.push(m), warn: (m) => logs.push(`WARN ${m}`) },
    prompter: {
      interactive: false,
      ask: () => Promise.reject(new Error("no prompts")),
      readStdin: async () => "",
    },
    browser: { open: async () => false },
    progress: { status: () => {}, message: () => {}, terminal: false },
    color: false,
    advance: (ms) => {
      now += ms;
    },
    slept,
    logs,
    [Symbol.dispose]() {
      rmSync(dir, { recursive: true, force: true });
      undisposed.delete(dir);
    },
  };
  return ctx;
}

/** An unsigned JWT with `claims`, for tests that need a token-shaped string. */
export function fakeJwt(
  claims: Record<string, unknown>,
  header: Record<string, unknown> = { alg: "RS256", typ: "JWT" },
): string {
  const b = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
  return `${b(header)}.${b(claims)}.${Buffer.from("signature-bytes").toString("base64url")}`;
}
