/**
 * The front's memory of released access tokens (`src/agent/front-cache.ts`): it may answer only
 * what the vault would answer itself — the same request, a fresh token by the vault's own rule,
 * store files unchanged — and never a claims challenge, a forced refresh or an aging fallback.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { FRONT_REUSE_MARGIN_S, ReleasedTokens } from "../../src/agent/front-cache.js";
import { encodeFrame, encodeResultFrame, type AgentToken } from "../../src/agent/protocol.js";
import { REUSE_MARGIN_S } from "../../src/core/tokens/cache.js";

describe("the front's released-token memory", () => {
  const dir = mkdtempSync(join(tmpdir(), "azkeep-front-cache-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  let now = 1_000_000;
  const mem = new ReleasedTokens(dir, () => now);
  const token = (over: Partial<AgentToken> = {}): AgentToken => ({
    accessToken: "eyJ.x.y",
    tokenType: "Bearer",
    expiresOn: now + 3600,
    tenant: "t",
    subscription: "s",
    source: "network",
    ...over,
  });
  for (const f of ["tokens.sealed", "profile.json", "config.json"]) writeFileSync(join(dir, f), "1");
  /** The hit for `key` now, as the client reads it. */
  const hitOf = (key: string): AgentToken | undefined => {
    const a = mem.answer(key, mem.filesNow());
    return a && (JSON.parse(a.json) as AgentToken);
  };

  it("uses the vault's reuse margin", () => {
    assert.equal(FRONT_REUSE_MARGIN_S, REUSE_MARGIN_S);
  });

  it("keys requests; a claims challenge or --force-refresh always goes to the vault", () => {
    assert.equal(mem.keyOf({ resourceType: "arm" }), mem.keyOf({ resourceType: "arm" }));
    assert.notEqual(
      mem.keyOf({ resourceType: "arm" }),
      mem.keyOf({ resourceType: "arm", subscription: "x" }),
    );
    assert.notEqual(mem.keyOf({ resource: "a" }), mem.keyOf({ scopes: ["a"] }));
    assert.equal(mem.keyOf({ claims: "e30=" }), undefined);
    assert.equal(mem.keyOf({ forceRefresh: true }), undefined);
  });

  it("answers while fresh and the files are unchanged, as from the cache", () => {
    const key = mem.keyOf({})!;
    mem.put(key, mem.filesNow(), token());
    const hit = hitOf(key);
    assert.equal(hit?.accessToken, "eyJ.x.y");
    assert.equal(hit?.source, "cache");
  });

  it("misses once a store file changes (a login, account set, a refresh elsewhere, an outside edit)", () => {
    const key = mem.keyOf({ resourceType: "ms-graph" })!;
    mem.put(key, mem.filesNow(), token());
    writeFileSync(join(dir, "profile.json"), "22");
    assert.equal(hitOf(key), undefined);
  });

  it("misses within the reuse margin and after refreshOn; keeps no fallback answer", () => {
    const a = mem.keyOf({ resource: "a" })!;
    mem.put(a, mem.filesNow(), token({ expiresOn: now + REUSE_MARGIN_S + 10 }));
    now += 11;
    assert.equal(hitOf(a), undefined);
    const b = mem.keyOf({ resource: "b" })!;
    mem.put(b, mem.filesNow(), token({ refreshOn: now + 5 }));
    assert.ok(hitOf(b));
    now += 6;
    assert.equal(hitOf(b), undefined);
    const c = mem.keyOf({ resource: "c" })!;
    mem.put(c, mem.filesNow(), token({ source: "fallback" }));
    assert.equal(hitOf(c), undefined);
  });

  it("forgets everything on clear (lock, stop, a write through the agent)", () => {
    const key = mem.keyOf({ resource: "d" })!;
    mem.put(key, mem.filesNow(), token());
    mem.clear();
    assert.equal(hitOf(key), undefined);
  });

  it("answers in JSON made once, byte for byte the frame the front would encode", () => {
    const key = mem.keyOf({ resource: "e" })!;
    const t = token({ accessToken: 'eyJ."quoted"\u2028.✓', refreshOn: now + 999 });
    mem.put(key, mem.filesNow(), t);
    const a = mem.answer(key, mem.filesNow());
    assert.ok(a);
    assert.equal(mem.answer(key, mem.filesNow()), a, "encoded again for the second hit");
    for (const id of [1, 2, 4_294_967_296])
      assert.equal(
        encodeResultFrame(id, a),
        encodeFrame({ id, ok: true, result: { ...t, source: "cache" } }),
      );
    // A changed file is a miss.
    writeFileSync(join(dir, "config.json"), "333");
    assert.equal(mem.answer(key, mem.filesNow()), undefined);
  });
});
