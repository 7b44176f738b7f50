/**
 * The browser sign-in (authorization code + PKCE through the loopback listener) against the
 * emulator: in a real headless Chromium with the sign-in and consent pages, and the ways it
 * ends without a sign-in (declined consent, a closed browser, a forged redirect, a port in use,
 * Ctrl-C), plus --no-browser with a pasted redirect and the device code fallback.
 */
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { after, before, beforeEach, describe, it } from "node:test";
import type { Cloud } from "../../src/core/clouds.js";
import { login, type LoginRequest } from "../../src/core/signin.js";
import { createMemoryStore } from "../../src/core/store/memory.js";
import type { Store } from "../../src/core/store/types.js";
import { completeAuthorize, type Emulator } from "../../src/emulator/index.js";
import { requireTool } from "../helpers/require-tool.js";
import { launchChromium } from "./chromium.js";
import { ALICE, DEV_SUB, NATIVE_APP, emulator, emulatorCloud } from "./emulator.js";
import { freePort, testContext } from "./helpers.js";

async function assertNothingStored(store: Store): Promise<void> {
  const [p, s] = await Promise.all([store.readProfile(), store.readSecrets()]);
  assert.deepEqual(p.subscriptions, []);
  assert.deepEqual([s.refreshTokens, s.accessTokens, s.servicePrincipals], [[], [], []]);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("browser sign-in against the emulator", { timeout: 600_000 }, () => {
  let emu: Emulator;
  let cloud: Cloud;
  before(async () => {
    emu = await emulator({ lifetimes: { deviceCodeInterval: 1 } });
    cloud = emulatorCloud(emu);
  });
  beforeEach(async () => {
    await emu.control.reset();
    await emu.control.setLifetimes({ deviceCodeInterval: 1 });
  });
  after(async () => {
    await emu?.close();
  });

  const browserLogin = (
    extra: Partial<LoginRequest> = {},
    method: Partial<{ port: number; noBrowser: boolean; timeoutMs: number }> = {},
  ): LoginRequest => ({
    cloud,
    clientId: NATIVE_APP,
    method: { kind: "browser", timeoutMs: 120_000, ...method },
    ...extra,
  });

  it("headless Chromium: sign-in page, consent page, success page; PKCE, state and nonce", async (t) => {
    if (!requireTool(t, "chromium", "apt-get install -y chromium")) return;
    await using browser = await launchChromium();
    const page = await browser.newPage();
    let authorizeUrl = "";
    let driving: Promise<void> = Promise.resolve();
    const { ctx, out } = testContext({
      open: (url) => {
        authorizeUrl = url;
        driving = (async () => {
          await page.goto(url);
          await page.fill("#username", ALICE.upn);
          await page.fill("#password", ALICE.password);
          await page.click("#submit");
          await page.waitForSelector("#consent");
          assert.match((await page.textContent("#permissions")) ?? "", /management/);
          await page.click("#accept");
          await page.waitForSelector("#azkeep-result");
        })();
        driving.catch(() => {});
        return Promise.resolve(true);
      },
    });
    const store = createMemoryStore();
    const result = await login(ctx, store, browserLogin());
    await driving;
    assert.ok(result.subscriptions.some((s) => s.id === DEV_SUB));
    assert.match((await page.textContent("#azkeep-result")) ?? "", /You have signed in to azkeep/);
    assert.equal(await page.getAttribute("#azkeep-result", "data-ok"), "true");
    const u = new URL(authorizeUrl);
    assert.equal(u.searchParams.get("code_challenge_method"), "S256");
    assert.match(u.searchParams.get("redirect_uri") ?? "", /^http:\/\/localhost:\d+$/);
    assert.ok((u.searchParams.get("state") ?? "").length >= 16);
    assert.ok((u.searchParams.get("nonce") ?? "").length >= 32);
    assert.equal(u.searchParams.get("client_info"), "1");
    assert.deepEqual(JSON.parse(u.searchParams.get("claims") ?? "{}"), {
      access_token: { xms_cc: { values: ["CP1"] } },
    });
    assert.ok(out.warnings.some((w) => w.startsWith("A web browser has been opened at ")));
    assert.equal((await store.readSecrets()).refreshTokens[0]?.clientId, NATIVE_APP);
  });

  it("declining consent in Chromium: cancelled, failure page, nothing stored", async (t) => {
    if (!requireTool(t, "chromium", "apt-get install -y chromium")) return;
    await using browser = await launchChromium();
    const page = await browser.newPage();
    let driving: Promise<void> = Promise.resolve();
    const { ctx } = testContext({
      open: (url) => {
        driving = (async () => {
          await page.goto(url);
          await page.fill("#username", ALICE.upn);
          await page.fill("#password", ALICE.password);
          await page.click("#submit");
          await page.click("#decline");
          await page.waitForSelector("#azkeep-result");
        })();
        driving.catch(() => {});
        return Promise.resolve(true);
      },
    });
    const store = createMemoryStore();
    await assert.rejects(
      login(ctx, store, browserLogin()),
      (e: Error & { code?: string }) =>
        e.code === "cancelled" && /cancelled or consent was denied/.test(e.message),
    );
    await driving;
    assert.equal(await page.getAttribute("#azkeep-result", "data-ok"), "false");
    await assertNothingStored(store);
  });

  it("the browser is closed before signing in: the wait times out with the next step", async (t) => {
    if (!requireTool(t, "chromium", "apt-get install -y chromium")) return;
    const browser = await launchChromium();
    const { ctx, out } = testContext({
      open: async (url) => {
        const page = await browser.newPage();
        await page.goto(url);
        await browser[Symbol.asyncDispose]();
        return true;
      },
    });
    const store = createMemoryStore();
    await assert.rejects(
      login(ctx, store, browserLogin({}, { timeoutMs: 3000 })),
      (e: Error & { code?: string; hint?: string }) =>
        e.code === "cancelled" &&
        /within 3 seconds/.test(e.message) &&
        /--use-device-code/.test(e.hint ?? ""),
    );
    void out;
    await assertNothingStored(store);
  });

  it("a redirect with another state (CSRF) is answered and ignored; the sign-in goes on", async () => {
    const forged: number[] = [];
    let driving: Promise<void> = Promise.resolve();
    const { ctx, out } = testContext({
      open: (url) => {
        const redirect = new URL(url).searchParams.get("redirect_uri")!.replace("localhost", "127.0.0.1");
        driving = (async () => {
          for (const q of ["code=stolen&state=not-this-one", "error=access_denied", "code=x&state="])
            forged.push((await fetch(`${redirect}/?${q}`)).status);
          const answer = await completeAuthorize(url, { username: ALICE.upn, password: ALICE.password });
          await fetch(answer.replace("localhost", "127.0.0.1"));
        })();
        driving.catch(() => {});
        return Promise.resolve(true);
      },
    });
    const store = createMemoryStore();
    const result = await login(ctx, store, browserLogin());
    await driving;
    assert.deepEqual(forged, [400, 400, 400]);
    assert.ok(result.subscriptions.some((s) => s.id === DEV_SUB));
    assert.equal(out.warnings.filter((w) => /Ignored a sign-in answer/.test(w)).length, 3);
  });

  it("--port in use: one clear error naming the port", async () => {
    const blocker = createServer();
    const port = await freePort();
    await new Promise<void>((r) => blocker.listen(port, "127.0.0.1", r));
    try {
      const { ctx } = testContext({ open: () => Promise.resolve(true) });
      const store = createMemoryStore();
      await assert.rejects(
        login(ctx, store, browserLogin({}, { port })),
        (e: Error & { code?: string; hint?: string }) =>
          e.code === "config" &&
          e.message === `Port ${port} on 127.0.0.1 is in use.` &&
          /--port/.test(e.hint ?? ""),
      );
      await assertNothingStored(store);
    } finally {
      blocker.close();
    }
  });

  it("Ctrl-C while waiting ends cleanly and frees the port", async () => {
    const port = await freePort();
    const controller = new AbortController();
    const { ctx } = testContext({
      open: () => {
        setTimeout(
          () => controller.abort(Object.assign(new Error("Interrupted"), { name: "AbortError" })),
          300,
        );
        return Promise.resolve(true);
      },
    });
    await assert.rejects(
      login(ctx, createMemoryStore(), browserLogin({ signal: controller.signal }, { port })),
      (e: Error) => e.name === "AbortError",
    );
    const again = createServer();
    await new Promise<void>((resolve, reject) => {
      again.once("error", reject);
      again.listen(port, "127.0.0.1", resolve);
    });
    again.close();
  });

  it("--no-browser: prints the address, accepts the redirect address pasted on stdin", async () => {
    let printed = "";
    const { ctx, out } = testContext({
      open: () => Promise.reject(new Error("must not open a browser")),
      stdin: async () => {
        for (let i = 0; i < 200 && !printed; i++) {
          printed = out.messages.find((m) => m.includes("/oauth2/v2.0/authorize?")) ?? "";
          await sleep(25);
        }
        const url = /(http:\/\/\S+\/oauth2\/v2\.0\/authorize\?\S+)/.exec(printed)![1]!;
        // the person signs in on another machine; its browser cannot reach this loopback port
        const redirect = await completeAuthorize(url, { username: ALICE.upn, password: ALICE.password });
        return `${redirect}\n`;
      },
    });
    const result = await login(ctx, createMemoryStore(), {
      cloud,
      method: { kind: "browser", noBrowser: true, timeoutMs: 60_000 },
    });
    assert.ok(result.subscriptions.some((s) => s.id === DEV_SUB));
    assert.match(printed, /copy the whole address/);
  });

  it("no browser can be opened: falls back to the device code flow", async () => {
    const { ctx, out } = testContext({ open: () => Promise.resolve(false) });
    const result = await login(ctx, createMemoryStore(), {
      cloud,
      method: { kind: "browser" },
      onDeviceCode: (p) => void emu.control.approveDeviceCode(p.userCode, ALICE.upn),
    });
    assert.ok(result.subscriptions.some((s) => s.id === DEV_SUB));
    assert.ok(out.messages.some((m) => /device code/.test(m)));
  });
});
