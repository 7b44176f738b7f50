/**
 * Small filesystem helpers for the doctor: what a file is, its mode, and whether other local
 * users can read or write it. Nothing here follows a path the user did not point us at.
 */
import { readFile, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Finding } from "./types.js";

export interface FileInfo {
  path: string;
  /** `0600`-style octal permission bits. */
  mode: string;
  size: number;
  isFile: boolean;
  isDirectory: boolean;
  /** Group or others may read it (threat: another local user copies the credential). */
  readableByOthers: boolean;
  /** Group or others may write it (threat: another local user plants content the tool trusts). */
  writableByOthers: boolean;
}

/** `stat` (following links, as the tools do) or undefined when the path does not exist. */
export async function fileInfo(path: string): Promise<FileInfo | undefined> {
  try {
    const st = await stat(path);
    const bits = st.mode & 0o777;
    return {
      path,
      mode: "0" + bits.toString(8).padStart(3, "0"),
      size: st.size,
      isFile: st.isFile(),
      isDirectory: st.isDirectory(),
      readableByOthers: (bits & 0o044) !== 0,
      writableByOthers: (bits & 0o022) !== 0,
    };
  } catch {
    return undefined;
  }
}

/** Reads a small text file; undefined when it cannot be read (the caller reports that). */
export async function readText(path: string, maxBytes = 16 * 1024 * 1024): Promise<string | undefined> {
  try {
    const info = await stat(path);
    if (!info.isFile() || info.size > maxBytes) return undefined;
    return await readFile(path, "utf8");
  } catch {
    return undefined;
  }
}

/** Reads a file's raw bytes (for SQLite databases); undefined when it cannot be read. */
export async function readBytes(path: string, maxBytes = 64 * 1024 * 1024): Promise<Buffer | undefined> {
  try {
    const info = await stat(path);
    if (!info.isFile() || info.size > maxBytes) return undefined;
    return await readFile(path);
  } catch {
    return undefined;
  }
}

/** Names in `dir` matching `re`, sorted; empty when the folder does not exist. */
export async function listMatching(dir: string, re: RegExp): Promise<string[]> {
  try {
    return (await readdir(dir))
      .filter((n) => re.test(n))
      .sort()
      .map((n) => join(dir, n));
  } catch {
    return [];
  }
}

/** Sub-folders of `dir`, sorted; empty when it does not exist. */
export async function listDirs(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    return entries
      .filter((e) => e.isDirectory())
      .map((e) => join(dir, e.name))
      .sort();
  } catch {
    return [];
  }
}

/** Quotes a path for a shell command line when it needs it. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9._/@%+=:,~-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * A finding about the file `info`. A file other local users can read says so, and its fix
 * starts with `chmod 600` (threat: another user copies the credential before the fix is run),
 * unless `chmodFirst` is false.
 */
export function fileFinding(
  tool: string,
  info: FileInfo,
  holds: string,
  risk: Finding["risk"],
  fix: string,
  options: { chmodFirst?: boolean } = {},
): Finding {
  const open = info.readableByOthers;
  return {
    tool,
    path: info.path,
    holds: open ? `${holds}; readable by other users` : holds,
    risk,
    mode: info.mode,
    readableByOthers: open,
    fix: open && options.chmodFirst !== false ? `chmod 600 ${shellQuote(info.path)} && ${fix}` : fix,
  };
}
