import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { createFileStore } from "../../src/core/store/file-store.js";
import { bundleWriter } from "./bundle.js";
import { tempStoreDir } from "./helpers.js";

const LANES = 4;
const RUNS_PER_LANE = 50;

/**
 * Starts a writer that updates the store in a loop, and kills it with SIGKILL at a random
 * moment (0–60 ms) after its first acknowledged write, so every kill lands among writes
 * whatever the machine's load. Resolves with the last counter value it acknowledged.
 */
function killDuringWrites(writer: string, env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [writer, "loop", "0"], { env, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    let out = "";
    let acked = -1;
    let scheduled = false;
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      for (const m of out.matchAll(/wrote (\d+)\n/g)) acked = Math.max(acked, Number(m[1]));
      if (!scheduled && acked >= 0) {
        scheduled = true;
        setTimeout(() => child.kill("SIGKILL"), Math.floor(Math.random() * 60));
      }
    });
    const guard = setTimeout(() => child.kill("SIGKILL"), 120_000);
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      clearTimeout(guard);
      if (signal === "SIGKILL" && scheduled) resolve(acked);
      else
        reject(
          new Error(
            `writer ended without being killed after a write (code ${code}, signal ${signal}): ${stderr}`,
          ),
        );
    });
  });
}

describe("crash safety", () => {
  let writer: Awaited<ReturnType<typeof bundleWriter>>;
  before(async () => (writer = await bundleWriter()));
  after(() => writer[Symbol.dispose]());

  it(`${LANES * RUNS_PER_LANE} writers killed with SIGKILL at random moments: the store always opens, old or new`, async () => {
    const started = Date.now();
    let midWrite = 0;
    const lanes = Array.from({ length: LANES }, async () => {
      using tmp = tempStoreDir();
      const env = { ...process.env, AZKEEP_CONFIG_DIR: tmp.dir, AZKEEP_STORE_PROVIDER: "insecure-file" };
      const ctx = tmp.ctx({ AZKEEP_STORE_PROVIDER: "insecure-file" });
      for (let run = 0; run < RUNS_PER_LANE; run++) {
        const acked = await killDuringWrites(writer.path, env);
        // A fresh store object, as the next command would make: it must open, with a whole state.
        const store = createFileStore(ctx);
        const secrets = await store.readSecrets();
        const profile = await store.readProfile();
        const n = secrets.refreshTokens[0]?.lastModified ?? 0;
        // Old or new: the last acknowledged write, or the one that was being written.
        assert.ok(n === acked || n === acked + 1, `counter ${n} after acknowledged write ${acked}`);
        if (n === acked + 1) midWrite++;
        assert.ok(secrets.refreshTokens[0]!.secret.startsWith(`rt-${n}-`), "torn tokens.sealed content");
        // tokens.sealed is written before profile.json: a crash between leaves the profile of an
        // earlier write, never one ahead of the tokens and never a torn one.
        const p = Number(profile.installationId ?? 0);
        assert.ok(
          Number.isInteger(p) && p <= n && p >= acked,
          `profile ${profile.installationId} with tokens ${n}`,
        );
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
    process.stdout.write(
      `# ${LANES * RUNS_PER_LANE} kills in ${Date.now() - started} ms; ${midWrite} landed after a rename and before its acknowledgement\n`,
    );
  });
});
