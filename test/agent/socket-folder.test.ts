/**
 * A client talks to an agent's socket only in a folder private to its user (src/agent/start.ts
 * `reachAgent`): someone else's listener there would see every request. Checked on the shipped
 * bin and `az` shim, whose agent lanes read the folder through `lstatLean` (raw-pipe.ts), and on
 * the full lanes they hand over to: a listener in a folder others may write to gets no
 * connection, and the person reads why and what to do.
 */
import assert from "node:assert/strict";
import { chmodSync, mkdirSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { agentSocketPath } from "../../src/agent/protocol.js";
import { resolvePaths } from "../../src/core/paths.js";
import { BIN, tempHome } from "../helpers/cli.js";
import { runProcess } from "../helpers/process.js";
import { SHIM_DIR } from "../tokens/signed-in.js";

describe("the agent's socket folder", () => {
  const h = tempHome();
  const env: Record<string, string> = { ...h.env, PATH: process.env.PATH ?? "/usr/bin:/bin", NO_COLOR: "1" };
  const socketPath = agentSocketPath(resolvePaths(env), env);
  let server: Server;
  let connections = 0;

  before(async () => {
    mkdirSync(dirname(socketPath), { recursive: true, mode: 0o700 });
    // A listener that would answer like an agent, were it asked.
    server = createServer((s) => {
      connections++;
      s.on("error", () => {});
      s.end('{"id":1,"ok":true,"result":{"version":1}}\n');
    });
    await new Promise<void>((r) => server.listen(socketPath, r));
  });
  after(() => {
    server.close();
    h[Symbol.dispose]();
  });

  for (const [who, cmd, args] of [
    ["azkeep account get-access-token", process.execPath, [BIN, "account", "get-access-token"]],
    [
      "azkeep … --query accessToken -o tsv",
      process.execPath,
      [BIN, "account", "get-access-token", "--query", "accessToken", "-o", "tsv"],
    ],
    ["the az shim's get-access-token", join(SHIM_DIR, "az"), ["account", "get-access-token", "-o", "json"]],
  ] as const) {
    it(`${who}: no connection to a socket in a folder others may write to`, async () => {
      chmodSync(dirname(socketPath), 0o777);
      try {
        const r = await runProcess(cmd, [...args], { env, timeoutMs: 60_000 });
        assert.notEqual(r.code, 0, r.stdout);
        assert.equal(connections, 0, "the client connected to the listener");
        assert.match(r.stderr, /not private to you/, r.stderr);
        assert.match(r.stderr, /chmod 700/, "says what to do");
        assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
      } finally {
        chmodSync(dirname(socketPath), 0o700);
      }
    });
  }

  it("the same folder, private again: the client does connect (the listener above is reached)", async () => {
    const before = connections;
    await runProcess(process.execPath, [BIN, "account", "get-access-token"], { env, timeoutMs: 60_000 });
    assert.ok(connections > before, "a private folder's socket is used");
  });
});
