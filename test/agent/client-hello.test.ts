/**
 * The agent client's hello (`src/agent/client.ts`): it travels with the first request in one
 * write, goes alone only when `hello` is asked for first, and the client arms no timer of its own
 * on the raw pipe (each would cost the hot path a turn of the event loop; a pending timer would
 * also keep a finished process alive until it fired).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { connectAgent } from "../../src/agent/client.js";
import { PROTOCOL_VERSION } from "../../src/agent/protocol.js";

interface Seen {
  /** Each chunk as the server read it. */
  chunks: string[];
  sock: Socket;
}

describe("agent client: the hello", () => {
  let dir: string;
  let path: string;
  let server: Server;
  let version = PROTOCOL_VERSION;
  const conns: Seen[] = [];
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "azkeep-hello-"));
    path = join(dir, "agent.sock");
    // A fake agent: answers hello with `version`, anything else with its op.
    server = createServer((s) => {
      const seen: Seen = { chunks: [], sock: s };
      conns.push(seen);
      let buf = "";
      s.on("data", (d) => {
        seen.chunks.push(d.toString("utf8"));
        buf += d.toString("utf8");
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const req = JSON.parse(buf.slice(0, nl)) as { id: number; op: string };
          buf = buf.slice(nl + 1);
          const result =
            req.op === "hello" ? { version, revision: 3, azkeep: "test" } : { op: req.op, echoed: true };
          s.write(JSON.stringify({ id: req.id, ok: true, result }) + "\n");
        }
      });
    });
    await new Promise<void>((r) => server.listen(path, r));
  });
  after(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function lines(seen: Seen): { op: string }[] {
    return seen.chunks
      .join("")
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { op: string });
  }

  it("goes with the first request, in the same write", async () => {
    version = PROTOCOL_VERSION;
    const before = conns.length;
    const agent = await connectAgent({ socketPath: path, lean: true });
    assert.ok(agent);
    const r = await agent.status();
    assert.deepEqual(r, { op: "status", echoed: true });
    agent.close();
    const seen = conns[before]!;
    assert.deepEqual(
      lines(seen).map((l) => l.op),
      ["hello", "status"],
    );
    assert.equal(seen.chunks.length, 1, `the hello and the request came in ${seen.chunks.length} reads`);
  });

  it("goes alone, and is answered, when hello is asked for before any request", async () => {
    version = PROTOCOL_VERSION;
    const before = conns.length;
    const agent = await connectAgent({ socketPath: path, lean: true });
    assert.ok(agent);
    const h = await agent.hello;
    assert.equal(h.version, PROTOCOL_VERSION);
    assert.deepEqual(
      lines(conns[before]!).map((l) => l.op),
      ["hello"],
    );
    // A later request still works, and the hello is not sent twice.
    await agent.status();
    agent.close();
    assert.deepEqual(
      lines(conns[before]!).map((l) => l.op),
      ["hello", "status"],
    );
  });

  it("is not sent at all when the connection is closed unused (no timer sends it)", async () => {
    const before = conns.length;
    const agent = await connectAgent({ socketPath: path, lean: true });
    assert.ok(agent);
    await new Promise((r) => setTimeout(r, 50));
    agent.close();
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(conns[before]!.chunks, []);
  });

  it("a version mismatch wins over the request's answer", async () => {
    version = PROTOCOL_VERSION + 100;
    const agent = await connectAgent({ socketPath: path, lean: true });
    assert.ok(agent);
    await assert.rejects(agent.status(), (e: Error) => {
      assert.match(e.message, new RegExp(`speaks protocol ${PROTOCOL_VERSION + 100}`));
      return true;
    });
    agent.close();
    version = PROTOCOL_VERSION;
  });

  it("arms no timer and no setImmediate on the raw pipe (connect, ask, close; and a missing socket)", async () => {
    // In a child, so that only the client's own calls are counted.
    // Not spawnSync: the fake agent lives in this process's event loop.
    const { execFile } = await import("node:child_process");
    const code = `
      const counts = { setTimeout: 0, setImmediate: 0 };
      for (const name of Object.keys(counts)) {
        const real = globalThis[name];
        globalThis[name] = (...a) => (counts[name]++, real(...a));
      }
      const { connectAgent } = await import(${JSON.stringify(new URL("../../src/agent/client.ts", import.meta.url).href)});
      const { RawPipeSocket } = await import(${JSON.stringify(new URL("../../src/agent/raw-pipe.ts", import.meta.url).href)});
      const start = { ...counts };
      const a = await connectAgent({ socketPath: ${JSON.stringify(path)}, lean: true });
      const raw = a.socket instanceof RawPipeSocket;
      await a.status();
      a.close();
      const missing = await connectAgent({ socketPath: ${JSON.stringify(join(dir, "none.sock"))}, lean: true });
      console.log(JSON.stringify({
        raw,
        missing: missing === undefined,
        setTimeout: counts.setTimeout - start.setTimeout,
        setImmediate: counts.setImmediate - start.setImmediate,
      }));
    `;
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile(
        process.execPath,
        ["--import", "tsx", "--input-type=module", "-e", code],
        { encoding: "utf8", timeout: 30_000 },
        (e, out, err) => (e ? reject(new Error(`${e.message}\n${err}`)) : resolve(out)),
      ),
    );
    assert.deepEqual(JSON.parse(stdout.trim()), { raw: true, missing: true, setTimeout: 0, setImmediate: 0 });
  });
});
