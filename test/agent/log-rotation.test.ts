/**
 * The release log's rotation end to end: the built agent with a tiny rotation limit
 * (`AZKEEP_RELEASE_LOG_MAX_BYTES`) answers token requests of real clients; `agent log` shows
 * every record across `release.log` and its rotated files, checked as one chain (page by page
 * through the socket), and names a record edited in a rotated file; so does `doctor`.
 */
import assert from "node:assert/strict";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { signedIn, type SignedIn } from "../tokens/signed-in.js";
import { startAgent, type Status, killAgentOf } from "./helpers.js";

interface Rec {
  seq: number;
  decision: string;
  request: { kind?: string };
  opens?: { file: number; keep: number };
}

describe("release log rotation through the agent", { timeout: 180_000 }, () => {
  let s: SignedIn;
  let st: Status | undefined;
  // A record of a real client is ~600 bytes (argv, parents): a few per file.
  const env = { AZKEEP_RELEASE_LOG_MAX_BYTES: "4096" };
  const N = 12;
  before(async () => {
    s = await signedIn();
    st = await startAgent(s, [], env);
  });
  after(async () => {
    await killAgentOf(s, st);
    await s?.close();
  });
  const logFiles = () =>
    readdirSync(s.env.AZKEEP_CONFIG_DIR!)
      .filter((f) => /^release\.log(\.\d+)?$/.test(f))
      .sort();

  it("N token requests: the log rotates, `agent log` lists every record across the files and verifies", async () => {
    for (let i = 0; i < N; i++) {
      const r = await s.cli(["account", "get-access-token", "--query", "expiresOn", "-o", "tsv"]);
      assert.equal(r.code, 0, r.stderr);
    }
    const l = await s.cli(["agent", "log", "-o", "json", "--verbose"]);
    assert.equal(l.code, 0, l.stderr);
    const recs = JSON.parse(l.stdout) as Rec[];
    const files = logFiles();
    assert.ok(files.includes("release.log.1"), `rotated: ${files.join(" ")}`);
    assert.ok(files.length <= 4, "at most 3 rotated files");
    // Nothing rotated away yet: every record from the first, in order, across the files.
    assert.deepEqual(
      recs.map((r) => r.seq),
      recs.map((_, i) => i + 1),
    );
    assert.equal(recs.filter((r) => r.request.kind === "token" && r.decision === "allow").length, N);
    assert.ok(
      recs.some((r) => r.opens),
      "a record opens each rotated-to file",
    );
    assert.match(
      l.stderr,
      /The release log verifies: \d+ records checked in release\.log\.\d, .*release\.log\./,
    );
    assert.doesNotMatch(l.stdout + l.stderr, /eyJ/, "no token in the log");
    // `--since` in the future: no record, still verified.
    const none = await s.cli(["agent", "log", "-o", "json", "--since", "2099-01-01"]);
    assert.equal(none.code, 0, none.stderr);
    assert.deepEqual(JSON.parse(none.stdout), []);
    const doctor = await s.cli(["doctor", "-o", "json"]);
    assert.doesNotMatch(doctor.stdout, /release log is broken/);
  });

  it("a record edited in release.log.1 is named by `agent log` and `doctor`", async () => {
    const path = join(s.env.AZKEEP_CONFIG_DIR!, "release.log.1");
    const lines = readFileSync(path, "utf8").trimEnd().split("\n");
    const target = JSON.parse(lines[0]!) as Rec;
    lines[0] = lines[0]!.replace('"decision":"allow"', '"decision":"deny"');
    writeFileSync(path, `${lines.join("\n")}\n`);
    const l = await s.cli(["agent", "log"]);
    assert.notEqual(l.code, 0);
    assert.match(l.stderr, new RegExp(`release\\.log\\.1: record ${target.seq} \\(line 1\\) was changed`));
    const doctor = await s.cli(["doctor", "-o", "json"]);
    assert.match(doctor.stdout, /release log is broken: release\.log\.1: record/);
  });
});
