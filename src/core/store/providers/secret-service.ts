/**
 * A small pure-JavaScript Secret Service client that READS one item over the D-Bus session bus:
 * the `keyring` provider's hot path on Linux, instead of loading @napi-rs/keyring (~10 ms) and
 * letting it open its own session (~13 ms).
 *
 * One connection, two round trips after authentication: `Hello`, `Service.OpenSession("plain")`
 * and `Service.SearchItems(attributes)` are sent together; then `Item.GetSecret(session)` on the
 * one unlocked item found. Everything is bounded by one timeout, every length and offset in a
 * reply is checked, and a reply that does not parse is an error, never a hang or a guess.
 *
 * It answers only what it can decide for sure:
 * - `found`: exactly one unlocked item matches and its secret came back;
 * - `missing`: the service answered that no item (locked or not) matches;
 * - `undecided`: the service is alive but something needs more than this client does (a locked
 *   item or collection to unlock, a prompt, several matching items, an error reply it does not
 *   know): the caller then asks the native module, which can unlock and prompt;
 * - `unavailable`: no bus, no service, a timeout or a reply that does not parse.
 *
 * The "plain" algorithm: the secret travels over the session bus unencrypted, as with libsecret's
 * own clients when they choose it. The session bus is a per-user socket (mode 0700 folder /
 * credentials-checked); anyone who can read that traffic can already ask the keyring directly.
 */
import type { Env } from "../../context.js";
import { call, converse, encodeMessage, secretServiceDown, type Message } from "./dbus-wire.js";

// The wire code is shared with the probe; re-exported for the tests, which play the bus.
export {
  WireError,
  Writer,
  encodeMessage,
  parseMessages,
  type Message,
  type OutMessage,
} from "./dbus-wire.js";

export type SecretLookup =
  | { kind: "found"; secret: Uint8Array }
  | { kind: "missing" }
  | { kind: "undecided"; reason: string }
  | { kind: "unavailable"; reason: string };

const SECRETS = "org.freedesktop.secrets";
const SERVICE_PATH = "/org/freedesktop/secrets";

// ---------------------------------------------------------------------------------------------
// The lookup.

const isPath = (v: unknown): v is string => typeof v === "string" && v.startsWith("/");

function classifyError(name: string, what: string): SecretLookup {
  const down = secretServiceDown(name);
  if (down) return { kind: "unavailable", reason: down };
  // Alive, but saying something this client does not handle (IsLocked, NotSupported, …).
  return { kind: "undecided", reason: `${what} answered ${name || "an error"}` };
}

/**
 * Looks up the one item whose attributes include `attributes` and returns its secret, within
 * `timeoutMs` overall. Never throws.
 */
export function lookupSecret(
  env: Env,
  attributes: Record<string, string>,
  timeoutMs: number,
): Promise<SecretLookup> {
  let session: string | undefined;
  let found: { unlocked: string[]; locked: string[] } | undefined;
  const garbled = (detail: string): SecretLookup => ({
    kind: "unavailable",
    reason: `the D-Bus session bus sent a reply azkeep cannot read (${detail})`,
  });
  const getSecret = (send: (b: Buffer) => void): SecretLookup | undefined => {
    if (!session || !found) return undefined;
    if (found.locked.length > 0) return { kind: "undecided", reason: "the item is locked" };
    if (found.unlocked.length === 0) return { kind: "missing" };
    if (found.unlocked.length > 1)
      return { kind: "undecided", reason: `${found.unlocked.length} items match` };
    const s = session;
    send(
      encodeMessage({
        serial: 4,
        dest: SECRETS,
        path: found.unlocked[0]!,
        iface: "org.freedesktop.Secret.Item",
        member: "GetSecret",
        signature: "o",
        body: (w) => w.str(s),
      }),
    );
    return undefined;
  };
  return converse<SecretLookup>(env, timeoutMs, {
    opening: () => [
      call(1, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "Hello"),
      encodeMessage({
        serial: 2,
        dest: SECRETS,
        path: SERVICE_PATH,
        iface: "org.freedesktop.Secret.Service",
        member: "OpenSession",
        signature: "sv",
        body: (w) => {
          w.str("plain");
          w.sig("s");
          w.str("");
        },
      }),
      encodeMessage({
        serial: 3,
        dest: SECRETS,
        path: SERVICE_PATH,
        iface: "org.freedesktop.Secret.Service",
        member: "SearchItems",
        signature: "a{ss}",
        body: (w) => {
          const lenAt = w.pos;
          w.u32(0);
          w.align(8);
          const start = w.pos;
          for (const [k, v] of Object.entries(attributes)) {
            w.align(8);
            w.str(k);
            w.str(v);
          }
          w.patchU32(lenAt, w.pos - start);
        },
      }),
    ],
    onMessage(m: Message, send) {
      if (m.type !== 2 && m.type !== 3) return undefined; // signals (NameAcquired), calls to us: not ours
      if (m.replySerial === 1) {
        return m.type === 3 ? garbled(`the bus refused Hello: ${m.errorName ?? "error"}`) : undefined;
      }
      if (m.replySerial === 2) {
        if (m.type === 3) return classifyError(m.errorName ?? "", "OpenSession");
        const out = m.body[1];
        if (m.signature !== "vo" || !isPath(out)) return garbled(`OpenSession returned ${m.signature}`);
        session = out;
        return getSecret(send);
      }
      if (m.replySerial === 3) {
        if (m.type === 3) return classifyError(m.errorName ?? "", "SearchItems");
        const [unlocked, locked] = m.body;
        if (
          m.signature !== "aoao" ||
          !Array.isArray(unlocked) ||
          !Array.isArray(locked) ||
          !unlocked.every(isPath) ||
          !locked.every(isPath)
        )
          return garbled(`SearchItems returned ${m.signature}`);
        found = { unlocked, locked };
        return getSecret(send);
      }
      if (m.replySerial === 4) {
        if (m.type === 3) return classifyError(m.errorName ?? "", "GetSecret");
        const s = m.body[0];
        if (m.signature !== "(oayays)" || !Array.isArray(s) || s.length !== 4)
          return garbled(`GetSecret returned ${m.signature}`);
        const [, params, value] = s;
        if (!Buffer.isBuffer(params) || !Buffer.isBuffer(value))
          return garbled("GetSecret returned a malformed secret");
        // "plain" has no parameters; anything else is not what was negotiated.
        if (params.length !== 0) return { kind: "undecided", reason: "the secret came back encrypted" };
        return { kind: "found", secret: new Uint8Array(value) };
      }
      return undefined;
    },
    unavailable: (reason) => ({ kind: "unavailable", reason }),
  });
}
