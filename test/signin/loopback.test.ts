/**
 * The browser sign-in's loopback listener cannot be hijacked by another local user. The attack
 * as found: the redirect is `http://localhost:PORT`, the listener held 127.0.0.1 only, another
 * uid bound `[::1]:PORT`, and Chromium delivered `code` and `state` to it. Here a second uid
 * (setpriv, under a process limit) plays the attacker, and the real headless Chromium the
 * browser. Also: an answer with a wrong `state` is answered and ignored, and the sign-in goes on.
 */
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { after, before, beforeEach, describe, it, type TestContext } from "node:test";
import type { Cloud } from "../../src/core/clouds.js";
import { login, type LoginRequest } from "../../src/core/signin.js";
import { createMemoryStore } from "../../src/core/store/memory.js";
import type { Store } from "../../src/core/store/types.js";
import type { Emulator } from "../../src/emulator/index.js";
import { canSwitchUser, killGroup, runAsOtherUser, spawnAsOtherUser } from "../helpers/other-user.js";
import { requireTool } from "../helpers/require-tool.js";
import { launchChromium } from "./chromium.js";
import { ALICE, DEV_SUB, NATIVE_APP, emulator, emulatorCloud } from "./emulator.js";
import { freePort, testContext } from "./helpers.js";

/** Listens as the other uid on `[::1]:port`, printing every request it gets. */
const ATTACKER = `
const http = require("node:http");
const s = http.createServer((req, res) => { console.log("GOT " + req.url); res.end("got it"); });
s.on("error", (e) => { console.log("ERROR " + e.code); process.exit(3); });
s.listen({ port: Number(process.argv[1]), host: process.argv[2], ipv6Only: process.argv[2] === "::1" },
  () => console.log("LISTENING"));`;

interface Attacker {
  child: ChildProcess;
  output(): string;
}

function attacker(port: number, host = "::1"): Promise<Attacker> {
  const child = spawnAsOtherUser(process.execPath, ["-e", ATTACKER, String(port), host], {
    nproc: 40,
    env: { PATH: "/usr/bin:/bin" },
  });
  let out = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      killGroup(child);
      reject(new Error("the attacker did not start listening"));
    }, 20_000);
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("LISTENING")) {
        clearTimeout(timer);
        resolve({ child, output: () => out });
      }
      if (out.includes("ERROR")) {
        clearTimeout(timer);
        reject(new Error(`the attacker could not listen: ${out}`));
      }
    });
  });
}

async function assertNothingStored(store: Store): Promise<void> {
  const s = await store.readSecrets();
  assert.deepEqual([s.refreshTokens, s.accessTokens], [[], []]);
}

