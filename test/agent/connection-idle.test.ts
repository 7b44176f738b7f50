/**
 * The front's idle connections (`src/agent/server.ts`): a connection with nothing in progress is
 * closed after the idle time; one whose request is still being answered (here an unlock whose
 * vault never gets ready, as a prompt waiting for the person would be) is not, however long it
 * takes, and is closed the idle time after its answer.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, connect, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { netListener, type AgentListener } from "../../src/agent/conn.js";
import { listenRaw } from "../../src/agent/raw-server.js";
import { AgentServer } from "../../src/agent/server.js";
import { openGate } from "../../src/agent/release.js";

const IDLE_MS = 300;

function closedAfter(sock: Socket): Promise<number> {
  const t0 = Date.now();
  return new Promise((resolve) => sock.on("close", () => resolve(Date.now() - t0)));
}

// The front listens on the raw pipe (the daemon's default) or node:net (its fallback).
const listeners: Record<string, (path: string) => Promise<AgentListener>> = {
  raw: (path) => Promise.resolve(listenRaw(path)!),
  net: async (path) => {
    const server: Server = createServer();
    await new Promise<void>((r) => server.listen(path, r));
    return netListener(server);
  },
};

for (const [kind, listen] of Object.entries(listeners))
  describe(`agent front: idle connections (${kind})`, () => {
    let dir: string;
    let path: string;
    let agent: AgentServer;
    before(async () => {
      dir = mkdtempSync(join(tmpdir(), "azkeep-idle-"));
      path = join(dir, "agent.sock");
      // A vault that never says it is ready, and ends after 2 s (the unlock then fails).
      const vault = join(dir, "vault.mjs");
      writeFileSync(vault, "setTimeout(() => process.exit(3), 2_000);\n");
      agent = new AgentServer({
        server: await listen(path),
        socketPath: path,
        configDir: dir,
        vaultEntry: vault,
        vaultEnv: { PATH: process.env.PATH },
        gate: openGate,
        idleMs: 0,
        maxMs: 0,
        provider: () => "insecure-file",
        agentOnly: () => false,
        peer: () => undefined,
        peerCheck: "test",
        nonDumpable: false,
        azkeep: "test",
        unlockAtStart: false,
        log: () => {},
        onStop: () => {},
        idleConnectionMs: IDLE_MS,
      });
    });
    after(() => {
      agent.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    it("a connection that asks nothing is closed after the idle time", async () => {
      const sock = connect(path);
      sock.on("error", () => {});
      const ms = await closedAfter(sock);
      assert.ok(ms >= IDLE_MS - 50 && ms < IDLE_MS + 1_500, `closed after ${ms} ms`);
    });

    it("a request in progress longer than the idle time keeps its connection; it closes the idle time after the answer", async () => {
      const sock = connect(path);
      sock.on("error", () => {});
      let answer = "";
      let answeredAt = 0;
      sock.on("data", (d) => {
        answer += d.toString("utf8");
        answeredAt = Date.now();
      });
      const closed = closedAfter(sock);
      const t0 = Date.now();
      sock.write('{"id":1,"op":"unlock"}\n');
      await closed;
      const closedAt = Date.now();
      // The answer came when the vault ended (~2 s, well past the idle time), on a live connection.
      assert.match(answer, /"id":1,"ok":false/);
      assert.ok(answeredAt - t0 >= 1_500, `answered after ${answeredAt - t0} ms`);
      const idleAfter = closedAt - answeredAt;
      assert.ok(
        idleAfter >= IDLE_MS - 50 && idleAfter < IDLE_MS + 1_500,
        `closed ${idleAfter} ms after the answer`,
      );
    });
  });
