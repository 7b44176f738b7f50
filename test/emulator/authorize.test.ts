import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { completeAuthorize, completeDeviceLogin, type Emulator } from "../../src/emulator/index.js";
import { requireTool } from "../helpers/require-tool.js";
import {
  ALICE,
  AZ,
  CONTOSO,
  NATIVE_APP,
  USER_SCOPE,
  WOODGROVE,
  claims,
  emulator,
  post,
  token,
} from "./helpers.js";

const AS_ALICE = { username: ALICE.upn, password: ALICE.password };

function pkce() {
  const verifier = randomBytes(32).toString("base64url");
  return { verifier, challenge: createHash("sha256").update(verifier).digest("base64url") };
}

function authorizeUrl(emu: Emulator, o: Record<string, string>, tenant = "organizations"): string {
  const q = new URLSearchParams({
    client_id: AZ,
    response_type: "code",
    redirect_uri: "http://localhost:53219",
    scope: USER_SCOPE,
    state: "st-1",
    nonce: "n-1",
    client_info: "1",
    ...o,
  });
  return `${emu.urls.http}/${tenant}/oauth2/v2.0/authorize?${q.toString()}`;
}

function redeem(
  emu: Emulator,
  url: string,
  verifier: string,
  o: Record<string, string> = {},
  tenant = "organizations",
) {
  const u = new URL(url);
  return token(emu, tenant, {
    grant_type: "authorization_code",
    client_id: AZ,
    code: u.searchParams.get("code") ?? "",
    redirect_uri: "http://localhost:53219",
    code_verifier: verifier,
    scope: USER_SCOPE,
    client_info: "1",
    ...o,
  });
}

