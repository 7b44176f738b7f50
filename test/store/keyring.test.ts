import assert from "node:assert/strict";
import { createServer, type Socket } from "node:net";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { requireTool } from "../helpers/require-tool.js";
import { tempStoreDir } from "./helpers.js";
import { runProcess } from "../helpers/process.js";
import { TSX, underGnomeKeyring } from "./run-child.js";

interface Probe {
  ok: boolean;
  code?: string;
  message?: string;
  hint?: string;
  ms: number;
}

const probe = async (
  env: Record<string, string | undefined>,
  timeoutMs: number,
  op = "get",
): Promise<Probe> => {
  const r = await runProcess(
    TSX[0]!,
    [...TSX.slice(1), "test/store/fixtures/keyring-probe.ts", String(timeoutMs), op],
    {
      env,
      timeoutMs: 60_000,
    },
  );
  assert.equal(r.code, 0, r.stdout + r.stderr);
  return JSON.parse(r.stdout) as Probe;
};

describe("keyring provider: a Secret Service that cannot answer", () => {
  it("no session bus: store_unavailable at once, with the way out", async () => {
    const env = { ...process.env };
    delete env.DBUS_SESSION_BUS_ADDRESS;
    delete env.DISPLAY;
    const r = await probe(env, 5000);
    assert.equal(r.ok, false);
    assert.equal(r.code, "store_unavailable");
    assert.match(r.hint!, /azkeep store migrate --to keyutils/);
    assert.ok(r.ms < 3000, `took ${r.ms} ms`);
  });

  for (const op of ["get", "create"]) {
    it(`a bus that accepts the connection and never answers: ${op} times out instead of hanging`, async () => {
      using tmp = tempStoreDir();
      const path = join(tmp.root, "silent-bus");
      const sockets: Socket[] = [];
      const server = createServer((s) => void sockets.push(s)); // accepts, never speaks
      await new Promise<void>((r) => server.listen(path, r));
      try {
        const r = await probe({ ...process.env, DBUS_SESSION_BUS_ADDRESS: `unix:path=${path}` }, 700, op);
        assert.equal(r.ok, false);
        assert.equal(r.code, "store_unavailable");
        assert.match(r.message!, /did not answer within 700 ms/);
        assert.ok(r.ms < 5000, `took ${r.ms} ms`);
      } finally {
        sockets.forEach((s) => s.destroy());
        server.close();
      }
    });
  }

  it("a Secret Service whose activation never finishes: times out instead of hanging", async (t) => {
    if (!requireTool(t, "dbus-run-session", "apt-get install dbus")) return;
    using tmp = tempStoreDir();
    const services = join(tmp.root, "services");
    mkdirSync(services);
    // Installed but stuck: the bus starts it and it never takes the name (it ends by itself after 5 s).
    writeFileSync(
      join(services, "org.freedesktop.secrets.service"),
      "[D-BUS Service]\nName=org.freedesktop.secrets\nExec=/bin/sleep 5\n",
    );
    const conf = join(tmp.root, "session.conf");
    writeFileSync(
      conf,
      `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>unix:tmpdir=${tmp.root}</listen><servicedir>${services}</servicedir>
<policy context="default"><allow send_destination="*"/><allow own="*"/></policy></busconfig>`,
    );
    const env = { ...process.env };
    delete env.DBUS_SESSION_BUS_ADDRESS;
    const r = await runProcess(
      "dbus-run-session",
      [`--config-file=${conf}`, "--", ...TSX, "test/store/fixtures/keyring-probe.ts", "800", "get"],
      { env, timeoutMs: 60_000 },
    );
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const p = JSON.parse(r.stdout) as Probe;
    assert.equal(p.code, "store_unavailable");
    assert.match(p.message!, /did not answer within 800 ms/);
    assert.ok(p.ms < 5000, `took ${p.ms} ms`);
  });
});

describe("keyring provider: the pure-JS reader with a real gnome-keyring", () => {
  it("reads an unlocked key alone; a locked item goes to the native module (never 'missing')", async (t) => {
    if (!requireTool(t, "dbus-run-session", "apt-get install dbus")) return;
    if (!requireTool(t, "gnome-keyring-daemon", "apt-get install gnome-keyring")) return;
    using tmp = tempStoreDir();
    const env: Record<string, string | undefined> = { ...process.env, HOME: tmp.root };
    delete env.DBUS_SESSION_BUS_ADDRESS;
    delete env.XDG_RUNTIME_DIR;
    delete env.DISPLAY;
    const [cmd, args] = underGnomeKeyring([...TSX, "test/store/fixtures/keyring-locked.ts"]);
    const r = await runProcess(cmd, args, { env, timeoutMs: 90_000 });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const o = JSON.parse(r.stdout.trim().split("\n").pop()!) as {
      unlockedSame: boolean;
      unlockedLog: string[];
      lockStatus: number;
      locked: string | { code: string; message: string };
      lockedMs: number;
      lockedLog: string[];
    };
    assert.equal(o.unlockedSame, true);
    assert.deepEqual(
      o.unlockedLog.filter((l) => /napi-rs/.test(l)),
      [],
      "the unlocked read used the native module",
    );
    assert.equal(o.lockStatus, 0, "could not lock the collection");
    assert.match(o.lockedLog.join("\n"), /reading through @napi-rs\/keyring \(the item is locked\)/);
    // Without a display the native module's unlock prompt is dismissed: unavailable, not missing.
    assert.notEqual(o.locked, "missing");
    assert.notEqual(o.locked, "different");
    if (typeof o.locked !== "string") assert.equal(o.locked.code, "store_unavailable");
    assert.ok(o.lockedMs < 15_000, `took ${o.lockedMs} ms`);
  });
});
