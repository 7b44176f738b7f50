/**
 * Issue 12 item 16: the device-code sign-in draws its QR code only when stderr is a terminal.
 * The built CLI against the emulator (through its HTTPS proxy): with stderr piped (a log, a CI
 * job) the message still names the address and the code but no QR block is printed; in a real
 * terminal (a tmux pane) the QR block is there.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Emulator } from "../../src/emulator/index.js";
import { BIN, tempHome } from "../helpers/cli.js";
import { runProcess } from "../helpers/process.js";
import { requireTool } from "../helpers/require-tool.js";
import { ALICE, emulator } from "./emulator.js";

/** qrcode-terminal's small blocks: any of them in the output is a QR code. */
const QR_BLOCK = /[▄▀█]/;
const MESSAGE =
  /To sign in, use a web browser to open the page (https?:\/\/\S+) and enter the code (\S+) to authenticate\./;

describe("device code: the QR code only on a terminal (e2e)", { timeout: 120_000 }, () => {
  let emu: Emulator;
  let h: ReturnType<typeof tempHome>;
  let env: Record<string, string>;
  before(async () => {
    h = tempHome();
    emu = await emulator({ https: true, lifetimes: { deviceCodeInterval: 1 } });
    env = { ...h.env, ...emu.env, AZKEEP_STORE_PROVIDER: "insecure-file", NO_COLOR: "1" };
  });
  after(async () => {
    await emu?.close();
    h?.[Symbol.dispose]();
  });

  it("stderr piped: the address and the code, no QR block; the sign-in completes", async () => {
    const child = spawn(process.execPath, [BIN, "login", "--use-device-code"], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    try {
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      const closed = new Promise<number | null>((r) => child.on("close", r));
      const code = await emu.control.waitForDeviceCode({ timeoutMs: 60_000 });
      await emu.control.approveDeviceCode(code.userCode, ALICE.upn, { mfa: false });
      const exit = await closed;
      assert.equal(exit, 0, stderr);
      const m = MESSAGE.exec(stderr);
      assert.ok(m, stderr);
      assert.equal(m[2], code.userCode);
      assert.doesNotMatch(stderr, QR_BLOCK, "no QR code when stderr is not a terminal");
      assert.doesNotMatch(stdout, QR_BLOCK);
      assert.ok(Array.isArray(JSON.parse(stdout)), stdout);
    } finally {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        /* gone */
      }
    }
  });

  it("stderr a terminal (tmux): the QR block is drawn under the message", async (t) => {
    if (!requireTool(t, "tmux", "apt-get install -y tmux")) return;
    const dir = mkdtempSync(join(tmpdir(), "azkeep-qr-tty-"));
    const sock = join(dir, "tmux.sock");
    const tmux = (args: string[]) =>
      runProcess("tmux", ["-S", sock, ...args], {
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
        timeoutMs: 10_000,
      });
    try {
      // The command's environment in a script (tmux's server does not pass the client's on);
      // stdout (the JSON) to a file, stderr stays the pane's terminal.
      const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
      const script = join(dir, "run.sh");
      writeFileSync(
        script,
        [
          "#!/bin/sh",
          ...Object.entries({ ...env, PATH: process.env.PATH ?? "/usr/bin:/bin", TERM: "xterm" }).map(
            ([k, v]) => `export ${k}=${q(v)}`,
          ),
          `${q(process.execPath)} ${q(BIN)} login --use-device-code >${q(join(dir, "out.json"))}`,
          `echo $? >${q(join(dir, "exit"))}`,
          "sleep 30",
          "",
        ].join("\n"),
        { mode: 0o700 },
      );
      const started = await tmux(["new-session", "-d", "-x", "200", "-y", "80", `sh ${q(script)}`]);
      assert.equal(started.code, 0, started.stderr);
      const code = await emu.control.waitForDeviceCode({ timeoutMs: 60_000 });
      // The QR code is printed right after the message, before polling starts.
      let pane = "";
      for (let i = 0; i < 50 && !QR_BLOCK.test(pane); i++) {
        await new Promise((r) => setTimeout(r, 100));
        pane = (await tmux(["capture-pane", "-p", "-J", "-S", "-"])).stdout;
      }
      await emu.control.approveDeviceCode(code.userCode, ALICE.upn, { mfa: false });
      for (let i = 0; i < 300 && !existsSync(join(dir, "exit")); i++)
        await new Promise((r) => setTimeout(r, 100));
      assert.equal(readFileSync(join(dir, "exit"), "utf8").trim(), "0", pane);
      assert.match(pane, new RegExp(`enter the code ${code.userCode} to authenticate`), pane);
      assert.match(pane, QR_BLOCK, `a QR code on the terminal:\n${pane}`);
      // A QR block: several lines made of the block characters alone.
      const qrLines = pane.split("\n").filter((l) => /^\s*[▄▀█ ]{20,}\s*$/.test(l) && QR_BLOCK.test(l));
      assert.ok(qrLines.length >= 10, pane);
      assert.doesNotMatch(readFileSync(join(dir, "out.json"), "utf8"), QR_BLOCK);
    } finally {
      await tmux(["kill-server"]);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
