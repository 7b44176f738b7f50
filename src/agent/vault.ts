/**
 * The agent's vault: the one process that unseals the store and holds it unlocked. It is a
 * child of the agent's front (`server.ts`), talks to it over the IPC channel only, makes itself
 * non-dumpable before it reads anything, and is ended (SIGKILL) on `lock`, `stop` and
 * idle/max expiry, so no refresh token, secret, key or passphrase outlives the unlock.
 *
 * It runs the token policy (`core/tokens/policy.ts`: cache, refresh margin, retries) on the
 * sealed store, with the store's on-disk semantics unchanged (lock, re-read, atomic write), so
 * a vault killed mid-refresh loses nothing and processes outside the agent stay consistent.
 * On top: identical concurrent requests share one promise (single flight inside the agent),
 * and the unsealed files are kept in memory until they change on disk (stat: size, mtime, inode).
 */
import { randomBytes } from "node:crypto";
import type { Socket } from "node:net";
import { join } from "node:path";
import { createNodeContext, type Context } from "../core/context.js";
import { AzkeepError } from "../core/errors.js";
import { findSubscription } from "../core/profile/accounts.js";
import { listAccounts, logout, setAccount } from "../core/profile/ops.js";
import type { Profile } from "../core/profile/types.js";
import { fileSignature } from "../core/store/files.js";
import { PROFILE_FILE, SEALED_FILE, openStore, type Secrets, type Store } from "../core/store/index.js";
import { cloudForRest, openTokenDeps } from "../core/tokens/deps.js";
import { applySignIn, type SignInRecord } from "../core/signin.js";
import { withCloudName } from "../core/profile/accounts.js";
import { acquireToken, type TokenRequest } from "../core/tokens/policy.js";
import { checkSubscriptionOrTenant } from "../core/tokens/az-shape.js";
import type { ResourceType } from "../core/clouds.js";
import { makeNonDumpable } from "./peer.js";
import { deriveReleaseKeys, savePolicy, validatePolicy, type Policy } from "./policy.js";
import { FRAME_TIMEOUT_MS, LineReader, encodeFrame, type AgentErrorBody, type WriteOp } from "./protocol.js";
import type { VaultCall, VaultReply } from "./server.js";

const nonDumpable = makeNonDumpable();

function send(m: VaultReply): void {
  process.send?.(m);
}

function errBody(e: unknown): AgentErrorBody {
  if (e instanceof AzkeepError)
    return { code: e.code, message: e.message, ...(e.hint ? { hint: e.hint } : {}) };
  if (e instanceof Error && e.name === "AbortError") return { code: "cancelled", message: "Interrupted." };
  return { code: "internal", message: e instanceof Error ? e.message : String(e) };
}

function signature(path: string): string {
  return fileSignature(path) ?? "missing";
}

/** The store, with its unsealed contents kept until the files change on disk. */
function heldStore(inner: Store): Store {
  const profileFile = join(inner.configDir, PROFILE_FILE);
  const sealedFile = join(inner.configDir, SEALED_FILE);
  let profile: { sig: string; value: Promise<Profile> } | undefined;
  let secrets: { sig: string; value: Promise<Secrets> } | undefined;
  return {
    configDir: inner.configDir,
    readProfile() {
      const sig = signature(profileFile);
      if (profile?.sig !== sig) {
        const value = inner.readProfile();
        value.catch(() => (profile = undefined));
        profile = { sig, value };
      }
      return profile.value.then((p) => structuredClone(p));
    },
    readSecrets() {
      const sig = signature(sealedFile);
      if (secrets?.sig !== sig) {
        const value = inner.readSecrets();
        value.catch(() => (secrets = undefined));
        secrets = { sig, value };
      }
      return secrets.value;
    },
    async update(change) {
      try {
        return await inner.update(change);
      } finally {
        profile = secrets = undefined;
      }
    },
    status: () => inner.status(),
    // config.json is checked against the seal on every read (it steers where credentials go).
    ...(inner.readSettings ? { readSettings: () => inner.readSettings!() } : {}),
    ...(inner.updateSettings
      ? {
          async updateSettings(change) {
            try {
              return await inner.updateSettings!(change);
            } finally {
              profile = secrets = undefined;
            }
          },
        }
      : {}),
  };
}

