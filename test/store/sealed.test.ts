import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import {
  HEADER_BYTES,
  V1_HEADER_BYTES,
  KID_BYTES,
  NONCE_BYTES,
  SealError,
  TAG_BYTES,
  keyCheckValue,
  parseHeader,
  seal,
  unseal,
} from "../../src/core/store/sealed.js";

const key = randomBytes(32);
const kid = randomBytes(KID_BYTES);
const keyFor = (k: Buffer) => (k.equals(kid) ? key : undefined);
const plaintext = Buffer.from(
  JSON.stringify({
    version: 1,
    refreshTokens: [{ secret: "rt-0123456789" }],
    accessTokens: [],
    servicePrincipals: [],
  }),
);

function reasonOf(data: Uint8Array): string {
  try {
    unseal(data, keyFor);
  } catch (e) {
    assert.ok(e instanceof SealError, `unexpected error ${String(e)}`);
    return e.reason;
  }
  return "opened";
}

describe("tokens.sealed format", () => {
  it("round-trips and has the documented layout", () => {
    const nonce = randomBytes(NONCE_BYTES);
    const blob = seal(plaintext, key, kid, nonce, "keyutils");
    assert.equal(blob.length, HEADER_BYTES + plaintext.length + TAG_BYTES);
    assert.equal(HEADER_BYTES, 34);
    assert.equal(blob.subarray(0, 4).toString("latin1"), "AZKS");
    assert.equal(blob[4], 2);
    assert.equal(blob[33], 2, "provider byte: 2 = keyutils");
    assert.deepEqual(parseHeader(blob).kid, kid);
    assert.deepEqual(parseHeader(blob).nonce, nonce);
    assert.equal(parseHeader(blob).provider, "keyutils");
    assert.deepEqual(unseal(blob, keyFor), plaintext);
    assert.equal(blob.indexOf("rt-0123456789"), -1, "plaintext visible in the sealed blob");
    // The provider byte is authenticated: naming another provider fails the GCM check.
    const renamed = Buffer.from(blob);
    renamed[33] = 3;
    assert.equal(reasonOf(renamed), "auth_failed");
  });

  it("reads version 1 (azkeep 0.1: no provider byte, 33-byte header)", () => {
    const blob = seal(plaintext, key, kid, randomBytes(NONCE_BYTES));
    assert.equal(blob.length, V1_HEADER_BYTES + plaintext.length + TAG_BYTES);
    assert.equal(blob[4], 1);
    assert.equal(parseHeader(blob).provider, undefined);
    assert.deepEqual(unseal(blob, keyFor), plaintext);
  });

  it("a fresh nonce gives a different blob for the same content", () => {
    const a = seal(plaintext, key, kid, randomBytes(NONCE_BYTES));
    const b = seal(plaintext, key, kid, randomBytes(NONCE_BYTES));
    assert.notDeepEqual(a, b);
  });

  it("detects every single-byte change of a small store (every position, every other value)", () => {
    const blob = seal(plaintext, key, kid, randomBytes(NONCE_BYTES));
    let checked = 0;
    for (let i = 0; i < blob.length; i++) {
      const copy = Buffer.from(blob);
      for (let v = 0; v < 256; v++) {
        if (v === blob[i]) continue;
        copy[i] = v;
        const r = reasonOf(copy);
        assert.notEqual(r, "opened", `byte ${i} changed to ${v} was not detected`);
        checked++;
      }
    }
    assert.equal(checked, blob.length * 255);
  });

  it("detects every truncation and any appended byte", () => {
    const blob = seal(plaintext, key, kid, randomBytes(NONCE_BYTES));
    for (let n = 0; n < blob.length; n++)
      assert.notEqual(reasonOf(blob.subarray(0, n)), "opened", `truncated to ${n}`);
    assert.notEqual(reasonOf(Buffer.concat([blob, Buffer.from([0])])), "opened");
  });

  const cases: [string, (b: Buffer) => Buffer, string][] = [
    ["wrong magic", (b) => Buffer.concat([Buffer.from("XXXX"), b.subarray(4)]), "not_a_store"],
    [
      "unknown version",
      (b) => Buffer.concat([b.subarray(0, 4), Buffer.from([3]), b.subarray(5)]),
      "unknown_version",
    ],
    ["empty file", () => Buffer.alloc(0), "truncated"],
    ["header only", (b) => b.subarray(0, HEADER_BYTES), "truncated"],
    [
      "tag flipped",
      (b) => Buffer.concat([b.subarray(0, -1), Buffer.from([b[b.length - 1]! ^ 1])]),
      "auth_failed",
    ],
    ["plain JSON file", () => Buffer.from('{"refreshTokens":[]}'), "not_a_store"],
  ];
  for (const [name, mutate, reason] of cases) {
    it(`${name} → ${reason}`, () => {
      const blob = seal(plaintext, key, kid, randomBytes(NONCE_BYTES));
      assert.equal(reasonOf(mutate(blob)), reason);
    });
  }

  it("a wrong key fails authentication; an unknown key id is reported as such", () => {
    const blob = seal(plaintext, key, kid, randomBytes(NONCE_BYTES));
    assert.throws(
      () => unseal(blob, () => randomBytes(32)),
      (e: SealError) => e.reason === "auth_failed",
    );
    assert.throws(
      () => unseal(blob, () => undefined),
      (e: SealError) => e.reason === "unknown_key",
    );
  });

  it("key check values differ per key and are stable", () => {
    assert.equal(keyCheckValue(key), keyCheckValue(Buffer.from(key)));
    assert.notEqual(keyCheckValue(key), keyCheckValue(randomBytes(32)));
  });
});
