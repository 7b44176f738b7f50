/**
 * A browserless driver of the emulator's sign-in pages, for tests of browser and device code
 * flows that do not need a real browser: it follows the pages with plain HTTP (cookies kept),
 * fills the sign-in, MFA and consent forms and returns where the browser would be sent. A
 * real headless browser drives the same pages by their element ids (see `pages.ts`).
 */

export interface SignInAnswers {
  username: string;
  password: string;
  /** The MFA code, if the page asks (default: the seed's default `123456`). */
  mfaCode?: string;
  /** What to click on the consent page (default accept). */
  consent?: "accept" | "decline";
}

interface Form {
  action: string;
  fields: Record<string, string>;
  step: string | undefined;
}

function unescape(s: string): string {
  return s
    .replace(/&#(\d+);/g, (_m, n: string) => String.fromCharCode(Number(n)))
    .replace(/&amp;/g, "&")
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">");
}

function parseForm(html: string): Form | undefined {
  const form = /<form\b[^>]*\baction="([^"]*)"/.exec(html);
  if (!form) return undefined;
  const fields: Record<string, string> = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)">/g))
    fields[unescape(m[1]!)] = unescape(m[2]!);
  return { action: unescape(form[1]!), fields, step: fields.step };
}

class Jar {
  private readonly cookies = new Map<string, string>();
  header(): Record<string, string> {
    return this.cookies.size === 0
      ? {}
      : { cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ") };
  }
  take(res: Response): void {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(";");
      const eq = pair!.indexOf("=");
      if (eq > 0) this.cookies.set(pair!.slice(0, eq).trim(), pair!.slice(eq + 1).trim());
    }
  }
}

function fill(form: Form, a: SignInAnswers): Record<string, string> {
  const f = { ...form.fields };
  switch (form.step) {
    case "signin":
      return { ...f, username: a.username, password: a.password };
    case "mfa":
      return { ...f, otc: a.mfaCode ?? "123456" };
    case "consent":
      return { ...f, action: a.consent ?? "accept" };
    default:
      throw new Error(`The emulator showed a page this driver does not know (step '${form.step ?? "?"}').`);
  }
}

async function walk(
  start: Response,
  base: string,
  answers: SignInAnswers,
  jar: Jar,
  done: (res: Response, html: string) => string | undefined,
): Promise<string> {
  let res = start;
  for (let i = 0; i < 12; i++) {
    jar.take(res);
    if (res.status >= 300 && res.status < 400) {
      const location = res.headers.get("location")!;
      const next = new URL(location, base);
      if (next.origin !== new URL(base).origin) return next.toString();
      res = await fetch(next, { redirect: "manual", headers: jar.header() });
      continue;
    }
    const html = await res.text();
    const finished = done(res, html);
    if (finished !== undefined) return finished;
    const form = parseForm(html);
    if (!form) {
      const error = /id="error"[^>]*>([^<]*)</.exec(html)?.[1];
      throw new Error(`Sign-in stopped: ${error ? unescape(error) : `HTTP ${res.status}`}`);
    }
    if (form.fields.code !== undefined || form.fields.error !== undefined) {
      // response_mode=form_post: report the parameters as a query string.
      return `${form.action}?${new URLSearchParams(form.fields).toString()}`;
    }
    const wrongAgain = form.step === "signin" && /id="error"/.test(html) && i > 0;
    if (wrongAgain) {
      const error = /id="error"[^>]*>([^<]*)</.exec(html)?.[1] ?? "sign-in failed";
      throw new Error(`Sign-in failed: ${unescape(error)}`);
    }
    res = await fetch(new URL(form.action, base), {
      method: "POST",
      redirect: "manual",
      headers: { "content-type": "application/x-www-form-urlencoded", ...jar.header() },
      body: new URLSearchParams(fill(form, answers)).toString(),
    });
  }
  throw new Error("Sign-in did not finish after 12 pages.");
}

/**
 * Opens an authorize URL and signs in; returns the URL the browser would be redirected to
 * (the loopback `redirect_uri` with `code` and `state`, or with `error`).
 */
export async function completeAuthorize(authorizeUrl: string, answers: SignInAnswers): Promise<string> {
  const jar = new Jar();
  const res = await fetch(authorizeUrl, { redirect: "manual" });
  return walk(res, authorizeUrl, answers, jar, () => undefined);
}

/** Enters a device code on the emulator's page (`verification_uri`) and signs in. */
export async function completeDeviceLogin(
  verificationUri: string,
  userCode: string,
  answers: SignInAnswers,
): Promise<void> {
  const jar = new Jar();
  const res = await fetch(verificationUri, {
    method: "POST",
    redirect: "manual",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ otc: userCode }).toString(),
  });
  await walk(res, verificationUri, answers, jar, (r, html) => {
    if (/id="done"/.test(html)) {
      if (/id="error"/.test(html)) throw new Error("The device sign-in was declined.");
      return "done";
    }
    if (r.status === 400 && !/name="flow"/.test(html)) {
      const error = /id="error"[^>]*>([^<]*)</.exec(html)?.[1] ?? `HTTP ${r.status}`;
      throw new Error(`Device sign-in failed: ${unescape(error)}`);
    }
    return undefined;
  });
}
