/**
 * Clouds: register from flags (gaps filled from ARM's metadata/endpoints, as az), the active
 * cloud in config.json, `cloud set` restoring each cloud's last default subscription, and a
 * sign-in against the registered emulator cloud.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createNodeContext, type Context } from "../../src/core/context.js";
import {
  cloudFromFlags,
  registerCloud,
  switchCloud,
  unregisterCloud,
} from "../../src/core/profile/cloud-ops.js";
import { loadCloudSettings, resolveActiveCloud } from "../../src/core/profile/cloud-settings.js";
import { setAccount, showAccount } from "../../src/core/profile/ops.js";
import { login } from "../../src/core/signin.js";
import { createMemoryStore } from "../../src/core/store/memory.js";
import type { Emulator } from "../../src/emulator/index.js";
import { ALICE, DEV_SUB, PROD_SUB, emulator } from "./emulator.js";

describe("clouds", { timeout: 300_000 }, () => {
  let emu: Emulator;
  let dir: string;
  let ctx: Context;
  before(async () => {
    emu = await emulator();
    dir = mkdtempSync(join(tmpdir(), "azkeep-clouds-"));
    ctx = createNodeContext({ env: { AZKEEP_CONFIG_DIR: join(dir, "config"), HOME: dir }, write: () => {} });
  });
  after(async () => {
    await emu?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("register with only the resource manager: the authority and audience come from metadata/endpoints", async () => {
    const cloud = await cloudFromFlags(ctx, {
      name: "Emulator",
      endpointResourceManager: `${emu.urls.http}/`,
    });
    assert.equal(cloud.endpoints.activeDirectory, emu.urls.http);
    assert.equal(cloud.endpoints.activeDirectoryResourceId, "https://management.core.windows.net/");
    await registerCloud(ctx, cloud);
    await assert.rejects(registerCloud(ctx, cloud), /already registered/);
    await assert.rejects(cloudFromFlags(ctx, { name: "bad name!" }), /not a valid cloud name/);
    await assert.rejects(
      cloudFromFlags(ctx, { name: "X", endpointResourceManager: "ftp://x" }),
      /http\(s\) URL/,
    );
  });

  it("cloud set: sign in there, and each cloud gets its last default subscription back", async () => {
    const store = createMemoryStore();
    const aliceIn = async () => {
      const cloud = resolveActiveCloud(ctx, await loadCloudSettings(ctx));
      return login(ctx, store, {
        cloud,
        method: { kind: "password", username: ALICE.upn, password: ALICE.password },
      });
    };
    await switchCloud(ctx, store, "emulator");
    assert.equal((await loadCloudSettings(ctx)).activeCloud, "Emulator");
    const r = await aliceIn();
    assert.ok(r.subscriptions.every((s) => s.cloudName === "Emulator"));
    await setAccount(store, { subscription: PROD_SUB, activeCloud: "Emulator" });
    await switchCloud(ctx, store, "AzureCloud");
    assert.throws(() => showAccount([], { activeCloud: "AzureCloud" }));
    await assert.rejects(unregisterCloud(ctx, "AzureCloud"), /built in/);
    await switchCloud(ctx, store, "Emulator");
    const profile = await store.readProfile();
    assert.equal(showAccount(profile.subscriptions, { activeCloud: "Emulator" }).id, PROD_SUB);
    assert.notEqual(PROD_SUB, DEV_SUB);
    await assert.rejects(unregisterCloud(ctx, "Emulator"), /active cloud/);
    await switchCloud(ctx, store, "AzureCloud");
    await unregisterCloud(ctx, "Emulator");
    await assert.rejects(switchCloud(ctx, store, "Emulator"), /not registered/);
  });
});
