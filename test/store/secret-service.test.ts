/**
 * The pure-JS Secret Service reader against a fake session bus on a unix socket: what it
 * decides (found / missing / undecided → the native module), and that garbage or hostile
 * replies end in one clean `unavailable`, fast, never a hang or a wrong answer.
 */
import assert from "node:assert/strict";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import fc from "fast-check";
import {
  WireError,
  encodeMessage,
  lookupSecret,
  parseMessages,
  type Message,
  type SecretLookup,
  type Writer,
} from "../../src/core/store/providers/secret-service.js";
import { tempStoreDir } from "./helpers.js";

const tmp = tempStoreDir("azkeep-fakebus-");
after(() => tmp[Symbol.dispose]());
let n = 0;

type Answer = { signature?: string; body?: (w: Writer) => void; errorName?: string };
type Reply = Answer | "silent";
interface Script {
  /** The authentication answer (default `OK <guid>`); raw bytes are sent as they are. */
  auth?: string | Buffer;
  /** Bytes sent right after authentication, instead of answering. */
  raw?: Buffer;
  /** Answers by member name; unlisted calls are not answered. */
  replies?: Partial<Record<"Hello" | "OpenSession" | "SearchItems" | "GetSecret", Reply>>;
}

/** A fake session bus that plays `script`; returns its address and the calls it saw. */
async function fakeBus(
  script: Script,
): Promise<{ env: Record<string, string>; calls: Message[]; close(): void }> {
  const path = join(tmp.root, `bus-${n++}`);
  const sockets: Socket[] = [];
  const calls: Message[] = [];
  const server: Server = createServer((s) => {
    sockets.push(s);
    let stage: "auth" | "begin" | "messages" = "auth";
    let pending: Buffer = Buffer.alloc(0);
    let serial = 100;
    s.on("error", () => {});
    s.on("data", (chunk) => {
      pending = Buffer.concat([pending, chunk]);
      if (stage === "auth") {
        const nl = pending.indexOf("\r\n");
        if (nl < 0) return;
        assert.equal(pending[0], 0, "the client sends the NUL byte first");
        assert.match(pending.toString("latin1", 1, nl), /^AUTH EXTERNAL [0-9a-f]+$/);
        pending = pending.subarray(nl + 2);
        s.write(script.auth ?? "OK 1234deadbeef1234deadbeef1234dead\r\n");
        stage = "begin";
      }
      if (stage === "begin") {
        const nl = pending.indexOf("\r\n");
        if (nl < 0) return;
        assert.equal(pending.toString("latin1", 0, nl), "BEGIN");
        pending = pending.subarray(nl + 2);
        stage = "messages";
        if (script.raw) s.write(script.raw);
      }
      const { messages, rest } = parseMessages(pending);
      pending = rest;
      for (const m of messages) {
        calls.push(m);
        const member = memberOf(m);
        const r = script.replies?.[member as keyof NonNullable<Script["replies"]>];
        if (!r || r === "silent") continue;
        s.write(
          encodeMessage({
            type: r.errorName ? 3 : 2,
            serial: serial++,
            replySerial: m.serial,
            ...(r.errorName ? { errorName: r.errorName } : {}),
            ...(r.signature ? { signature: r.signature } : {}),
            ...(r.body ? { body: r.body } : {}),
          }),
        );
      }
    });
  });
  await new Promise<void>((r) => server.listen(path, r));
  return {
    env: { DBUS_SESSION_BUS_ADDRESS: `unix:path=${path}` },
    calls,
    close() {
      sockets.forEach((s) => s.destroy());
      server.close();
    },
  };
}

function memberOf(m: Message): string {
  return m.member ?? "";
}

const SECRET = Buffer.from("0123456789abcdef0123456789abcdef\u0000\u00ff", "latin1");
const ITEM = "/org/freedesktop/secrets/collection/login/1";
const good: Record<"Hello" | "OpenSession" | "SearchItems" | "GetSecret", Answer> = {
  Hello: { signature: "s", body: (w) => w.str(":1.42") },
  OpenSession: {
    signature: "vo",
    body: (w) => {
      w.sig("s");
      w.str("");
      w.str("/org/freedesktop/secrets/session/s7");
    },
  },
  SearchItems: {
    signature: "aoao",
    body: (w) => {
      paths(w, [ITEM]);
      paths(w, []);
    },
  },
  GetSecret: {
    signature: "(oayays)",
    body: (w) => {
      w.align(8);
      w.str("/org/freedesktop/secrets/session/s7");
      w.bytes(new Uint8Array());
      w.bytes(SECRET);
      w.str("text/plain");
    },
  },
};
function paths(w: Writer, list: string[]) {
  const at = w.pos;
  w.u32(0);
  const start = w.pos;
  for (const p of list) w.str(p);
  w.patchU32(at, w.pos - start);
}

