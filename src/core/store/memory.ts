/**
 * A Store that keeps everything in memory: the `memory` provider for CI jobs (nothing on disk)
 * and the fake the library's unit tests use.
 */
import { emptyProfile } from "../profile/types.js";
import { emptySecrets, type Store, type StoreState } from "./types.js";

export function createMemoryStore(initial?: Partial<StoreState>): Store {
  let state: StoreState = structuredClone({
    profile: initial?.profile ?? emptyProfile(),
    secrets: initial?.secrets ?? emptySecrets(),
  });
  let queue: Promise<unknown> = Promise.resolve();
  return {
    configDir: ":memory:",
    readProfile: async () => structuredClone(state.profile),
    readSecrets: async () => structuredClone(state.secrets),
    update<T>(change: (s: StoreState) => T | Promise<T>): Promise<T> {
      const next = queue.then(async () => {
        const draft = structuredClone(state);
        const result = await change(draft);
        state = draft;
        return result;
      });
      queue = next.catch(() => {});
      return next;
    },
    status: async () => ({ provider: "memory", configDir: ":memory:", files: [], warnings: [] }),
  };
}
