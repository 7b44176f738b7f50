import type { ServerResponse } from "node:http";
import { sendHtml, type Req } from "./http.js";
import { errorPage } from "./pages.js";
import type { CoreContext } from "./server.js";

export async function authorizeRequest(
  ctx: CoreContext,
  _req: Req,
  res: ServerResponse,
  _seg: string,
): Promise<void> {
  sendHtml(res, 501, errorPage(ctx, "AADSTS90000", "Browser sign-in is not built yet."));
}
export const loginRequest = (ctx: CoreContext, req: Req, res: ServerResponse) =>
  authorizeRequest(ctx, req, res, "");
export const deviceLoginRequest = loginRequest;
export const logoutRequest = loginRequest;
