/** Test contexts for the store: a temporary config folder and a Context whose log is captured. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createNodeContext, type Context } from "../../src/core/context.js";

export interface TempStoreDir {
  root: string;
  dir: string;
  log: string[];
  ctx(env?: Record<string, string | undefined>): Context;
  [Symbol.dispose](): void;
}

export function tempStoreDir(prefix = "azkeep-store-"): TempStoreDir {
  const root = mkdtempSync(join(tmpdir(), prefix));
  const dir = join(root, "config", "azkeep");
  const log: string[] = [];
  return {
    root,
    dir,
    log,
    ctx: (env = {}) =>
      createNodeContext({
        debug: true,
        env: { PATH: process.env.PATH, HOME: root, AZKEEP_CONFIG_DIR: dir, ...env },
        write: (line) => void log.push(line),
      }),
    [Symbol.dispose]() {
      rmSync(root, { recursive: true, force: true });
    },
  };
}
