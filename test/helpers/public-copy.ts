/**
 * What ships (`bin/`, `dist/`, `shim/`, `package.json` and the production `node_modules`),
 * copied once per test process into a folder every uid can read.
 *
 * Tests that run azkeep as another uid (`setpriv`) cannot use the checkout itself when it sits
 * in a private folder — a `mktemp -d` or a 0700 home — which is exactly where a fresh clone may
 * be. They run this copy instead; it is the same build, so they still test what ships.
 */
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const REPO = fileURLToPath(new URL("../../", import.meta.url));

let copy: string | undefined;

/** World-readable files, enterable folders: modes only, owners stay. */
function openUp(path: string): void {
  const st = statSync(path);
  if (st.isDirectory()) {
    chmodSync(path, 0o755);
    for (const n of readdirSync(path)) openUp(join(path, n));
  } else chmodSync(path, st.mode & 0o111 ? 0o755 : 0o644);
}

/** The folder holding the readable copy (made on first use, removed when the process exits). */
export function publicShipped(): string {
  if (copy !== undefined) return copy;
  const root = mkdtempSync(join(tmpdir(), "azkeep-shipped-"));
  for (const part of ["bin", "dist", "shim", "package.json"])
    cpSync(join(REPO, part), join(root, part), { recursive: true });
  // Production dependencies only, as package-lock.json names them (dev ones are not shipped).
  const lock = JSON.parse(readFileSync(join(REPO, "package-lock.json"), "utf8")) as {
    packages: Record<string, { dev?: boolean }>;
  };
  for (const [path, meta] of Object.entries(lock.packages)) {
    if (!path.startsWith("node_modules/") || meta.dev === true) continue;
    if (existsSync(join(REPO, path))) cpSync(join(REPO, path), join(root, path), { recursive: true });
  }
  openUp(root);
  process.on("exit", () => rmSync(root, { recursive: true, force: true }));
  copy = root;
  return root;
}
