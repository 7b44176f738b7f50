/**
 * The front's connections (`src/agent/conn.ts`): one contract, run against both carriers — the
 * raw libuv pipe the daemon listens with (`raw-server.ts`) and `node:net` (its fallback) — with
 * real sockets and a `node:net` client, as any client of the agent is.
 */
import assert from "node:assert/strict";
import { fork } from "node:child_process";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { connect, createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { netListener, type AgentConn, type AgentListener } from "../../src/agent/conn.js";
import { peerCredentials } from "../../src/agent/peer.js";
import { listenRaw } from "../../src/agent/raw-server.js";

const kinds: Record<string, (path: string) => Promise<AgentListener>> = {
  raw: (path) => {
    const l = listenRaw(path);
    assert.ok(l, "this Node's pipe bindings are the ones raw-server.ts knows");
    return Promise.resolve(l);
  },
  net: async (path) => {
    const server = createServer();
    await new Promise<void>((r) => server.listen(path, r));
    return netListener(server);
  },
};

function client(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(path, () => resolve(s));
    s.once("error", reject);
  });
}

function readAll(s: Socket): Promise<string> {
  return new Promise((resolve) => {
    let text = "";
    s.on("data", (d) => (text += d.toString("utf8")));
    s.on("error", () => {});
    s.on("close", () => resolve(text));
  });
}