let ctx: Context;
let store: Store;
let deps: Awaited<ReturnType<typeof openTokenDeps>>;
const inFlight = new Map<string, Promise<unknown>>();

async function open(passphrase?: string): Promise<void> {
  let asked = false;
  const env = { ...process.env };
  ctx = createNodeContext({ env, onlyShowErrors: true });
  if (passphrase !== undefined) {
    ctx = {
      ...ctx,
      prompter: {
        interactive: true,
        ask: () => {
          // A wrong passphrase: the provider asks again; the person must run unlock again.
          if (asked)
            return Promise.reject(
              new AzkeepError("store_unavailable", "Wrong passphrase.", {
                hint: "Run `azkeep agent unlock` again.",
              }),
            );
          asked = true;
          return Promise.resolve(passphrase);
        },
        readStdin: () => Promise.reject(new Error("no stdin in the agent")),
      },
    };
  }
  store = heldStore(await openStore(ctx));
  // The same store for the cloud settings: one key, one passphrase.
  deps = await openTokenDeps(ctx, undefined, store);
  // Unseal now: a wrong passphrase or a missing key fails the unlock, not the first request.
  await Promise.all([store.readSecrets(), store.readProfile()]);
}

/** The release policy's MAC keys, from the release secret sealed in the store (created once). */
async function releaseKeys(): Promise<{ log: string; policy: string; policyMac?: string }> {
  let release = (await store.readSecrets()).release;
  if (!release?.root)
    release = await store.update((s) => {
      s.secrets.release ??= { root: randomBytes(32).toString("base64") };
      return { ...s.secrets.release };
    });
  const keys = deriveReleaseKeys(Buffer.from(release.root, "base64"));
  return {
    log: keys.log.toString("base64"),
    policy: keys.policy.toString("base64"),
    ...(release.policy ? { policyMac: release.policy } : {}),
  };
}

/**
 * Records the MAC of the one policy file the agent accepts (or `NO_POLICY_MARK`), inside the
 * seal: a policy.json with another MAC, an older copy azkeep wrote included, is then refused.
 */
async function markPolicy(mac: unknown): Promise<null> {
  if (typeof mac !== "string" || !mac) throw new AzkeepError("bad_input", "The policy mark is missing.");
  await store.update((s) => {
    if (s.secrets.release) s.secrets.release.policy = mac;
  });
  return null;
}

/**
 * Writes a changed policy (the front's gate has the person's *Allow*): policy.json with its MAC
 * under the key from the sealed release secret, and that MAC sealed as the mark, under the
 * store lock, before the new file takes the old one's place (a failed seal leaves the old file).
 */
async function writePolicy(value: unknown): Promise<{ mac: string }> {
  const errs = validatePolicy(value);
  if (errs.length) throw new AzkeepError("bad_input", `The policy is not valid: ${errs[0]}.`);
  const root = (await store.readSecrets()).release?.root;
  if (!root)
    throw new AzkeepError("store_unavailable", "The store has no release secret yet.", {
      hint: "Run `azkeep agent lock && azkeep agent unlock`.",
    });
  const key = deriveReleaseKeys(Buffer.from(root, "base64")).policy;
  const mac = await savePolicy(store.configDir, key, value as Policy, async (m) => {
    await store.update((s) => {
      if (s.secrets.release?.root !== root)
        throw new AzkeepError("store_unavailable", "The store's release secret changed meanwhile.", {
          hint: "Run the command again.",
        });
      s.secrets.release.policy = m;
    });
  });
  return { mac };
}

async function identities(): Promise<string[]> {
  const p = await store.readProfile();
  return [...new Set(p.subscriptions.map((s) => s.user.name))].sort();
}

