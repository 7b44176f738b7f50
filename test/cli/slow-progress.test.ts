/**
 * Progress while waiting on a slow server (issue 12, item 16): on a terminal, a request that
 * takes longer than 3 s gets one line naming the host it waits for; piped, stderr stays quiet.
 * Real processes: the built CLI, a loopback server that answers after 4.5 s, a tmux pane.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { BIN } from "../helpers/cli.js";
import { runProcess } from "../helpers/process.js";
import { requireTool } from "../helpers/require-tool.js";
import { startTmux } from "../helpers/tmux.js";

const DELAY_MS = 4_500;

describe("progress while waiting on a slow server (built CLI)", { timeout: 60_000 }, () => {
  let server: Server;
  let url: string;
  let home: string;
  before(async () => {
    home = mkdtempSync(join(tmpdir(), "azkeep-slow-"));
    server = createServer((_req, res) => {
      setTimeout(() => {
        res.setHeader("content-type", "application/json");
        res.end('{"slow":true}');
      }, DELAY_MS);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const addr = server.address();
    assert.ok(addr && typeof addr === "object");
    url = `http://127.0.0.1:${addr.port}/slow`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
    rmSync(home, { recursive: true, force: true });
  });
  const env = () => ({
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: home,
    XDG_RUNTIME_DIR: join(home, "run"),
    AZKEEP_AGENT: "off",
  });
  const argv = () => ["rest", "--url", url, "--skip-authorization-header"];

  it("piped: the answer, and no waiting line on stderr", async () => {
    const r = await runProcess(process.execPath, [BIN, ...argv()], { env: env(), timeoutMs: 30_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { slow: true });
    assert.doesNotMatch(r.stderr, /Waiting for/);
  });

  it("on a terminal (tmux): one line naming the host, then the answer", async (t) => {
    if (!requireTool(t, "tmux", "apt-get install -y tmux")) return;
    const tmux = startTmux();
    try {
      const host = new URL(url).host;
      const pane = tmux.pane(
        `${process.execPath} ${BIN} ${argv().join(" ")}; echo "exit=$?"; sleep 30`,
        env(),
      );
      const screen = await tmux.waitFor(pane.target, /exit=\d+/, 30_000);
      assert.match(screen, /exit=0/, screen);
      assert.match(screen, /"slow": true/, screen);
      const waiting = screen.split("\n").filter((l) => l.includes("Waiting for"));
      assert.deepEqual(waiting, [`Waiting for ${host}… (Ctrl-C to stop)`], screen);
    } finally {
      tmux.kill();
    }
  });
});
