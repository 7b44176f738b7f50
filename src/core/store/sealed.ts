/**
 * The `tokens.sealed` format: one AES-256-GCM blob with an authenticated header.
 *
 * ```
 * offset  size  field
 *  0       4    magic "AZKS"
 *  4       1    format version (1)
 *  5      16    key id: names the data key in its provider (random, not secret)
 * 21      12    nonce (random per write)
 * 33       n    ciphertext of the UTF-8 JSON of `Secrets`
 * 33+n    16    GCM tag
 * ```
 *
 * The 33 header bytes are the GCM additional authenticated data, so changing any byte of the
 * file — header, ciphertext or tag — makes opening fail (threat: tampering, truncation, a
 * half-written file). Only `node:crypto` is used: nothing heavy on the hot path.
 */
import { createCipheriv, createDecipheriv, createHmac } from "node:crypto";

export const MAGIC = Buffer.from("AZKS", "latin1");
export const FORMAT_VERSION = 1;
export const KEY_BYTES = 32;
export const KID_BYTES = 16;
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
export const HEADER_BYTES = MAGIC.length + 1 + KID_BYTES + NONCE_BYTES;

export type SealFailure =
  /** Not an azkeep sealed store at all (wrong magic). */
  | "not_a_store"
  /** Shorter than a header and a tag. */
  | "truncated"
  /** Written by another (newer) format version. */
  | "unknown_version"
  /** The key id in the header is not one azkeep knows, or its key is missing. */
  | "unknown_key"
  /** GCM authentication failed: the bytes were changed, or the key is wrong. */
  | "auth_failed"
  /** Authenticated, but the content is not a secrets document (a bug or a foreign writer). */
  | "bad_content";

/** Internal: why a sealed blob could not be opened. The store turns it into `store_damaged`. */
export class SealError extends Error {
  readonly reason: SealFailure;
  constructor(reason: SealFailure, message: string) {
    super(message);
    this.name = "SealError";
    this.reason = reason;
  }
}

export interface SealHeader {
  version: number;
  kid: Buffer;
  nonce: Buffer;
}

export function kidHex(kid: Uint8Array): string {
  return Buffer.from(kid).toString("hex");
}

/** Reads and checks the header (not yet authenticated: that happens in `unseal`). */
export function parseHeader(data: Uint8Array): SealHeader {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (buf.length < MAGIC.length || !buf.subarray(0, MAGIC.length).equals(MAGIC)) {
    if (buf.length < MAGIC.length && MAGIC.subarray(0, buf.length).equals(buf))
      throw new SealError("truncated", "the file is truncated");
    throw new SealError("not_a_store", "the file is not an azkeep sealed store");
  }
  if (buf.length < MAGIC.length + 1) throw new SealError("truncated", "the file is truncated");
  const version = buf[MAGIC.length]!;
  if (version !== FORMAT_VERSION)
    throw new SealError(
      "unknown_version",
      `the file has format version ${version}; this azkeep reads version ${FORMAT_VERSION}`,
    );
  if (buf.length < HEADER_BYTES + TAG_BYTES) throw new SealError("truncated", "the file is truncated");
  return {
    version,
    kid: buf.subarray(MAGIC.length + 1, MAGIC.length + 1 + KID_BYTES),
    nonce: buf.subarray(MAGIC.length + 1 + KID_BYTES, HEADER_BYTES),
  };
}

/** Seals `plaintext` under `key`; `nonce` must be fresh random bytes for every call. */
export function seal(plaintext: Uint8Array, key: Uint8Array, kid: Uint8Array, nonce: Uint8Array): Buffer {
  if (key.length !== KEY_BYTES || kid.length !== KID_BYTES || nonce.length !== NONCE_BYTES)
    throw new RangeError("seal: bad key, key id or nonce length");
  const header = Buffer.concat([MAGIC, Buffer.from([FORMAT_VERSION]), kid, nonce]);
  const cipher = createCipheriv("aes-256-gcm", key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(header);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([header, body, cipher.getAuthTag()]);
}

/**
 * Opens a sealed blob. `keyFor(kid)` returns the key for a key id, or undefined when it is
 * unknown or missing. Throws `SealError` on any damage; never returns partial content.
 */
export function unseal(data: Uint8Array, keyFor: (kid: Buffer) => Uint8Array | undefined): Buffer {
  const header = parseHeader(data);
  const key = keyFor(header.kid);
  if (!key)
    throw new SealError(
      "unknown_key",
      `the file is sealed with key ${kidHex(header.kid)}, which is not available`,
    );
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const decipher = createDecipheriv("aes-256-gcm", key, header.nonce, { authTagLength: TAG_BYTES });
  decipher.setAAD(buf.subarray(0, HEADER_BYTES));
  decipher.setAuthTag(buf.subarray(buf.length - TAG_BYTES));
  try {
    return Buffer.concat([
      decipher.update(buf.subarray(HEADER_BYTES, buf.length - TAG_BYTES)),
      decipher.final(),
    ]);
  } catch {
    throw new SealError(
      "auth_failed",
      "the file failed its integrity check (changed, truncated or sealed with another key)",
    );
  }
}

/**
 * A key check value: lets azkeep tell "wrong passphrase" from "damaged file" without trying to
 * decrypt. A PRF output of the key: it reveals nothing usable about the key itself.
 */
export function keyCheckValue(key: Uint8Array): string {
  return createHmac("sha256", key)
    .update("azkeep key check v1")
    .digest()
    .subarray(0, 16)
    .toString("base64url");
}
