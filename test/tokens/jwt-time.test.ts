import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import { decodeJwt } from "../../src/core/jwt.js";
import { expiresIn, formatExpiresOn, humanDuration } from "../../src/core/tokens/time.js";
import { fakeJwt } from "./fakes.js";

describe("jwt decode", () => {
  const token = fakeJwt({ aud: "https://management.core.windows.net/", tid: "t", exp: 1_900_000_000 });

  it("decodes header and claims", () => {
    const d = decodeJwt(token);
    assert.equal(d.header.alg, "RS256");
    assert.equal(d.claims.tid, "t");
    assert.ok(d.signatureBytes > 0);
  });

  it("tolerates whitespace, a Bearer prefix and JSON quotes", () => {
    for (const t of [`  ${token}\n`, `Bearer ${token}`, `"${token}"`])
      assert.equal(decodeJwt(t).claims.tid, "t");
  });

  const b = (s: string) => Buffer.from(s).toString("base64url");
  const bad: [string, string, RegExp][] = [
    ["empty", "   ", /empty/],
    ["one part", "abc", /1 part, not 3/],
    ["two parts", "abc.def", /2 parts/],
    ["JWE", "a.b.c.d.e", /encrypted JWE/],
    ["not base64url", "ab$.cd.ef", /header is not base64url/],
    ["header not JSON", `${b("nope")}.${b("{}")}.x`, /header is not JSON/],
    ["payload an array", `${b('{"alg":"none"}')}.${b("[1]")}.`, /payload is not a JSON object/],
    ["no alg", `${b('{"typ":"JWT"}')}.${b("{}")}.x`, /no "alg"/],
    ["empty payload", `${b('{"alg":"none"}')}..x`, /payload is empty/],
  ];
  for (const [name, input, re] of bad) {
    it(`rejects ${name} with a clear message that does not echo the input`, () => {
      assert.throws(
        () => decodeJwt(input),
        (e: Error & { code?: string; hint?: string }) => {
          assert.equal(e.code, "bad_input");
          assert.match(e.message, re);
          assert.match(e.message, /^This is not a valid JWT/);
          if (input.trim().length > 3) assert.ok(!e.message.includes(input.trim()));
          assert.match(e.hint ?? "", /azkeep token decode/);
          return true;
        },
      );
    });
  }
});

describe("expiresOn: naive local time with six fractional digits", () => {
  it("formats in the process's time zone", () => {
    // 2026-11-29 00:05:14 UTC, printed by az as 00:05:14 under TZ=UTC and 09:05:14 in Tokyo.
    const code = `import("./src/core/tokens/time.ts").then(m => process.stdout.write(m.formatExpiresOn(1795910714)))`;
    const run = (tz: string) =>
      spawnSync(process.execPath, ["--import", "tsx", "-e", code], {
        env: { ...process.env, TZ: tz },
        encoding: "utf8",
      }).stdout;
    assert.equal(run("UTC"), "2026-11-29 00:05:14.000000");
    assert.equal(run("Asia/Tokyo"), "2026-11-29 09:05:14.000000");
    assert.equal(run("America/New_York"), "2026-11-28 19:05:14.000000");
  });
  it("matches the shape callers parse", () => {
    assert.match(formatExpiresOn(1_800_000_000), /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.000000$/);
  });
  it("says how long is left", () => {
    assert.equal(humanDuration(59 * 60 + 10), "59 minutes");
    assert.equal(humanDuration(3900), "1 hour 5 minutes");
    assert.equal(humanDuration(1), "1 second");
    assert.equal(expiresIn(1000, 400_000), "expires in 10 minutes");
    assert.equal(expiresIn(1000, 1_180_000), "expired 3 minutes ago");
  });
});
