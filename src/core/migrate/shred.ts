/**
 * Shredding a plaintext credential file: overwrite it in place with random bytes, fsync, then
 * unlink it and fsync its folder. Threat: a deleted-but-not-overwritten token cache is still
 * readable from the disk blocks by anyone who later gets the raw device or a backup of it.
 *
 * Limits (said to the user in docs/doctor.md): on SSDs (wear levelling), copy-on-write
 * filesystems (btrfs, ZFS, APFS) and with snapshots or backups, old blocks can survive an
 * overwrite. Shredding is a best effort on top of what matters most: the refresh token no
 * longer sits in a readable file.
 */
import { constants } from "node:fs";
import { lstat, open, unlink } from "node:fs/promises";
import { dirname } from "node:path";
import type { Random } from "../context.js";
import { AzkeepError } from "../errors.js";

const CHUNK = 64 * 1024;

/**
 * Overwrites `path` with random bytes, fsyncs, removes it and fsyncs the folder. Refuses
 * anything that is not a regular file (a symlink would make it overwrite the link's target).
 */
export async function shredFile(path: string, random: Random): Promise<void> {
  const st = await lstat(path);
  if (!st.isFile()) {
    throw new AzkeepError("bad_input", `${path} is not a regular file; it was not shredded.`, {
      hint: `Check what ${path} points to and remove it yourself.`,
    });
  }
  // O_NOFOLLOW: if the file was swapped for a symlink since the lstat, fail instead of following it.
  const fh = await open(path, constants.O_RDWR | constants.O_NOFOLLOW);
  try {
    const { size } = await fh.stat();
    for (let offset = 0; offset < size; offset += CHUNK) {
      const n = Math.min(CHUNK, size - offset);
      await fh.write(random.bytes(n), 0, n, offset);
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  await unlink(path);
  // Make the removal durable. Some filesystems refuse fsync on a folder; the unlink stands.
  try {
    const dir = await open(dirname(path), "r");
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  } catch {
    /* best effort */
  }
}
