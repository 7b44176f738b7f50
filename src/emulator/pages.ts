/**
 * The HTML of the emulator's sign-in experience: plain forms a person can use and a headless
 * browser can drive through stable ids — `input#username`, `input#password`, `input#otc`
 * (MFA code or device code), `button#submit`, `button#accept` / `button#decline` (consent),
 * `#error` (what went wrong), `#done` (device sign-in finished). No script, except the
 * nonce'd auto-submit of `response_mode=form_post`.
 */
import { escapeHtml as h } from "./http.js";

const STYLE = `
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;background:#f2f2f2;margin:0;color:#1b1b1b}
main{max-width:440px;margin:8vh auto;background:#fff;padding:44px;box-shadow:0 2px 6px rgba(0,0,0,.2)}
h1{font-size:1.5rem;font-weight:600;margin:0 0 16px}
.brand{font-size:.85rem;color:#666;margin-bottom:20px}
label{display:block;margin:14px 0 4px;font-size:.9rem}
input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:8px;border:0;border-bottom:1px solid #666;font-size:1rem}
.buttons{margin-top:24px;display:flex;gap:8px;justify-content:flex-end}
button{padding:8px 24px;font-size:1rem;border:0;cursor:pointer}
button.primary{background:#0067b8;color:#fff}
button.secondary{background:#ccc}
#error{color:#e81123;margin:12px 0}
.note{font-size:.8rem;color:#666;margin-top:18px}
ul{padding-left:20px}`;

export function layout(title: string, body: string, extraHead = ""): string {
  return (
    `<!doctype html><html lang="en"><head><meta charset="utf-8">` +
    `<meta name="viewport" content="width=device-width,initial-scale=1">` +
    `<title>${h(title)}</title><style>${STYLE}</style>${extraHead}</head>` +
    `<body><main><div class="brand">azkeep emulator · Microsoft Entra ID</div>${body}</main></body></html>`
  );
}

function errorBlock(error: string | undefined): string {
  return error ? `<p id="error" role="alert">${h(error)}</p>` : "";
}

export interface FormPage {
  action: string;
  flow: string;
  step: string;
  appName: string;
  tenantName: string | undefined;
  error?: string | undefined;
}

function hidden(p: FormPage): string {
  return `<input type="hidden" name="flow" value="${h(p.flow)}"><input type="hidden" name="step" value="${h(p.step)}">`;
}

export function signInPage(p: FormPage & { username: string }): string {
  return layout(
    "Sign in to your account",
    `<h1>Sign in</h1>
<p>to continue to <strong id="app">${h(p.appName)}</strong>${p.tenantName ? ` (${h(p.tenantName)})` : ""}</p>
${errorBlock(p.error)}
<form id="signin" method="post" action="${h(p.action)}">${hidden(p)}
<label for="username">Email or username</label>
<input id="username" name="username" type="text" inputmode="email" autocomplete="username" autofocus required value="${h(p.username)}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<div class="buttons"><button id="submit" class="primary" type="submit">Sign in</button></div>
</form>
<p class="note">This is a local emulator: use a user of its seed (see <code>azkeep emulator start</code>).</p>`,
  );
}

export function mfaPage(p: FormPage & { username: string }): string {
  return layout(
    "Verify your identity",
    `<h1>Enter code</h1>
<p>Signing in as <strong id="user">${h(p.username)}</strong>. ${p.tenantName ? `${h(p.tenantName)} requires` : "Your organization requires"} multi-factor authentication.</p>
${errorBlock(p.error)}
<form id="mfa" method="post" action="${h(p.action)}">${hidden(p)}
<label for="otc">Enter the code displayed in your authenticator app</label>
<input id="otc" name="otc" type="text" inputmode="numeric" autocomplete="one-time-code" autofocus required>
<div class="buttons"><button id="submit" class="primary" type="submit">Verify</button></div>
</form>
<p class="note">Emulator: the code is the user's <code>mfaCode</code> in the seed (default 123456).</p>`,
  );
}

export function consentPage(
  p: FormPage & { username: string; permissions: string[]; device: boolean; unverified: boolean },
): string {
  const question = p.device
    ? `<p>Are you trying to sign in to <strong id="app">${h(p.appName)}</strong>? Only continue if you started this sign-in on a device or application you trust.</p>`
    : `<p><strong id="app">${h(p.appName)}</strong>${p.unverified ? " (unverified)" : ""} wants to:</p>`;
  return layout(
    p.device ? "Are you trying to sign in?" : "Permissions requested",
    `<h1>${p.device ? "Are you trying to sign in?" : "Permissions requested"}</h1>
<p>Signed in as <strong id="user">${h(p.username)}</strong></p>
${question}
<ul id="permissions">${p.permissions.map((s) => `<li>${h(s)}</li>`).join("")}</ul>
<form id="consent" method="post" action="${h(p.action)}">${hidden(p)}
<div class="buttons">
<button id="decline" class="secondary" type="submit" name="action" value="decline">Cancel</button>
<button id="accept" class="primary" type="submit" name="action" value="accept">${p.device ? "Continue" : "Accept"}</button>
</div></form>`,
  );
}

export function deviceCodePage(action: string, error?: string): string {
  return layout(
    "Enter code",
    `<h1>Enter code</h1>
<p>Enter the code displayed on your app or device.</p>
${errorBlock(error)}
<form id="devicecode" method="post" action="${h(action)}">
<label for="otc">Code</label>
<input id="otc" name="otc" type="text" autocomplete="off" autocapitalize="characters" autofocus required>
<div class="buttons"><button id="submit" class="primary" type="submit">Next</button></div>
</form>`,
  );
}

export function deviceDonePage(appName: string, approved: boolean): string {
  return approved
    ? layout(
        "Signed in",
        `<h1 id="done">You have signed in</h1><p>You have signed in to the <strong id="app">${h(appName)}</strong> application on your device. You may now close this window.</p>`,
      )
    : layout(
        "Sign in cancelled",
        `<h1 id="done">Sign in cancelled</h1><p id="error" role="alert">You declined to sign in to ${h(appName)} on your device. You may now close this window.</p>`,
      );
}

export function signedOutPage(): string {
  return layout(
    "Signed out",
    `<h1 id="done">You signed out of your account</h1><p>It's a good idea to close all browser windows.</p>`,
  );
}

/** `response_mode=form_post`: an auto-submitting form to the redirect URI. */
export function formPostPage(redirectUri: string, params: Record<string, string>, nonce: string): string {
  const inputs = Object.entries(params)
    .map(([k, v]) => `<input type="hidden" name="${h(k)}" value="${h(v)}">`)
    .join("");
  return layout(
    "Working...",
    `<form id="response" method="post" action="${h(redirectUri)}">${inputs}<noscript><button id="submit" type="submit">Continue</button></noscript></form>` +
      `<script nonce="${h(nonce)}">document.getElementById("response").submit();</script>`,
  );
}

export function errorPage(_ctx: unknown, code: string, message: string): string {
  return layout(
    "Sign in error",
    `<h1>Sorry, but we're having trouble signing you in.</h1><p id="error" role="alert">${h(code)}: ${h(message)}</p>`,
  );
}
