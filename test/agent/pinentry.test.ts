import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  assuanEscape,
  assuanUnescape,
  findPinentry,
  pinentryConfirm,
  pinentryGetPin,
} from "../../src/agent/pinentry.js";
import { requireTool } from "../helpers/require-tool.js";
import { startTmux } from "../helpers/tmux.js";

const TTY = "/usr/bin/pinentry-tty";
const CURSES = "/usr/bin/pinentry-curses";

describe("pinentry: Assuan encoding and program choice", () => {
  it("escapes %, CR, LF and decodes %XX to bytes", () => {
    assert.equal(assuanEscape("100%\r\nok"), "100%25%0D%0Aok");
    assert.deepEqual(assuanUnescape(Buffer.from("a%25b%0Ac%2")), Buffer.from("a%b\nc%2"));
  });

  it("looks in system folders only; a desktop prefers a dialog", () => {
    const have = new Set(["/usr/bin/pinentry-gnome3", "/usr/bin/pinentry-tty"]);
    const exists = (p: string) => have.has(p);
    assert.deepEqual(findPinentry({ exists }), { program: "/usr/bin/pinentry-tty", kind: "tty" });
    assert.deepEqual(findPinentry({ exists, desktop: true }), {
      program: "/usr/bin/pinentry-gnome3",
      kind: "desktop",
    });
    assert.equal(findPinentry({ exists: () => false }), undefined);
    // A relative "preferred" could be resolved through a PATH someone else set: ignored.
    assert.deepEqual(findPinentry({ exists, preferred: "pinentry-gnome3" }), {
      program: "/usr/bin/pinentry-tty",
      kind: "tty",
    });
  });
});

describe("pinentry: a real pinentry-tty in a tmux pane", () => {
  it("CONFIRM: the text is shown, 'a' allows; 'd' cancels; no answer times out", async (t) => {
    if (!requireTool(t, "pinentry-tty", "apt-get install -y pinentry-tty")) return;
    if (!requireTool(t, "tmux", "apt-get install -y tmux")) return;
    await using tmux = startTmux();
    const pane = tmux.pane("sleep 120");
    const opts = { program: TTY, ttyname: pane.tty, timeoutSec: 20 };
    const dialog = {
      title: "azkeep",
      description: "pid 4242 /usr/bin/terraform plan\nwants a token for https://management.azure.com (100%)",
      ok: "_Allow",
      cancel: "_Deny",
    };
    const p1 = pinentryConfirm(opts, dialog);
    const screen = await tmux.waitFor(pane.target, /\[ad\]\?/);
    assert.match(screen, /pid 4242 \/usr\/bin\/terraform plan/);
    assert.match(screen, /management\.azure\.com \(100%\)/);
    tmux.type(pane.target, "a");
    assert.deepEqual(await p1, { answer: "allow" });

    tmux.send(pane.target, "C-l");
    const p2 = pinentryConfirm(opts, { ...dialog, description: "second question" });
    await tmux.waitFor(pane.target, /second question[\s\S]*\[ad\]\?/);
    tmux.type(pane.target, "d");
    assert.deepEqual(await p2, { answer: "cancel" });

    const started = Date.now();
    const p3 = await pinentryConfirm({ ...opts, timeoutSec: 1 }, { ...dialog, description: "third" });
    assert.deepEqual(p3, { answer: "timeout" });
    assert.ok(Date.now() - started < 8000);
  });

  it("GETPIN returns the typed bytes, percent signs and spaces intact", async (t) => {
    if (!requireTool(t, "pinentry-tty", "apt-get install -y pinentry-tty")) return;
    if (!requireTool(t, "tmux", "apt-get install -y tmux")) return;
    await using tmux = startTmux();
    const pane = tmux.pane("sleep 120");
    const pin = pinentryGetPin(
      { program: TTY, ttyname: pane.tty, timeoutSec: 20 },
      { description: "Unlock the azkeep store", prompt: "Passphrase:" },
    );
    await tmux.waitFor(pane.target, /Passphrase:/);
    tmux.type(pane.target, "se cr%et");
    tmux.send(pane.target, "Enter");
    const got = await pin;
    assert.equal(got?.toString("utf8"), "se cr%et");
    assert.doesNotMatch(tmux.capture(pane.target), /se cr%et/, "the passphrase was echoed");
  });

  it("pinentry-curses: Enter on the default button allows, Tab to Deny + Enter cancels", async (t) => {
    if (!requireTool(t, "pinentry-curses", "apt-get install -y pinentry-curses")) return;
    if (!requireTool(t, "tmux", "apt-get install -y tmux")) return;
    await using tmux = startTmux();
    const pane = tmux.pane("sleep 120");
    const opts = {
      program: CURSES,
      ttyname: pane.tty,
      ttytype: "screen",
      lcCtype: "C.UTF-8",
      timeoutSec: 20,
    };
    const p1 = pinentryConfirm(opts, { description: "curses question one", ok: "Allow", cancel: "Deny" });
    await tmux.waitFor(pane.target, /curses question one[\s\S]*Allow/);
    tmux.send(pane.target, "Enter");
    assert.deepEqual(await p1, { answer: "allow" });
    const p2 = pinentryConfirm(opts, { description: "curses question two", ok: "Allow", cancel: "Deny" });
    await tmux.waitFor(pane.target, /curses question two/);
    tmux.send(pane.target, "Tab");
    tmux.send(pane.target, "Enter");
    assert.deepEqual(await p2, { answer: "cancel" });
  });

  it("a pinentry that cannot start, or a terminal that does not exist, is a refusal", async () => {
    assert.equal(
      (await pinentryConfirm({ program: "/nonexistent/pinentry", timeoutSec: 2 }, { description: "x" }))
        .answer,
      "failed",
    );
    const r = await pinentryConfirm(
      { program: TTY, ttyname: "/dev/pts/9999", timeoutSec: 2 },
      { description: "x" },
    );
    assert.notEqual(r.answer, "allow");
  });
});
