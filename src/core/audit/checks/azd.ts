/**
 * The Azure Developer CLI (azd). On Linux and macOS its built-in sign-in keeps plain JSON
 * files under `AZD_CONFIG_DIR` or `~/.azd` (Azure/azure-dev `cli/azd/pkg/auth`:
 * `cache_unix.go`, `file_cache.go`, `manager.go`): the MSAL cache with the user's refresh token
 * in `auth/msal/cache*.json`, and service principal secrets or certificates in
 * `auth/cred<tenant>.<client>.json`. Only Windows encrypts them (DPAPI).
 */
import { join } from "node:path";
import type { Context } from "../../context.js";
import { parseMsalCache } from "../../migrate/az-files.js";
import { fileFinding, fileInfo, listMatching, readText } from "../files.js";
import type { CheckResult, Finding } from "../types.js";

const TOOL = "azd";
/** azd can hand sign-in to `az` (`auth.useAzCliAuth`), which azkeep serves: then azd keeps no credential. */
const FIX =
  "azd auth logout && azd config set auth.useAzCliAuth true (azd then asks az, which `azkeep exec` serves)";

export async function checkAzd(ctx: Context): Promise<CheckResult> {
  const root = ctx.env.AZD_CONFIG_DIR || join(ctx.paths.home, ".azd");
  const auth = join(root, "auth");
  const findings: Finding[] = [];
  const checked = [join(auth, "msal", "cache*.json"), join(auth, "cred*.json")];
  const now = Math.floor(ctx.clock.now() / 1000);

  for (const path of await listMatching(join(auth, "msal"), /^cache.*\.json$/)) {
    const info = await fileInfo(path);
    if (!info?.isFile) continue;
    const text = await readText(path);
    let holds: string | undefined;
    let risk: Finding["risk"] = "high";
    try {
      if (text === undefined || text.trim() === "") throw new Error("unreadable");
      const c = parseMsalCache(text, path);
      const users = [...new Set(c.accounts.map((a) => a.username).filter(Boolean))];
      const valid = c.accessTokens.filter((a) => a.expiresOn > now).length;
      if (c.refreshTokens.length)
        holds = `azd's MSAL cache: ${c.refreshTokens.length} refresh token(s) in plain text${users.length ? ` (${users.join(", ")})` : ""}`;
      else if (valid) {
        holds = `azd's MSAL cache: ${valid} unexpired access token(s) in plain text`;
        risk = "medium";
      }
    } catch {
      if (text !== "") holds = "azd's MSAL token cache in plain text (could not be parsed)";
    }
    if (!holds) continue;
    findings.push(fileFinding(TOOL, info, holds, risk, FIX));
  }

  for (const path of await listMatching(auth, /^cred.*\.json$/)) {
    const info = await fileInfo(path);
    if (!info?.isFile) continue;
    const text = await readText(path);
    let kinds: string[] = [];
    try {
      const doc = JSON.parse(text ?? "") as Record<string, unknown>;
      if (typeof doc.clientSecret === "string" && doc.clientSecret) kinds.push("a client secret");
      if (typeof doc.clientCertificate === "string" && doc.clientCertificate)
        kinds.push("a certificate with its private key");
    } catch {
      kinds = ["service principal credentials (could not be parsed)"];
    }
    // An emptied entry (after `azd auth logout`) or a federated one (no secret) holds nothing usable.
    if (kinds.length === 0) continue;
    const name = /^cred(.+)\.json$/.exec(path.slice(auth.length + 1))?.[1] ?? "";
    const clientId = name.slice(name.lastIndexOf(".") + 1); // `<tenant>.<client id>`; a tenant may be a domain
    const holds = `service principal ${clientId}: ${kinds.join(" and ")} in plain text`;
    findings.push(fileFinding(TOOL, info, holds, "high", "azd auth logout"));
  }
  return { findings, checked };
}
