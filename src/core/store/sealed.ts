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
 * Format version 2 (written since 0.2) adds one byte after the nonce: the key provider that
 * holds the key (`PROVIDER_CODES`), so that config.json cannot re-name the provider (a
 * passphrase store presented as a keyutils one "lost after a reboot", then replaced):
 *
 * ```
 * 33       1    key provider (1 keyring, 2 keyutils, 3 passphrase, 4 insecure-file, 5 memory)
 * 34       n    ciphertext …
 * ```
 *
 * The header bytes (33 or 34) are the GCM additional authenticated data, so changing any byte
 * of the file — header, ciphertext or tag — makes opening fail (threat: tampering, truncation,
 * a half-written file). Version 1 files are read as before. Only `node:crypto` is used.
 */
import { createCipheriv, createDecipheriv, createHmac } from "node:crypto";

export const MAGIC = Buffer.from("AZKS", "latin1");
/** The version `seal` writes; `parseHeader` reads 1 and 2. */
export const FORMAT_VERSION = 2;
export const KEY_BYTES = 32;
export const KID_BYTES = 16;
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
/** The header of a version 1 file (no provider byte). */
export const V1_HEADER_BYTES = MAGIC.length + 1 + KID_BYTES + NONCE_BYTES;
export const HEADER_BYTES = V1_HEADER_BYTES + 1;

/** The provider byte of format version 2. */
export const PROVIDER_CODES = ["keyring", "keyutils", "passphrase", "insecure-file", "memory"] as const;

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
  /** The key provider named in the header (version 2); undefined in a version 1 file. */
  provider?: string;
  /** The header's length: 33 (version 1) or 34. */
  bytes: number;
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
  if (version !== 1 && version !== 2)
    throw new SealError(
      "unknown_version",
      `the file has format version ${version}; this azkeep reads versions 1 and 2`,
    );
  const bytes = version === 1 ? V1_HEADER_BYTES : HEADER_BYTES;
  if (buf.length < bytes + TAG_BYTES) throw new SealError("truncated", "the file is truncated");
  const header: SealHeader = {
    version,
    kid: buf.subarray(MAGIC.length + 1, MAGIC.length + 1 + KID_BYTES),
    nonce: buf.subarray(MAGIC.length + 1 + KID_BYTES, V1_HEADER_BYTES),
    bytes,
  };
  if (version === 2) {
    const provider = PROVIDER_CODES[buf[V1_HEADER_BYTES]! - 1];
    // An unknown code is left to the GCM check (the header is authenticated): it fails there.
    header.provider = provider ?? "unknown";
  }
  return header;
}

/**
 * Seals `plaintext` under `key`; `nonce` must be fresh random bytes for every call. With
 * `provider` the file is version 2 and names it; without, version 1.
 */
export function seal(
  plaintext: Uint8Array,
  key: Uint8Array,
  kid: Uint8Array,
  nonce: Uint8Array,
  provider?: (typeof PROVIDER_CODES)[number],
): Buffer {
  if (key.length !== KEY_BYTES || kid.length !== KID_BYTES || nonce.length !== NONCE_BYTES)
    throw new RangeError("seal: bad key, key id or nonce length");
  const header =
    provider === undefined
      ? Buffer.concat([MAGIC, Buffer.from([1]), kid, nonce])
      : Buffer.concat([
          MAGIC,
          Buffer.from([2]),
          kid,
          nonce,
          Buffer.from([PROVIDER_CODES.indexOf(provider) + 1]),
        ]);
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
  // A provider entry that is not a 32-byte key (garbled, or another format) is a wrong key.
  if (key.length !== KEY_BYTES)
    throw new SealError("auth_failed", "the file cannot be opened with the key the provider holds");
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const decipher = createDecipheriv("aes-256-gcm", key, header.nonce, { authTagLength: TAG_BYTES });
  decipher.setAAD(buf.subarray(0, header.bytes));
  decipher.setAuthTag(buf.subarray(buf.length - TAG_BYTES));
  try {
    return Buffer.concat([
      decipher.update(buf.subarray(header.bytes, buf.length - TAG_BYTES)),
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
