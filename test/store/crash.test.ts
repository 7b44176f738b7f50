import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { createFileStore } from "../../src/core/store/file-store.js";
import { bundleWriter } from "./bundle.js";
import { tempStoreDir } from "./helpers.js";

const LANES = 4;
const RUNS_PER_LANE = 50;

/** Starts a writer that updates the store in a loop; kills it with SIGKILL `delayMs` after it is ready. */
function killDuringWrites(writer: string, env: NodeJS.ProcessEnv, delayMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [writer, "loop", "0"], { env, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    let killed = false;
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.stdout.on("data", (d: Buffer) => {
      if (!killed && d.toString().includes("ready")) {
        killed = true;
        setTimeout(() => child.kill("SIGKILL"), delayMs);
      }
    });
    const guard = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      clearTimeout(guard);
      if (signal === "SIGKILL" && killed) resolve();
      else reject(new Error(`writer ended by itself (code ${code}, signal ${signal}): ${stderr}`));
    });
  });
}

describe("crash safety", () => {
  let writer: Awaited<ReturnType<typeof bundleWriter>>;
  before(async () => (writer = await bundleWriter()));
  after(() => writer[Symbol.dispose]());

  it(`${LANES * RUNS_PER_LANE} writers killed with SIGKILL at random moments: the store always opens, old or new`, async () => {
    const started = Date.now();
    let advanced = 0;
    const lanes = Array.from({ length: LANES }, async () => {
      using tmp = tempStoreDir();
      const env = { ...process.env, AZKEEP_CONFIG_DIR: tmp.dir, AZKEEP_STORE_PROVIDER: "insecure-file" };
      const ctx = tmp.ctx({ AZKEEP_STORE_PROVIDER: "insecure-file" });
      let last = 0;
      for (let run = 0; run < RUNS_PER_LANE; run++) {
        await killDuringWrites(writer.path, env, Math.floor(Math.random() * 150));
        // A fresh store object, as the next command would make: it must open, with a whole state.
        const store = createFileStore(ctx);
        const secrets = await store.readSecrets();
        const profile = await store.readProfile();
        const n = secrets.refreshTokens[0]?.lastModified ?? 0;
        assert.ok(n >= last, `counter went back from ${last} to ${n}`);
        if (n > last) advanced++;
        last = n;
        if (n > 0) {
          assert.ok(secrets.refreshTokens[0]!.secret.startsWith(`rt-${n}-`), "torn tokens.sealed content");
          // tokens.sealed is written before profile.json: a crash between leaves the profile of an
          // earlier write, never one ahead of the tokens and never a torn one.
          const p = Number(profile.installationId ?? 0);
          assert.ok(
            Number.isInteger(p) && p <= n,
            `profile ${profile.installationId} does not belong with tokens ${n}`,
          );
        }
      }
      // The next writer recovers any lock left by a killed one and cleans its temp files.
      const store = createFileStore(ctx);
      await store.update((st) => void (st.profile.installationId = "final"));
      assert.deepEqual(
        readdirSync(tmp.dir).filter((n) => /lock|tmp-|damaged/.test(n)),
        [],
        "debris left after recovery",
      );
    });
    await Promise.all(lanes);
    // Most kills must have landed while writes were going on, or the test proves nothing.
    assert.ok(advanced >= (LANES * RUNS_PER_LANE) / 2, `only ${advanced} runs wrote anything`);
    process.stdout.write(
      `# ${LANES * RUNS_PER_LANE} kills in ${Date.now() - started} ms; ${advanced} runs wrote\n`,
    );
  });
});