function str(v: unknown): string | undefined {
  return typeof v === "string" && v ? v : undefined;
}

async function tokenFor(q: Record<string, unknown>): Promise<unknown> {
  const scopes = Array.isArray(q.scopes) ? q.scopes.filter((s): s is string => typeof s === "string") : [];
  const req: TokenRequest = {
    ...(scopes.length ? { scopes: scopes.flatMap((s) => s.split(/\s+/)).filter(Boolean) } : {}),
    ...(str(q.resource) ? { resource: str(q.resource)! } : {}),
    ...(str(q.resourceType) ? { resourceType: str(q.resourceType) as ResourceType } : {}),
    ...(str(q.subscription) ? { subscription: str(q.subscription)! } : {}),
    ...(str(q.tenant) ? { tenant: str(q.tenant)! } : {}),
    ...(str(q.claims) ? { claims: str(q.claims)! } : {}),
  };
  checkSubscriptionOrTenant(req.subscription, req.tenant);
  // Single flight inside the agent: identical requests in the air share one answer. A claims
  // challenge or `--force-refresh` asks for a new token of its own.
  const key = JSON.stringify(req);
  const shared = !req.claims && q.forceRefresh !== true;
  if (shared) {
    const running = inFlight.get(key);
    if (running) return running;
  }
  const p = acquireToken(ctx, deps, {
    ...req,
    ...(q.forceRefresh === true ? { forceRefresh: true } : {}),
  }).finally(() => shared && inFlight.delete(key));
  if (shared) inFlight.set(key, p);
  return p;
}

/** A sign-in record from a client, checked for shape (the client is the user's, but may be buggy). */
function signInRecord(v: unknown): SignInRecord {
  const r = v as Partial<SignInRecord> | undefined;
  const ok =
    r &&
    typeof r === "object" &&
    typeof r.cloud === "string" &&
    typeof r.now === "number" &&
    r.user &&
    typeof r.user.name === "string" &&
    typeof r.user.type === "string" &&
    Array.isArray(r.entries) &&
    r.entries.every((e) => e && typeof e.id === "string" && e.environmentName === r.cloud) &&
    Array.isArray(r.accessTokens) &&
    r.accessTokens.every((t) => t && typeof t.secret === "string" && t.cloud === r.cloud) &&
    (r.credential === undefined ||
      ((r.credential.kind === "refresh-token" || r.credential.kind === "service-principal") &&
        r.credential.entry &&
        r.credential.entry.cloud === r.cloud));
  if (!ok) {
    throw new AzkeepError("bad_input", "The agent got a sign-in it cannot read.", {
      hint: "Update azkeep, or restart the agent: `azkeep agent stop && azkeep agent start`.",
    });
  }
  return r as SignInRecord;
}

async function write(w: WriteOp): Promise<unknown> {
  const activeCloud = await deps.activeCloud();
  switch (w.kind) {
    case "set-default":
      return setAccount(store, {
        subscription: w.subscription,
        activeCloud,
        ...(w.username ? { username: w.username } : {}),
      });
    case "signout":
      return logout(ctx, store, { activeCloud, ...(w.usernames?.[0] ? { username: w.usernames[0] } : {}) });
    case "signin": {
      const record = signInRecord(w.record);
      // The client signed in against the cloud this vault verified (`cloud`); a record for
      // another cloud is refused, so that nothing a plain file says picks where it is bound.
      if (record.cloud !== activeCloud) {
        throw new AzkeepError(
          "config",
          `The sign-in is for cloud '${record.cloud}', but the agent's active cloud is '${activeCloud}'.`,
          { hint: "Run `azkeep cloud set --name <cloud>` and sign in again." },
        );
      }
      const added = await store.update((state) => applySignIn(state, record));
      return { subscriptions: added.map(withCloudName) };
    }
    default:
      throw new AzkeepError(
        "bad_input",
        `The agent cannot make the write '${(w as { kind: string }).kind}'.`,
        {
          hint: "Update azkeep, or restart the agent: `azkeep agent stop && azkeep agent start`.",
        },
      );
  }
}

