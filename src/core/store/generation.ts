/**
 * The store's write generation kept with its key (issue 8 item 8: rollback detection).
 *
 * `tokens.sealed` counts its writes (`Secrets.generation`). Putting back an older copy of
 * `tokens.sealed` + `profile.json` (taken earlier by a program that can read the folder but not
 * the key) would undo a `logout` without a word; the seal alone cannot tell, because the old
 * copy is a genuine seal. So the providers that keep the key outside the folder (keyring,
 * keyutils) also keep the highest generation written, **in the same entry as the key**: one
 * read gives both (the cached `get-access-token` pays no extra keyring call), and the number
 * can never be separated from its key (deleted, migrated, left behind).
 *
 * The entry's payload: the 32-byte key alone (written before azkeep kept a generation, and by
 * `createKey`), or
 *
 * ```
 * offset size field
 *  0     32   the data key
 * 32      4   "AZG1"
 * 36      8   generation, unsigned big-endian
 * ```
 */
import type { KeyWithGeneration } from "./provider.js";

const TAG = Buffer.from("AZG1", "latin1");
export const KEY_LENGTH = 32;
export const PAYLOAD_LENGTH = KEY_LENGTH + TAG.length + 8;

/** key ‖ "AZG1" ‖ generation. */
export function packKey(key: Uint8Array, generation: number): Buffer {
  if (key.length !== KEY_LENGTH || !Number.isSafeInteger(generation) || generation < 0)
    throw new RangeError("packKey: bad key length or generation");
  const out = Buffer.alloc(PAYLOAD_LENGTH);
  Buffer.from(key).copy(out, 0);
  TAG.copy(out, KEY_LENGTH);
  out.writeBigUInt64BE(BigInt(generation), KEY_LENGTH + TAG.length);
  return out;
}

/**
 * Splits an entry's payload. A bare key has no generation; anything that is neither a bare key
 * nor a tagged payload is returned whole, so that it fails as a wrong key (never read as one).
 */
export function unpackKey(payload: Uint8Array): KeyWithGeneration {
  const b = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  if (b.length === PAYLOAD_LENGTH && b.subarray(KEY_LENGTH, KEY_LENGTH + TAG.length).equals(TAG)) {
    const generation = b.readBigUInt64BE(KEY_LENGTH + TAG.length);
    return {
      key: new Uint8Array(b.subarray(0, KEY_LENGTH)),
      ...(generation <= BigInt(Number.MAX_SAFE_INTEGER) ? { generation: Number(generation) } : {}),
    };
  }
  return { key: new Uint8Array(b) };
}
