/**
 * The agent protocol's framing (`LineReader`, `utf8Text` in src/agent/protocol.ts): lines come out
 * whole and decoded as `Buffer#toString` would, whether the bytes arrive as a socket's Buffers or
 * as the raw pipe's plain Uint8Arrays, in one chunk or split anywhere (inside a character too).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LineReader, utf8Text } from "../../src/agent/protocol.js";

const frames = ['{"id":1,"ok":true}', "héllo ✓ 🙂 ünïcödé", "", "x".repeat(5000), '{"a":"\\u00e9"}'];
const stream = Buffer.from(frames.map((f) => `${f}\n`).join(""), "utf8");

/** Feeds `chunks` to a new reader; the lines it gave, in order. */
function read(chunks: Uint8Array[], max?: number): string[] | "oversized" {
  const r = new LineReader(max);
  const out: string[] = [];
  for (const c of chunks) {
    const lines = r.push(c);
    if (lines === "oversized") return lines;
    out.push(...lines);
  }
  assert.equal(r.pending, false, "nothing left waiting");
  return out;
}

const plain = (b: Buffer) => new Uint8Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));

describe("the agent protocol's framing", () => {
  it("gives the same lines from Buffers and from plain Uint8Arrays, in one chunk", () => {
    assert.deepEqual(read([stream]), frames);
    assert.deepEqual(read([plain(stream)]), frames);
  });

  it("gives the same lines however the bytes are split, inside a character too", () => {
    const text = Buffer.from("héllo ✓ 🙂\nsecond\n", "utf8");
    for (let cut = 0; cut <= text.length; cut++) {
      for (const view of [(b: Buffer) => b, plain]) {
        const got = read([view(text.subarray(0, cut)), view(text.subarray(cut))]);
        assert.deepEqual(got, ["héllo ✓ 🙂", "second"], `cut at byte ${cut}`);
      }
    }
    // One byte at a time.
    assert.deepEqual(read([...stream].map((b) => Uint8Array.of(b))), frames);
  });

  it("keeps the pending part of a line when the chunk it came in is reused", () => {
    const r = new LineReader();
    const chunk = new Uint8Array(Buffer.from("abc", "utf8"));
    assert.deepEqual(r.push(chunk), []);
    chunk.fill(0x7a); // the socket's memory written again
    assert.deepEqual(r.push(Buffer.from("def\n")), ["abcdef"]);
  });

  it("refuses a line longer than its limit, whole or in parts", () => {
    assert.equal(read([Buffer.from("12345678901\n")], 10), "oversized");
    assert.equal(read([Buffer.from("123456"), Buffer.from("7890123\n")], 10), "oversized");
    assert.equal(read([Buffer.from("12345678901")], 10), "oversized");
    assert.deepEqual(read([Buffer.from("1234567890\n")], 10), ["1234567890"]);
  });

  it("decodes UTF-8 as Buffer#toString does, malformed bytes included", () => {
    const samples = [
      Buffer.from("plain ascii"),
      Buffer.from("héllo ✓ 🙂", "utf8"),
      Buffer.from([0xff, 0xfe, 0x41]), // not UTF-8 at all
      Buffer.from([0xe2, 0x9c]), // a character cut short
      Buffer.from([0xed, 0xa0, 0x80]), // a lone surrogate
      Buffer.from([0xc0, 0xaf]), // an overlong form
      Buffer.alloc(0),
    ];
    let seed = 7;
    for (let i = 0; i < 200; i++) {
      const b = Buffer.alloc(1 + (i % 37));
      for (let j = 0; j < b.length; j++) b[j] = (seed = (seed * 1103515245 + 12345) & 0x7fffffff) & 0xff;
      samples.push(b);
    }
    for (const b of samples) {
      assert.equal(utf8Text(b), b.toString("utf8"));
      assert.equal(utf8Text(plain(b)), b.toString("utf8"));
      assert.equal(utf8Text(b.subarray(1)), b.subarray(1).toString("utf8"), "a view at an offset");
    }
  });
});