async function call(c: VaultCall): Promise<unknown> {
  switch (c.op) {
    case "token":
      return tokenFor((c.body.request ?? {}) as Record<string, unknown>);
    case "account": {
      const [profile, activeCloud] = await Promise.all([store.readProfile(), deps.activeCloud()]);
      return findSubscription(profile, activeCloud, str(c.body.subscription));
    }
    case "accounts": {
      const [profile, activeCloud] = await Promise.all([store.readProfile(), deps.activeCloud()]);
      return listAccounts(ctx, profile.subscriptions, {
        activeCloud,
        ...(c.body.all === true ? { all: true } : {}),
      });
    }
    case "identities":
      return identities();
    case "cloud":
      // The active cloud, config.json checked against the seal: where a sign-in may go.
      return cloudForRest(ctx, store);
    case "write":
      return write(c.body.write as WriteOp);
    case "policy-mark":
      return markPolicy(c.body.mac);
    case "policy-write":
      return writePolicy(c.body.policy);
  }
}

/** Reads the one passphrase frame from the client's socket, unlocks, answers the client. */
function unlockFrom(socket: Socket): void {
  const reader = new LineReader(64 * 1024);
  const timer = setTimeout(() => socket.destroy(), 5 * 60_000 + FRAME_TIMEOUT_MS);
  const fail = (e: unknown) => {
    const error = errBody(e);
    socket.end(encodeFrame({ id: 0, ok: false, error }));
    send({ event: "unlock-failed", error });
  };
  let done = false;
  socket.on("error", () => {});
  socket.on("close", () => {
    clearTimeout(timer);
    if (!done) fail(new AzkeepError("cancelled", "The unlock was abandoned."));
  });
  socket.on("data", (chunk: Buffer) => {
    if (done) return;
    const lines = reader.push(chunk);
    if (lines === "oversized") {
      done = true;
      return fail(new AzkeepError("bad_input", "The passphrase frame is too large."));
    }
    const line = lines[0];
    if (line === undefined) return;
    done = true;
    clearTimeout(timer);
    chunk.fill(0);
    let passphrase: string | undefined;
    try {
      const v = JSON.parse(line) as { passphrase?: unknown };
      passphrase = typeof v.passphrase === "string" ? v.passphrase : undefined;
    } catch {
      passphrase = undefined;
    }
    if (!passphrase) return fail(new AzkeepError("bad_input", "The unlock sent no passphrase."));
    // One handler for every failure, the store's own writes after the unlock included: an
    // error there must reach the person as an answer, not end the vault with no word.
    open(passphrase)
      .then(async () => {
        const ids = await identities();
        send({ event: "ready", identities: ids, release: await releaseKeys() });
        socket.end(
          encodeFrame({ id: 0, ok: true, result: { locked: false, identities: ids, vaultPid: process.pid } }),
        );
      })
      .catch((e: unknown) => fail(e));
  });
  socket.resume();
}

process.on("message", (m: { op?: string; id?: number; body?: Record<string, unknown> }, handle?: unknown) => {
  if (m.op === "open") {
    open()
      .then(async () =>
        send({ event: "ready", identities: await identities(), release: await releaseKeys() }),
      )
      .catch((e: unknown) => send({ event: "unlock-failed", error: errBody(e) }));
    return;
  }
  if (m.op === "passphrase" && handle) {
    unlockFrom(handle as Socket);
    return;
  }
  const c = m as unknown as VaultCall;
  call(c).then(
    (result) => send({ id: c.id, ok: true, result: result ?? null }),
    (e: unknown) => send({ id: c.id, ok: false, error: errBody(e) }),
  );
});
// The front went away (it was killed): nothing may outlive it.
process.on("disconnect", () => process.exit(0));
void nonDumpable;