describe("emulator: browser sign-in (authorize + pages)", () => {
  let emu: Emulator;
  before(async () => (emu = await emulator()));
  after(() => emu.close());

  it("signs in with PKCE S256; the code is single-use and bound to the verifier", async () => {
    const { verifier, challenge } = pkce();
    const back = await completeAuthorize(
      authorizeUrl(emu, { code_challenge: challenge, code_challenge_method: "S256" }),
      AS_ALICE,
    );
    const u = new URL(back);
    assert.equal(u.origin, "http://localhost:53219");
    assert.equal(u.searchParams.get("state"), "st-1");
    assert.ok(u.searchParams.get("client_info"));
    const wrong = await redeem(emu, back, pkce().verifier);
    assert.equal(wrong.status, 400);
    assert.deepEqual(wrong.body.error_codes, [50148]);
    const ok = await redeem(emu, back, verifier);
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(claims(ok.body.id_token).nonce, "n-1");
    assert.equal(claims(ok.body.access_token).tid, CONTOSO);
    const again = await redeem(emu, back, verifier);
    assert.deepEqual(again.body.error_codes, [54005]);
  });

  it("refuses non-loopback redirect URIs with a page, never a redirect", async () => {
    for (const bad of [
      "https://evil.example/cb",
      "http://evil.example:8080",
      "http://localhost.evil.example:1",
    ]) {
      const res = await fetch(authorizeUrl(emu, { redirect_uri: bad }), { redirect: "manual" });
      assert.equal(res.status, 400);
      assert.equal(res.headers.get("location"), null);
      assert.match(await res.text(), /AADSTS50011/);
    }
    const ok = await fetch(authorizeUrl(emu, { redirect_uri: "http://127.0.0.1:9999/cb" }), {
      redirect: "manual",
    });
    assert.equal(ok.status, 200);
  });

  it("redirects protocol errors to the app: plain PKCE, bad scope, bad response_type", async () => {
    const cases: [Record<string, string>, string][] = [
      [{ code_challenge: "x".repeat(43), code_challenge_method: "plain" }, "invalid_request"],
      [{ scope: "https://not-a-resource.example/.default" }, "invalid_resource"],
      [{ response_type: "token" }, "unsupported_response_type"],
      [{ prompt: "none" }, "login_required"],
    ];
    for (const [params, error] of cases) {
      const res = await fetch(authorizeUrl(emu, params), { redirect: "manual" });
      assert.equal(res.status, 302);
      const loc = new URL(res.headers.get("location")!);
      assert.equal(loc.searchParams.get("error"), error);
      assert.match(loc.searchParams.get("error_description")!, /^AADSTS\d+: /);
      assert.equal(loc.searchParams.get("state"), "st-1");
    }
  });

  it("a wrong password is shown on the page; the driver reports it", async () => {
    await assert.rejects(
      completeAuthorize(authorizeUrl(emu, {}), { ...AS_ALICE, password: "nope" }),
      /AADSTS50126/,
    );
  });

  it("asks for MFA in an MFA tenant; the token then carries amr mfa and refreshes there", async () => {
    const { verifier, challenge } = pkce();
    await assert.rejects(
      completeAuthorize(
        authorizeUrl(emu, { code_challenge: challenge, code_challenge_method: "S256" }, WOODGROVE),
        {
          ...AS_ALICE,
          mfaCode: "000000",
        },
      ),
      /Sign-in|verification code|12 pages/,
    );
    const back = await completeAuthorize(
      authorizeUrl(emu, { code_challenge: challenge, code_challenge_method: "S256" }, WOODGROVE),
      AS_ALICE,
    );
    const ok = await redeem(emu, back, verifier, {}, WOODGROVE);
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.deepEqual(claims(ok.body.access_token).amr, ["pwd", "mfa"]);
    const refreshed = await token(emu, WOODGROVE, {
      grant_type: "refresh_token",
      client_id: AZ,
      refresh_token: String(ok.body.refresh_token),
      scope: USER_SCOPE,
    });
    assert.equal(refreshed.status, 200);
  });

  it("shows a consent page for a third-party app; declining returns access_denied", async () => {
    const url = authorizeUrl(emu, { client_id: NATIVE_APP, prompt: "login" });
    const declined = new URL(await completeAuthorize(url, { ...AS_ALICE, consent: "decline" }));
    assert.equal(declined.searchParams.get("error"), "access_denied");
    assert.match(declined.searchParams.get("error_description")!, /^AADSTS65004/);
    // ROPC for an app the user never consented to: 65001.
    const ropc = await token(emu, "organizations", {
      grant_type: "password",
      client_id: NATIVE_APP,
      username: ALICE.upn,
      password: ALICE.password,
      scope: USER_SCOPE,
    });
    assert.deepEqual(ropc.body.error_codes, [65001]);
    const accepted = new URL(await completeAuthorize(url, AS_ALICE));
    assert.ok(accepted.searchParams.get("code"));
  });

  it("supports response_mode=form_post and fragment", async () => {
    const fp = new URL(
      await completeAuthorize(authorizeUrl(emu, { response_mode: "form_post", prompt: "login" }), AS_ALICE),
    );
    assert.ok(fp.searchParams.get("code"));
    assert.equal(fp.searchParams.get("state"), "st-1");
    const res = await fetch(authorizeUrl(emu, { response_mode: "fragment", prompt: "login" }), {
      redirect: "manual",
    });
    assert.equal(res.status, 200); // the sign-in page first
  });

  it("device code page: enter the code, sign in, continue; the client then gets tokens", async () => {
    const dc = await post(`${emu.urls.http}/organizations/oauth2/v2.0/devicecode`, {
      client_id: AZ,
      scope: USER_SCOPE,
    });
    await assert.rejects(
      completeDeviceLogin(String(dc.body.verification_uri), "WRONGCODE", AS_ALICE),
      /didn't work/,
    );
    await completeDeviceLogin(String(dc.body.verification_uri), String(dc.body.user_code), AS_ALICE);
    const ok = await token(emu, "organizations", {
      grant_type: "urn:ietf:params:oauth:grant-type:device_code",
      client_id: AZ,
      device_code: String(dc.body.device_code),
    });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(claims(ok.body.access_token).upn, ALICE.upn);
  });

  it("logout ends the session (prompt=none then needs a sign-in)", async () => {
    // Sign in through raw requests so the session cookie can be inspected.
    const first = await fetch(authorizeUrl(emu, { prompt: "login" }), { redirect: "manual" });
    const html = await first.text();
    const flow = /name="flow" value="([^"]+)"/.exec(html)![1]!;
    const signin = await fetch(`${emu.urls.http}/organizations/login`, {
      method: "POST",
      redirect: "manual",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        flow,
        step: "signin",
        username: ALICE.upn,
        password: ALICE.password,
      }).toString(),
    });
    assert.equal(signin.status, 302);
    const cookie = signin.headers.getSetCookie()[0]!.split(";")[0]!;
    assert.match(signin.headers.getSetCookie()[0]!, /HttpOnly/);
    const silent = await fetch(authorizeUrl(emu, { prompt: "none" }), {
      redirect: "manual",
      headers: { cookie },
    });
    assert.ok(new URL(silent.headers.get("location")!).searchParams.get("code"));
    const out = await fetch(`${emu.urls.http}/organizations/oauth2/v2.0/logout`, { headers: { cookie } });
    assert.equal(out.status, 200);
    const after = await fetch(authorizeUrl(emu, { prompt: "none" }), {
      redirect: "manual",
      headers: { cookie },
    });
    assert.equal(new URL(after.headers.get("location")!).searchParams.get("error"), "login_required");
  });

  it("a flow cannot skip the MFA step by posting another step", async () => {
    const first = await fetch(authorizeUrl(emu, { prompt: "login" }, WOODGROVE), { redirect: "manual" });
    const flow = /name="flow" value="([^"]+)"/.exec(await first.text())![1]!;
    const post1 = (body: Record<string, string>) =>
      fetch(`${emu.urls.http}/${WOODGROVE}/login`, {
        method: "POST",
        redirect: "manual",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ flow, ...body }).toString(),
      });
    const mfaPage = await post1({ step: "signin", username: ALICE.upn, password: ALICE.password });
    assert.match(await mfaPage.text(), /id="otc"/);
    const skip = await post1({ step: "consent", action: "accept" });
    assert.equal(skip.status, 200);
    assert.match(await skip.text(), /id="otc"/);
  });
});

