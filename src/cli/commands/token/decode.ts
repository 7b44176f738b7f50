/**
 * `azkeep token decode [TOKEN|-]`: what people paste tokens into websites for, done locally.
 * The token is read from stdin by default so it never appears in argv (visible to every user
 * through /proc) or shell history; the output holds the header and claims, not the token.
 */
import { AzkeepError } from "../../../core/errors.js";
import { decodeJwt, numericDate } from "../../../core/jwt.js";
import { expiresIn, formatLocalWithOffset } from "../../../core/tokens/time.js";
import type { CommandRun } from "../../command.js";

export interface DecodeOptions {
  token: string | undefined;
}

export const run: CommandRun<DecodeOptions> = async ({ token }, io) => {
  const { ctx } = io;
  let text: string;
  if (token === undefined || token === "-") {
    if (ctx.prompter.interactive) ctx.progress.message("Paste the token, then press Enter and Ctrl-D:");
    text = await ctx.prompter.readStdin();
    if (!text.trim()) {
      throw new AzkeepError("bad_input", "No token was given on stdin.", {
        hint: "Pipe one in: `azkeep account get-access-token --query accessToken -o tsv | azkeep token decode`.",
      });
    }
  } else {
    text = token;
    ctx.logger.warn(
      "A token on the command line is visible to other processes and kept in shell history; pipe it in instead (`… | azkeep token decode`).",
    );
  }
  const { header, claims, signatureBytes } = decodeJwt(text);
  const nowMs = ctx.clock.now();
  const value: Record<string, unknown> = { header, claims, signed: signatureBytes > 0 };
  const exp = numericDate(claims, "exp");
  if (exp !== undefined) {
    value.expiresOn = formatLocalWithOffset(exp);
    value.expires = expiresIn(exp, nowMs);
    value.expired = exp * 1000 <= nowMs;
  }
  const iat = numericDate(claims, "iat");
  if (iat !== undefined) value.issuedAt = formatLocalWithOffset(iat);
  const nbf = numericDate(claims, "nbf");
  if (nbf !== undefined) value.notBefore = formatLocalWithOffset(nbf);
  return {
    value,
    table: (v) => {
      const r = v as Record<string, unknown>;
      const c = (r.claims ?? {}) as Record<string, unknown>;
      return [
        {
          Audience: c.aud,
          Tenant: c.tid,
          Subject: c.upn ?? c.unique_name ?? c.appid ?? c.sub,
          ExpiresOn: r.expiresOn,
          Expires: r.expires,
        },
      ];
    },
  };
};
