/** `/oidc/userinfo` (Microsoft Graph's OIDC userinfo): the signed-in user's claims for a Graph token. */
import { header, type Req } from "./http.js";
import type { CoreContext } from "./server.js";

export async function userInfo(
  ctx: CoreContext,
  req: Req,
): Promise<{ status: number; body: unknown; headers: Record<string, string> }> {
  const m = /^Bearer\s+(\S+)$/i.exec(header(req, "authorization") ?? "");
  const deny = {
    status: 401,
    body: { error: { code: "InvalidAuthenticationToken", message: "Access token is empty or invalid." } },
    headers: { "WWW-Authenticate": 'Bearer realm="", error="invalid_token"' },
  };
  if (!m) return deny;
  try {
    const p = await ctx.issuer.verify(m[1]!);
    const aud = String(p.aud);
    if (!/graph\.microsoft\.com|^00000003-0000-0000-c000-000000000000$/.test(aud)) return deny;
    const user = ctx.world.user(String(p.oid));
    if (!user) return deny;
    return {
      status: 200,
      body: {
        sub: p.sub,
        name: user.displayName ?? user.upn,
        email: user.upn,
        preferred_username: user.upn,
      },
      headers: {},
    };
  } catch {
    return deny;
  }
}