describe("emulator: real headless browser (Debian chromium)", () => {
  let emu: Emulator;
  let loopback: Server;
  let received: Promise<URL>;
  before(async () => {
    emu = await emulator();
    let resolve!: (u: URL) => void;
    received = new Promise((r) => (resolve = r));
    loopback = createServer((req, res) => {
      resolve(new URL(req.url ?? "/", "http://localhost"));
      res.end("You can close this window.");
    });
    await new Promise<void>((r) => loopback.listen(0, "127.0.0.1", r));
  });
  after(async () => {
    loopback.close();
    await emu.close();
  });

  it(
    "a person's sign-in (username, password, MFA, consent) works in Chromium",
    { timeout: 120_000 },
    async (t) => {
      if (!requireTool(t, "chromium", "apt-get install -y chromium")) return;
      const { chromium } = await import("playwright-core");
      const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
      try {
        const page = await browser.newPage();
        const port = (loopback.address() as AddressInfo).port;
        const { verifier, challenge } = pkce();
        await page.goto(
          authorizeUrl(
            emu,
            {
              client_id: NATIVE_APP,
              redirect_uri: `http://localhost:${port}`,
              code_challenge: challenge,
              code_challenge_method: "S256",
            },
            WOODGROVE,
          ),
        );
        await page.fill("input#username", ALICE.upn);
        await page.fill("input#password", ALICE.password);
        await page.click("button#submit");
        await page.fill("input#otc", "123456");
        await page.click("button#submit");
        await page.click("button#accept");
        const url = await received;
        assert.equal(url.searchParams.get("state"), "st-1");
        const ok = await token(emu, WOODGROVE, {
          grant_type: "authorization_code",
          client_id: NATIVE_APP,
          code: url.searchParams.get("code")!,
          redirect_uri: `http://localhost:${port}`,
          code_verifier: verifier,
          scope: USER_SCOPE,
        });
        assert.equal(ok.status, 200, JSON.stringify(ok.body));
      } finally {
        await browser.close();
      }
    },
  );
});
