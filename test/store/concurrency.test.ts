import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { bundleWriter } from "./bundle.js";
import { tempStoreDir } from "./helpers.js";
import { runProcess } from "../helpers/process.js";

const WRITERS = 20;
const CYCLES = 50;

describe("cross-process read-modify-write", () => {
  let writer: Awaited<ReturnType<typeof bundleWriter>>;
  before(async () => (writer = await bundleWriter()));
  after(() => writer[Symbol.dispose]());

  it(`${WRITERS} processes × ${CYCLES} cycles: no lost update, no corrupt file, readers never see a partial store`, async () => {
    using tmp = tempStoreDir();
    const env = { ...process.env, AZKEEP_CONFIG_DIR: tmp.dir, AZKEEP_STORE_PROVIDER: "insecure-file" };
    const node = (args: string[]) =>
      runProcess(process.execPath, [writer.path, ...args], { env, timeoutMs: 400_000 });
    const started = Date.now();
    const results = await Promise.all([
      ...Array.from({ length: WRITERS }, (_, i) => node(["rmw", String(CYCLES), String(i)])),
      node(["read", "8000"]),
      node(["read", "8000"]),
    ]);
    const elapsed = Date.now() - started;
    for (const r of results) assert.equal(r.code, 0, `child failed: ${r.stdout}\n${r.stderr}`);
    for (const r of results.slice(WRITERS)) assert.ok((JSON.parse(r.stdout) as { reads: number }).reads > 0);

    const check = await node(["open"]);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    const state = JSON.parse(check.stdout) as {
      counter: number;
      installationId: string;
      consistent: boolean;
    };
    assert.equal(state.counter, WRITERS * CYCLES, "lost updates in tokens.sealed");
    assert.equal(state.installationId, String(WRITERS * CYCLES), "lost updates in profile.json");
    assert.equal(state.consistent, true);
    const left = readdirSync(tmp.dir).filter((n) => /lock|tmp-|damaged/.test(n));
    assert.deepEqual(left, [], "lock or temp files left behind");
    process.stdout.write(`# ${WRITERS}×${CYCLES} locked writes in ${elapsed} ms\n`);
  });
});