describe(
  "the loopback listener against another local user (second uid, real Chromium)",
  { timeout: 300_000 },
  () => {
    let emu: Emulator;
    let cloud: Cloud;
    const attackers: ChildProcess[] = [];
    before(async () => {
      emu = await emulator();
      cloud = emulatorCloud(emu);
    });
    beforeEach(async () => {
      await emu.control.reset();
    });
    after(async () => {
      for (const a of attackers) killGroup(a);
      await emu?.close();
    });
    const start = async (port: number, host?: string) => {
      const a = await attacker(port, host);
      attackers.push(a.child);
      return a;
    };

    const browserLogin = (method: Partial<{ port: number; timeoutMs: number }> = {}): LoginRequest => ({
      cloud,
      clientId: NATIVE_APP,
      method: { kind: "browser", timeoutMs: 120_000, ...method },
    });

    it("the attack is real here: with [::1]:PORT held by another uid, Chromium delivers localhost:PORT to it", async (t: TestContext) => {
      if (!canSwitchUser(t) || !requireTool(t, "chromium", "apt-get install -y chromium")) return;
      const port = await freePort();
      const a = await start(port);
      await using browser = await launchChromium();
      const page = await browser.newPage();
      await page.goto(`http://localhost:${port}/?code=the-code&state=the-state`);
      assert.match(a.output(), /GOT \/\?code=the-code&state=the-state/, "the premise of the tests below");
      killGroup(a.child);
    });

    it("--port whose [::1] is held by another uid: one error before the browser opens, the attacker gets nothing", async (t: TestContext) => {
      if (!canSwitchUser(t)) return;
      const port = await freePort();
      const a = await start(port);
      let opened = false;
      const { ctx } = testContext({
        open: () => {
          opened = true;
          return Promise.resolve(true);
        },
      });
      const store = createMemoryStore();
      await assert.rejects(
        login(ctx, store, browserLogin({ port })),
        (e: Error & { code?: string; hint?: string }) =>
          e.code === "config" &&
          e.message.startsWith(`Port ${port} on [::1] is in use.`) &&
          /another user/.test(e.message) &&
          /--port/.test(e.hint ?? ""),
      );
      assert.equal(opened, false, "the sign-in page was never opened");
      assert.doesNotMatch(a.output(), /GOT/);
      await assertNothingStored(store);
      killGroup(a.child);
    });

    it("any free port: both 127.0.0.1 and ::1 are held; another uid cannot bind [::1]; Chromium signs in", async (t: TestContext) => {
      if (!canSwitchUser(t) || !requireTool(t, "chromium", "apt-get install -y chromium")) return;
      await using browser = await launchChromium();
      const page = await browser.newPage();
      let checks: Promise<void> = Promise.resolve();
      const { ctx } = testContext({
        open: (url) => {
          const redirect = new URL(new URL(url).searchParams.get("redirect_uri")!);
          const port = Number(redirect.port);
          checks = (async () => {
            for (const base of [`http://127.0.0.1:${port}`, `http://[::1]:${port}`]) {
              const r = await fetch(`${base}/`);
              assert.equal(r.status, 404, base);
              assert.match(await r.text(), /Waiting for the sign-in/, `${base} is azkeep's listener`);
            }
            const bind = await runAsOtherUser(process.execPath, ["-e", ATTACKER, String(port), "::1"], {
              nproc: 40,
              timeoutMs: 20_000,
              env: { PATH: "/usr/bin:/bin" },
            });
            assert.match(bind.stdout, /ERROR EADDRINUSE/, "another uid cannot take [::1]:PORT");
            await page.goto(url);
            await page.fill("#username", ALICE.upn);
            await page.fill("#password", ALICE.password);
            await page.click("#submit");
            await page.click("#accept");
            await page.waitForSelector("#azkeep-result");
          })();
          checks.catch(() => {});
          return Promise.resolve(true);
        },
      });
      const store = createMemoryStore();
      const result = await login(ctx, store, browserLogin());
      await checks;
      assert.ok(result.subscriptions.some((s) => s.id === DEV_SUB));
      assert.equal(await page.getAttribute("#azkeep-result", "data-ok"), "true");
    });

    it("answers with a wrong state (from another uid) are answered and ignored; the sign-in goes on in Chromium", async (t: TestContext) => {
      if (!canSwitchUser(t) || !requireTool(t, "chromium", "apt-get install -y chromium")) return;
      await using browser = await launchChromium();
      const page = await browser.newPage();
      let driving: Promise<void> = Promise.resolve();
      const forged: string[] = [];
      const { ctx, out } = testContext({
        open: (url) => {
          const port = new URL(new URL(url).searchParams.get("redirect_uri")!).port;
          driving = (async () => {
            const script = `for (const q of ["code=stolen&state=not-this-one", "error=access_denied&state=nope", "code=x"]) {
              const r = await fetch("http://[::1]:${port}/?" + q); console.log(r.status); }`;
            const r = await runAsOtherUser(process.execPath, ["--input-type=module", "-e", script], {
              nproc: 40,
              timeoutMs: 20_000,
              env: { PATH: "/usr/bin:/bin" },
            });
            forged.push(...r.stdout.trim().split("\n"));
            await page.goto(url);
            await page.fill("#username", ALICE.upn);
            await page.fill("#password", ALICE.password);
            await page.click("#submit");
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
      assert.deepEqual(forged, ["400", "400", "400"], "each forged answer got the 'not this sign-in' page");
      assert.ok(
        result.subscriptions.some((s) => s.id === DEV_SUB),
        "the real sign-in still finished",
      );
      assert.equal(await page.getAttribute("#azkeep-result", "data-ok"), "true");
      assert.equal(out.warnings.filter((w) => /Ignored a sign-in answer/.test(w)).length, 3);
    });
  },
);
