/** Debian's Chromium through playwright-core, with a fresh profile folder removed on close. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BrowserContext } from "playwright-core";
import { CHROMIUM_ARGS } from "./helpers.js";

export const CHROMIUM = "/usr/bin/chromium";

export async function launchChromium(): Promise<BrowserContext & AsyncDisposable> {
  const { chromium } = await import("playwright-core");
  const dir = mkdtempSync(join(tmpdir(), "azkeep-chromium-"));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: 120_000,
  });
  context.setDefaultTimeout(60_000);
  return Object.assign(context, {
    async [Symbol.asyncDispose]() {
      await context.close().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  });
}
