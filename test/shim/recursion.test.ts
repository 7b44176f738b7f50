/**
 * The shim never runs itself (issue: with `PATH=<shim>:.:/usr/bin` and an executable `az` in the
 * working folder, `az vm list` made the shim spawn itself without bound, up to the OOM killer).
 *
 * Every case here is fork-prone by nature, so each runs as another uid under `prlimit --nproc`
 * (root ignores RLIMIT_NPROC) and a timeout that kills the process group: a regression fails
 * the test instead of taking the machine down.
 */
import assert from "node:assert/strict";
import {
  chmodSync,
  copyFileSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { canSwitchUser, runAsOtherUser } from "../helpers/other-user.js";
import { publicShipped } from "../helpers/public-copy.js";

/** The shim as shipped, in a folder the other uid can read (the checkout may be private). */
const SHIM_DIR = join(publicShipped(), "shim");

const SHIM = join(SHIM_DIR, "az");
/** Enough for two or three node processes (a node is ~7-11 tasks), never for a runaway chain. */
const NPROC = 40;
const TIMEOUT_MS = 30_000;

const FAKE_AZ = '#!/bin/sh\nprintf "real az:"\nfor a in "$@"; do printf " [%s]" "$a"; done\necho\nexit 7\n';
/** An `az` wrapper that calls `az` back by name: with the shim first on PATH, a loop. */
const WRAPPER_AZ = '#!/bin/sh\nexec az "$@"\n';

describe("the az shim never recurses (as another uid, under a process limit)", { timeout: 180_000 }, () => {
  let root: string;
  let nodeOnly: string;
  before(() => {
    root = mkdtempSync(join(tmpdir(), "azkeep-shim-loop-"));
    chmodSync(root, 0o755);
    nodeOnly = join(root, "node-only");
    mkdirSync(nodeOnly);
    symlinkSync(process.execPath, join(nodeOnly, "node"));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  function folder(name: string, az?: string): string {
    const dir = join(root, name);
    mkdirSync(dir, { recursive: true });
    if (az !== undefined) {
      writeFileSync(join(dir, "az"), az);
      chmodSync(join(dir, "az"), 0o755);
    }
    return dir;
  }

  const shim = (args: string[], PATH: string, cwd: string) =>
    runAsOtherUser(SHIM, args, {
      nproc: NPROC,
      timeoutMs: TIMEOUT_MS,
      env: { PATH, HOME: root, LANG: "C.UTF-8" },
      cwd,
    });

  it("the attack as found: PATH=<shim>:.:/usr/bin and an az in the working folder", async (t) => {
    if (!canSwitchUser(t)) return;
    const work = folder("work", FAKE_AZ);
    const started = Date.now();
    const r = await shim(["vm", "list"], `${SHIM_DIR}:.:/usr/bin:/bin`, work);
    assert.equal(r.signal, null, `killed (${r.signal}): the shim did not end by itself`);
    assert.equal(r.stderr, "");
    assert.equal(r.stdout, "real az: [vm] [list]\n", "the working folder's az, run by its absolute path");
    assert.equal(r.code, 7);
    assert.ok(Date.now() - started < 15_000);
  });

  it("relative and empty PATH entries are taken from the working folder, never looked up again", async (t) => {
    if (!canSwitchUser(t)) return;
    const work = folder("rel");
    folder("rel/sub", FAKE_AZ);
    for (const PATH of [
      `${SHIM_DIR}:sub:${nodeOnly}`,
      `${SHIM_DIR}::${nodeOnly}`,
      `:${SHIM_DIR}:./sub:${nodeOnly}`,
    ]) {
      const cwd = PATH.includes("sub") ? work : join(work, "sub");
      const r = await shim(["group", "list"], PATH, cwd);
      assert.equal(r.signal, null, PATH);
      assert.equal(r.stdout, "real az: [group] [list]\n", PATH);
      assert.equal(r.code, 7, `${PATH}: ${r.stderr}`);
    }
  });

  it("an az that calls az back: one clear error, not a chain", async (t) => {
    if (!canSwitchUser(t)) return;
    const work = folder("wrapper", WRAPPER_AZ);
    const r = await shim(["vm", "list"], `${SHIM_DIR}:.:/usr/bin:/bin`, work);
    assert.equal(r.signal, null, `killed (${r.signal}): the shim did not end by itself`);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "");
    const lines = r.stderr.trimEnd().split("\n");
    assert.equal(lines.length, 2, r.stderr);
    assert.match(
      lines[0]!,
      /^ERROR: 'az vm list' reached azkeep's az shim again from inside .*\/wrapper\/az,/,
    );
    assert.match(lines[1]!, /full path/);
  });

  it("the shim under other names (folder symlink, file symlink, hard link, copies) is skipped", async (t) => {
    if (!canSwitchUser(t)) return;
    const linkedFolder = join(root, "shim-folder-link");
    symlinkSync(SHIM_DIR, linkedFolder);
    const fileLink = folder("file-link");
    symlinkSync(SHIM, join(fileLink, "az"));
    const copy = folder("copy");
    copyFileSync(SHIM, join(copy, "az"));
    chmodSync(join(copy, "az"), 0o755);
    const folderCopy = folder("folder-copy/shim");
    for (const f of ["az", "code-cache.cjs", "package.json"])
      copyFileSync(join(SHIM_DIR, f), join(folderCopy, f));
    chmodSync(join(folderCopy, "az"), 0o755);
    const entries = [linkedFolder, fileLink, copy, folderCopy];
    const hard = folder("hard-link");
    try {
      linkSync(SHIM, join(hard, "az"));
      entries.push(hard);
    } catch {
      // another file system: no hard link possible, nothing to test
    }
    const r = await shim(["vm", "list"], [SHIM_DIR, ...entries, ".", nodeOnly].join(":"), linkedFolder);
    assert.equal(r.signal, null, `killed (${r.signal}): the shim did not end by itself`);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /^ERROR: 'az vm list' is not answered by azkeep's az shim.*no Azure CLI was found further down PATH/,
    );
    assert.equal(r.stderr.trimEnd().split("\n").length, 2, r.stderr);
  });

  it("past other shims on PATH, the real az after them is found", async (t) => {
    if (!canSwitchUser(t)) return;
    const copy = folder("copy-2");
    copyFileSync(SHIM, join(copy, "az"));
    chmodSync(join(copy, "az"), 0o755);
    const real = folder("real-after", FAKE_AZ);
    const r = await shim(["vm", "list"], [SHIM_DIR, copy, SHIM_DIR, real, nodeOnly].join(":"), root);
    assert.equal(r.stdout, "real az: [vm] [list]\n", r.stderr);
    assert.equal(r.code, 7);
  });
});