async function lookup(
  script: Script,
  timeoutMs = 3000,
): Promise<{ r: SecretLookup; ms: number; calls: Message[] }> {
  const bus = await fakeBus(script);
  try {
    const t0 = performance.now();
    const r = await lookupSecret(bus.env, { service: "azkeep", username: "store-key-ab" }, timeoutMs);
    return { r, ms: performance.now() - t0, calls: bus.calls };
  } finally {
    bus.close();
  }
}

describe("secret-service: the pure-JS reader against a fake bus", () => {
  it("one unlocked item: its secret, byte for byte; asks with the native module's attributes", async () => {
    const { r, calls } = await lookup({ replies: good });
    assert.deepEqual(r, { kind: "found", secret: new Uint8Array(SECRET) });
    const search = calls.find((c) => c.signature === "a{ss}");
    assert.ok(search, "no SearchItems call");
    assert.deepEqual(search.body[0], [
      ["service", "azkeep"],
      ["username", "store-key-ab"],
    ]);
    const open = calls.find((c) => c.signature === "sv");
    assert.deepEqual(open?.body, ["plain", { sig: "s", value: "" }]);
    const get = calls.find((c) => c.signature === "o");
    assert.deepEqual(get?.body, ["/org/freedesktop/secrets/session/s7"]);
  });

  it("no matching item: missing (and no GetSecret)", async () => {
    const { r, calls } = await lookup({
      replies: {
        ...good,
        SearchItems: {
          signature: "aoao",
          body: (w) => {
            paths(w, []);
            paths(w, []);
          },
        },
      },
    });
    assert.deepEqual(r, { kind: "missing" });
    assert.equal(
      calls.some((c) => c.signature === "o"),
      false,
    );
  });

  it("a locked item: undecided (the native module unlocks), not missing", async () => {
    const { r } = await lookup({
      replies: {
        ...good,
        SearchItems: {
          signature: "aoao",
          body: (w) => {
            paths(w, []);
            paths(w, [ITEM]);
          },
        },
      },
    });
    assert.equal(r.kind, "undecided");
  });

  it("two matching items: undecided, never one picked at random", async () => {
    const { r } = await lookup({
      replies: {
        ...good,
        SearchItems: {
          signature: "aoao",
          body: (w) => {
            paths(w, [ITEM, ITEM + "0"]);
            paths(w, []);
          },
        },
      },
    });
    assert.equal(r.kind, "undecided");
  });

  it("GetSecret says IsLocked, or OpenSession is not supported: undecided", async () => {
    for (const replies of [
      { ...good, GetSecret: { errorName: "org.freedesktop.Secret.Error.IsLocked" } },
      { ...good, OpenSession: { errorName: "org.freedesktop.DBus.Error.NotSupported" } },
    ]) {
      const { r } = await lookup({ replies });
      assert.equal(r.kind, "undecided", JSON.stringify(r));
    }
  });

  it("no Secret Service on the bus: unavailable, naming it", async () => {
    const { r } = await lookup({
      replies: { ...good, OpenSession: { errorName: "org.freedesktop.DBus.Error.ServiceUnknown" } },
    });
    assert.equal(r.kind, "unavailable");
    assert.match((r as { reason: string }).reason, /no Secret Service/);
  });

  it("a secret that comes back with parameters (not plain): undecided, not used", async () => {
    const { r } = await lookup({
      replies: {
        ...good,
        GetSecret: {
          signature: "(oayays)",
          body: (w) => {
            w.align(8);
            w.str("/s");
            w.bytes(new Uint8Array(16));
            w.bytes(SECRET);
            w.str("text/plain");
          },
        },
      },
    });
    assert.equal(r.kind, "undecided");
  });

  const hostile: [string, Script][] = [
    ["authentication refused", { auth: "REJECTED EXTERNAL\r\n" }],
    ["an authentication line that never ends", { auth: Buffer.alloc(64 * 1024, 0x41) }],
    [
      "random bytes instead of messages",
      { raw: Buffer.from("this is not D-Bus at all, not even close....") },
    ],
    [
      "a message that claims 4 GiB",
      { raw: Buffer.from([0x6c, 2, 0, 1, 0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 0, 0, 0, 0]) },
    ],
    [
      "a reply whose body has the wrong types",
      { replies: { ...good, SearchItems: { signature: "s", body: (w) => w.str("/x") } } },
    ],
    [
      "an array whose length runs past its message",
      {
        replies: {
          ...good,
          SearchItems: {
            signature: "aoao",
            body: (w) => {
              w.u32(5000);
              w.u32(0);
            },
          },
        },
      },
    ],
    [
      "a SearchItems reply holding non-paths",
      {
        replies: {
          ...good,
          SearchItems: {
            signature: "asas",
            body: (w) => {
              w.u32(0);
              w.u32(0);
            },
          },
        },
      },
    ],
    ["the bus hangs up after authentication", { raw: Buffer.alloc(0), replies: {} }],
  ];
  for (const [name, script] of hostile) {
    it(`hostile bus: ${name} → unavailable at once, no hang`, async () => {
      const s =
        name === "the bus hangs up after authentication"
          ? { ...script, raw: Buffer.from([0x6c, 2, 0, 1, 0, 0, 0, 0]) } // then closes below
          : script;
      const bus = await fakeBus(s);
      try {
        const t0 = performance.now();
        const p = lookupSecret(bus.env, { service: "azkeep", username: "u" }, 10_000);
        if (name === "the bus hangs up after authentication") setTimeout(() => bus.close(), 200);
        const r = await p;
        const ms = performance.now() - t0;
        assert.equal(r.kind, "unavailable", JSON.stringify(r));
        assert.ok(ms < 5000, `took ${ms} ms`);
        assert.doesNotMatch((r as { reason: string }).reason, /\n/);
      } finally {
        bus.close();
      }
    });
  }

  it("a bus that never answers the calls: unavailable after the timeout", async () => {
    const { r, ms } = await lookup({ replies: { Hello: good.Hello } }, 600);
    assert.equal(r.kind, "unavailable");
    assert.match((r as { reason: string }).reason, /did not answer within 600 ms/);
    assert.ok(ms >= 550 && ms < 5000, `took ${ms} ms`);
  });
});

