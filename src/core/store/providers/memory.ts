/**
 * The `memory` key provider: keys live only in this process. With it `openStore` keeps the
 * whole store in memory (nothing on disk, for CI jobs); the file store also uses it as the
 * fake provider in unit tests.
 */
import type { ProviderContext, KeyProvider, KeyRecord } from "../provider.js";

const keys = new Map<string, Uint8Array>();

export function createMemoryProvider(pctx: Pick<ProviderContext, "ctx">): KeyProvider {
  return {
    name: "memory",
    async createKey(kid) {
      const key = pctx.ctx.random.bytes(32);
      keys.set(kid.toString("hex"), key);
      return { key };
    },
    async getKey(record: KeyRecord) {
      return keys.get(record.keyId);
    },
    async deleteKey(record) {
      return keys.delete(record.keyId);
    },
    describe: () => "the key exists only in this process's memory; nothing is kept after it ends",
  };
}
