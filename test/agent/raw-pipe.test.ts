/**
 * The agent lane's socket without `node:net` (`src/agent/raw-pipe.ts`): on this Node it must be
 * the raw path (else the lane silently pays for `node:net` and the budget in docs/benchmarks.md
 * is gone), it must carry the same bytes as `node:net`, report errors with `net`'s codes, and step
 * aside where `process.binding` would warn.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { lstatLean, openRawPipe, RawPipeSocket } from "../../src/agent/raw-pipe.js";

function collect(sock: RawPipeSocket): Promise<{ data: string; closed: boolean; error?: string }> {
  return new Promise((resolve) => {
    const chunks: Uint8Array[] = [];
    let error: string | undefined;
    // Plain Uint8Arrays (not Buffers): the client's LineReader takes either.
    sock.on("data", (b: Uint8Array) => {
      assert.ok(b instanceof Uint8Array);
      chunks.push(b);
    });
    sock.on("error", (e: NodeJS.ErrnoException) => (error = e.code));
    sock.on("close", () =>
      resolve({ data: Buffer.concat(chunks).toString("utf8"), closed: true, ...(error ? { error } : {}) }),
    );
  });
}

describe("raw pipe (the agent lane's socket)", () => {
  let dir: string;
  let server: Server;
  let path: string;
  const seen: string[] = [];
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "azkeep-rawpipe-"));
    path = join(dir, "s.sock");
    // An echo server that answers each line with its length, then closes after "bye".
    server = createServer((s) => {
      let buf = "";
      s.on("data", (d) => {
        buf += d.toString("utf8");
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          seen.push(line);
          if (line === "bye") s.end("ok\n");
          else s.write(`${Buffer.byteLength(line)}:${line}\n`);
        }
      });
    });
    await new Promise<void>((r) => server.listen(path, r));
  });
  after(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("is the raw path on this Node", () => {
    const sock = openRawPipe(path, {});
    assert.ok(
      sock instanceof RawPipeSocket,
      `Node ${process.version}: the pipe bindings were not as expected`,
    );
    sock.destroy();
  });

  it("carries the same bytes as node:net, in order, including multi-byte text and a large frame", async () => {
    const sock = openRawPipe(path, {})!;
    const done = collect(sock);
    await new Promise<void>((resolve, reject) => {
      sock.once("connect", resolve);
      sock.once("error", reject);
    });
    const big = "x".repeat(200_000);
    sock.write(`héllo ✓\n{"id":1}\n${big}\n`);
    sock.write("bye\n");
    const r = await done;
    const expected = `10:héllo ✓\n8:{"id":1}\n200000:${big}\nok\n`;
    assert.ok(r.data === expected, `got ${r.data.length} chars: ${r.data.slice(0, 40)}…`);
    assert.equal(r.error, undefined);
    assert.ok(
      seen.slice(-4).join("|") === ["héllo ✓", '{"id":1}', big, "bye"].join("|"),
      "the server read it whole",
    );
  });

  it("reports a missing socket as ENOENT and a file nobody listens on as ECONNREFUSED, as net does", async () => {
    for (const [target, code] of [
      [join(dir, "none.sock"), "ENOENT"],
      [join(dir, "stale.sock"), "ECONNREFUSED"],
    ] as const) {
      if (code === "ECONNREFUSED") {
        // A socket file left by a process that bound it and is gone (nobody accepts on it).
        const r = spawnSync("python3", [
          "-c",
          "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])",
          target,
        ]);
        assert.equal(r.status, 0, String(r.stderr));
      }
      const sock = openRawPipe(target, {})!;
      const err = await new Promise<NodeJS.ErrnoException>((resolve) => sock.once("error", resolve));
      assert.equal(err.code, code);
      assert.ok(sock.destroyed);
    }
  });

  it("lstatLean gives lstatSync's owner and mode on this Node, and its errors", () => {
    const base = mkdtempSync(join(tmpdir(), "azkeep-lstat-"));
    try {
      const priv = join(base, "private");
      mkdirSync(priv, { mode: 0o700 });
      const open = join(base, "open");
      mkdirSync(open);
      chmodSync(open, 0o777);
      const file = join(base, "file");
      writeFileSync(file, "x");
      const link = join(base, "link");
      symlinkSync(priv, link);
      for (const p of [priv, open, file, link, base, "/tmp", "/"]) {
        const st = lstatSync(p);
        const lean = lstatLean(p, {});
        assert.ok(lean, `Node ${process.version}: the fs binding was not as expected (${p})`);
        assert.deepEqual(lean, { uid: st.uid, mode: st.mode }, p);
      }
      for (const [p, code] of [
        [join(base, "missing"), "ENOENT"],
        [join(file, "below"), "ENOTDIR"],
      ] as const) {
        assert.throws(() => lstatSync(p), { code });
        assert.throws(() => lstatLean(p, {}), { code }, p);
      }
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });

  it("steps aside where process.binding would warn (--pending-deprecation)", () => {
    assert.equal(openRawPipe(path, { NODE_OPTIONS: "--pending-deprecation" }), undefined);
    assert.equal(openRawPipe(path, { NODE_PENDING_DEPRECATION: "1" }), undefined);
    assert.equal(lstatLean(dir, { NODE_OPTIONS: "--pending-deprecation" }), undefined);
  });
});
