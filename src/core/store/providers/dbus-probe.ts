/**
 * A pure-JavaScript check that a Secret Service answers on the D-Bus session bus, run before
 * @napi-rs/keyring is touched.
 *
 * Why: the native module connects synchronously on the main thread and cannot be cancelled.
 * Measured here: on a bus that accepts the connection and never speaks it blocks forever, and
 * once a native call is stuck even `process.exit()` hangs (the addon's runtime is joined at
 * exit). So azkeep asks the bus itself, with a timeout: authenticate (SASL EXTERNAL), `Hello`,
 * then `org.freedesktop.DBus.Peer.Ping` to `org.freedesktop.secrets` (which also starts the
 * service by activation if it is installed but not running). Only when that answers does the
 * native module get to talk to it. About 1–2 ms against a live gnome-keyring.
 */
import type { Env } from "../../context.js";
import { call, converse, secretServiceDown } from "./dbus-wire.js";

export type ProbeResult = { ok: true } | { ok: false; reason: string };

/** Asks the session bus whether a Secret Service answers, within `timeoutMs`. Never throws. */
export function probeSecretService(env: Env, timeoutMs: number): Promise<ProbeResult> {
  return converse<ProbeResult>(env, timeoutMs, {
    opening: () => [
      call(1, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "Hello"),
      call(2, "org.freedesktop.secrets", "/org/freedesktop/secrets", "org.freedesktop.DBus.Peer", "Ping"),
    ],
    onMessage(m) {
      if (m.replySerial !== 2) return undefined;
      if (m.type === 2) return { ok: true };
      if (m.type !== 3) return undefined;
      const down = secretServiceDown(m.errorName ?? "");
      if (down) return { ok: false, reason: down };
      // Any other error (UnknownMethod, …) is still an answer: the service is alive.
      return { ok: true };
    },
    unavailable: (reason) => ({ ok: false, reason }),
  });
}