describe("secret-service: the message parser", () => {
  const valid = encodeMessage({ type: 2, serial: 9, replySerial: 4, ...good.GetSecret });

  it("round-trips a reply", () => {
    const { messages, rest } = parseMessages(Buffer.concat([valid, valid.subarray(0, 10)]));
    assert.equal(messages.length, 1);
    assert.equal(rest.length, 10);
    assert.equal(messages[0]!.replySerial, 4);
    const s = messages[0]!.body[0] as unknown[];
    assert.deepEqual(s[2], SECRET);
  });

  it("types that take no space (an array of empty structs) are refused, not looped over", () => {
    for (const signature of ["a()", "a{}", "a{s}", "a(())"]) {
      const m = encodeMessage({
        type: 2,
        serial: 1,
        replySerial: 3,
        signature,
        body: (w) => {
          w.u32(8);
          w.align(8);
          w.u32(0);
          w.u32(0);
        },
      });
      assert.throws(() => parseMessages(m), WireError, signature);
    }
  });

  it("random bytes: parsed, incomplete, or a WireError — never another exception", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
        try {
          parseMessages(Buffer.from(bytes));
        } catch (e) {
          if (!(e instanceof WireError)) throw e;
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("a valid reply with bytes flipped: a WireError or a parse, never another exception", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ at: fc.nat(valid.length - 1), v: fc.nat(255) }), { minLength: 1, maxLength: 6 }),
        (flips) => {
          const b = Buffer.from(valid);
          for (const f of flips) b[f.at] = f.v;
          try {
            parseMessages(b);
          } catch (e) {
            if (!(e instanceof WireError)) throw e;
          }
        },
      ),
      { numRuns: 3000 },
    );
  });
});