for (const [kind, listen] of Object.entries(kinds)) {
  describe(`agent front connections: ${kind}`, { timeout: 30_000 }, () => {
    let dir: string;
    let path: string;
    let listener: AgentListener;
    let next: ((c: AgentConn) => void) | undefined;
    const accepted = () =>
      new Promise<AgentConn>((resolve) => {
        next = resolve;
      });
    before(async () => {
      dir = mkdtempSync(join(tmpdir(), `azkeep-conn-${kind}-`));
      path = join(dir, "agent.sock");
      listener = await listen(path);
      listener.onConnection((c) => {
        const n = next;
        next = undefined;
        n?.(c);
      });
    });
    after(() => {
      listener.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it("carries bytes both ways, in order, and says who the peer is", async () => {
      const got = accepted();
      const s = await client(path);
      const conn = await got;
      assert.deepEqual(peerCredentials(conn.fd)?.pid, process.pid);
      const chunks: string[] = [];
      conn.onData((c) => chunks.push(Buffer.from(c).toString("utf8")));
      const all = readAll(s);
      s.write("hello\n");
      s.write("é".repeat(10_000) + "\n");
      for (let i = 0; i < 400 && chunks.join("").length < 10_007; i++)
        await new Promise((r) => setTimeout(r, 5));
      assert.equal(chunks.join(""), "hello\n" + "é".repeat(10_000) + "\n");
      // A large answer (several times a socket buffer) arrives whole, then the end.
      const big = "x".repeat(2_000_000);
      let written = false;
      conn.write(big, () => (written = true));
      conn.write("\nend\n");
      s.end();
      const text = await all;
      assert.equal(text, `${big}\nend\n`);
      assert.ok(written);
    });

    it("corked writes go out as one, in order", async () => {
      const got = accepted();
      const s = await client(path);
      const conn = await got;
      const all = readAll(s);
      const order: number[] = [];
      conn.cork();
      conn.write("a", () => order.push(1));
      conn.write("b", () => order.push(2));
      conn.uncork();
      conn.end("c");
      s.end();
      assert.equal(await all, "abc");
      assert.deepEqual(order, [1, 2]);
    });

    it("end: the client reads the text, then the end of the stream", async () => {
      const got = accepted();
      const s = await client(path);
      const conn = await got;
      let closed = false;
      conn.onClose(() => (closed = true));
      const text = new Promise<string>((resolve) => {
        let t = "";
        s.on("data", (d) => (t += d.toString("utf8")));
        s.on("end", () => resolve(t));
      });
      conn.end("bye\n");
      assert.equal(await text, "bye\n");
      s.end();
      for (let i = 0; i < 200 && !closed; i++) await new Promise((r) => setTimeout(r, 5));
      assert.ok(closed, "closed once the client ended too");
    });

    it("the client going away closes the connection once; writes after it are dropped", async () => {
      const got = accepted();
      const s = await client(path);
      const conn = await got;
      let closes = 0;
      conn.onClose(() => closes++);
      s.destroy();
      for (let i = 0; i < 200 && closes === 0; i++) await new Promise((r) => setTimeout(r, 5));
      assert.equal(closes, 1);
      assert.ok(conn.destroyed);
      conn.write("late");
      conn.destroy();
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(closes, 1);
    });

    it("idle: fires after the time without traffic, is pushed back by traffic, and 0 turns it off", async () => {
      const got = accepted();
      const s = await client(path);
      s.on("error", () => {});
      const conn = await got;
      conn.onData(() => {});
      let fired = 0;
      const t0 = Date.now();
      conn.setIdle(200, () => fired++);
      await new Promise((r) => setTimeout(r, 120));
      s.write("x");
      await new Promise((r) => setTimeout(r, 120));
      assert.equal(fired, 0, "traffic at 120 ms pushed the idle time back");
      while (fired === 0 && Date.now() - t0 < 2_000) await new Promise((r) => setTimeout(r, 5));
      assert.equal(fired, 1);
      assert.ok(Date.now() - t0 >= 300, `fired after ${Date.now() - t0} ms`);
      conn.setIdle(50, () => fired++);
      conn.setIdle(0);
      await new Promise((r) => setTimeout(r, 150));
      assert.equal(fired, 1);
      conn.destroy();
      s.destroy();
    });

    it("stopReading leaves what the client sends next in the kernel, for the process it is handed to", async () => {
      const got = accepted();
      const s = await client(path);
      const conn = await got;
      const seen: string[] = [];
      conn.onData((c) => seen.push(Buffer.from(c).toString("utf8")));
      s.write("first\n");
      for (let i = 0; i < 400 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
      conn.stopReading();
      s.write("secret\n");
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(seen, ["first\n"]);
      // Handed to a child process, as the front hands an unlock's socket to the vault.
      const child = join(dir, "child.cjs");
      writeFileSync(
        child,
        `process.on("message", (m, sock) => { let t = ""; sock.on("data", (d) => { t += d; if (t.includes("\\n")) { process.send(t); sock.end("ok\\n"); } }); sock.resume(); });\n`,
      );
      const p = fork(child, [], { stdio: ["ignore", "ignore", "inherit", "ipc"] });
      try {
        const answer = readAll(s);
        const got2 = new Promise<string>((resolve) => p.once("message", (m) => resolve(m as string)));
        p.send({ op: "passphrase" }, await conn.toSocket());
        assert.equal(await got2, "secret\n");
        s.end();
        assert.equal(await answer, "ok\n");
      } finally {
        p.kill();
      }
    });
  });
}

describe("agent front connections: the raw listener", { timeout: 30_000 }, () => {
  it("makes the socket with the process's umask and removes its file when closed", async () => {
    const dir = mkdtempSync(join(tmpdir(), "azkeep-conn-umask-"));
    try {
      const path = join(dir, "agent.sock");
      const old = process.umask(0o177);
      let l: AgentListener | undefined;
      try {
        l = listenRaw(path);
      } finally {
        process.umask(old);
      }
      assert.ok(l);
      assert.equal(statSync(path).mode & 0o777, 0o600);
      // Connections made before a handler is set wait for it.
      const s = await client(path);
      const c = await new Promise<AgentConn>((resolve) => l.onConnection(resolve));
      assert.ok(c.fd !== undefined);
      s.destroy();
      l.close();
      await new Promise((r) => setTimeout(r, 20));
      assert.throws(() => statSync(path), { code: "ENOENT" });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("says why it cannot listen, as net does", () => {
    const dir = mkdtempSync(join(tmpdir(), "azkeep-conn-busy-"));
    try {
      const path = join(dir, "agent.sock");
      const first = listenRaw(path);
      assert.ok(first);
      assert.throws(() => listenRaw(path), { code: "EADDRINUSE" });
      first.close();
      // libuv says EACCES for a folder that does not exist, with net as without.
      assert.throws(() => listenRaw(join(dir, "no", "such", "agent.sock")), { code: "EACCES" });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("is not used where process.binding would warn (--pending-deprecation): net is", () => {
    const dir = mkdtempSync(join(tmpdir(), "azkeep-conn-dep-"));
    try {
      assert.equal(listenRaw(join(dir, "agent.sock"), { NODE_PENDING_DEPRECATION: "1" }), undefined);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
