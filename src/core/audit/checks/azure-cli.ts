/**
 * The Azure CLI's config folder (`AZURE_CONFIG_DIR` or `~/.azure`, reference §1): the
 * plaintext MSAL token cache with its family refresh token, service principal secrets, the
 * ADAL-era accessTokens.json, the world-readable azureProfile.json, and msal_http_cache.bin —
 * a Python pickle az loads on every run, so whoever can write it runs code as the user.
 */
import { join } from "node:path";
import type { Context } from "../../context.js";
import {
  parseAdalAccessTokens,
  parseMsalCache,
  parseServicePrincipalEntries,
} from "../../migrate/az-files.js";
import { azureCliConfigDir } from "../../migrate/paths.js";
import { fileFinding, fileInfo, readText, shellQuote } from "../files.js";
import type { CheckResult, Finding } from "../types.js";

const TOOL = "Azure CLI";
const IMPORT = "azkeep import az --shred";

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

export async function checkAzureCli(ctx: Context): Promise<CheckResult> {
  const dir = azureCliConfigDir(ctx);
  const p = (n: string) => join(dir, n);
  const checked = [p("msal_token_cache.json"), p("service_principal_entries.json"), p("accessTokens.json")];
  checked.push(p("azureProfile.json"), p("msal_http_cache.bin"));
  const findings: Finding[] = [];
  const now = Math.floor(ctx.clock.now() / 1000);
  const dirInfo = await fileInfo(dir);
  if (!dirInfo?.isDirectory) return { findings, checked };

  // Threat: another user replaces files az trusts (the pickle above all).
  if (dirInfo.writableByOthers)
    findings.push({
      tool: TOOL,
      path: dir,
      holds:
        "the Azure CLI's folder is writable by other users: they can plant files az loads (msal_http_cache.bin is a pickle, i.e. code)",
      risk: "high",
      mode: dirInfo.mode,
      readableByOthers: dirInfo.readableByOthers,
      fix: `chmod 700 ${shellQuote(dir)}`,
    });

  const cache = await fileInfo(p("msal_token_cache.json"));
  if (cache?.isFile) {
    const text = await readText(cache.path);
    let holds: string | undefined;
    let risk: Finding["risk"] = "high";
    try {
      if (text === undefined) throw new Error("unreadable");
      const c = parseMsalCache(text, cache.path);
      const valid = c.accessTokens.filter((a) => a.expiresOn > now).length;
      const users = [...new Set(c.accounts.map((a) => a.username).filter(Boolean))];
      if (c.refreshTokens.length > 0)
        holds =
          `${plural(c.refreshTokens.length, "refresh token")} in plain text` +
          (users.length ? ` (${users.join(", ")})` : "") +
          ": each mints tokens for every resource and tenant the account can reach" +
          (valid ? `; ${plural(valid, "unexpired access token")}` : "");
      else if (valid > 0) {
        holds = `${plural(valid, "unexpired access token")} in plain text`;
        risk = "medium";
      }
    } catch {
      holds = "the Azure CLI's token cache in plain text (it could not be parsed, so it may hold anything)";
    }
    if (holds) findings.push(fileFinding(TOOL, cache, holds, risk, IMPORT));
  }

  const sp = await fileInfo(p("service_principal_entries.json"));
  if (sp?.isFile) {
    const text = await readText(sp.path);
    try {
      if (text === undefined) throw new Error("unreadable");
      const entries = parseServicePrincipalEntries(text, sp.path);
      const secrets = entries.filter((e) => e.credential.kind === "secret").length;
      const assertions = entries.filter((e) => e.credential.kind === "federated-token").length;
      const certs = entries.filter((e) => e.credential.kind === "certificate");
      const parts = [
        ...(secrets ? [`${plural(secrets, "client secret")}`] : []),
        ...(assertions ? [`${plural(assertions, "federated token")}`] : []),
        ...(certs.length ? [`${plural(certs.length, "certificate path")}`] : []),
      ];
      if (secrets || assertions)
        findings.push(
          fileFinding(
            TOOL,
            sp,
            `service principal credentials in plain text: ${parts.join(", ")} (${entries.map((e) => e.clientId).join(", ")})`,
            "high",
            IMPORT,
          ),
        );
      // The certificate files themselves hold private keys in plain text.
      for (const c of certs) {
        if (c.credential.kind !== "certificate") continue;
        const pem = await fileInfo(c.credential.path);
        if (!pem?.isFile) continue;
        findings.push(
          fileFinding(
            TOOL,
            pem,
            `private key and certificate of service principal ${c.clientId}, named by ${sp.path}`,
            "high",
            `${IMPORT} (the key is copied into the sealed store), then shred -u ${shellQuote(pem.path)}`,
            { chmodFirst: false }, // the fix ends by shredding it
          ),
        );
      }
    } catch {
      findings.push(
        fileFinding(
          TOOL,
          sp,
          "service principal entries in plain text (could not be parsed)",
          "high",
          IMPORT,
        ),
      );
    }
  }

  const adal = await fileInfo(p("accessTokens.json"));
  if (adal?.isFile) {
    const text = await readText(adal.path);
    let holds = "ADAL-era tokens in plain text (could not be parsed)";
    let risk: Finding["risk"] = "high";
    try {
      if (text === undefined) throw new Error("unreadable");
      const a = parseAdalAccessTokens(text, adal.path);
      const rts = a.users.filter((u) => u.refreshToken).length;
      const sps = a.servicePrincipals.length;
      const parts = [
        ...(rts ? [plural(rts, "refresh token")] : []),
        ...(sps ? [plural(sps, "service principal credential")] : []),
      ];
      if (parts.length) holds = `ADAL-era ${parts.join(" and ")} in plain text (az ≤ 2.29 left it behind)`;
      else if (a.users.length) {
        holds = "ADAL-era access tokens in plain text (az ≤ 2.29 left it behind)";
        risk = "low";
      } else holds = "";
    } catch {
      /* reported as unparseable */
    }
    if (holds) findings.push(fileFinding(TOOL, adal, holds, risk, IMPORT));
  }

  const profile = await fileInfo(p("azureProfile.json"));
  if (profile?.isFile && profile.readableByOthers)
    findings.push({
      tool: TOOL,
      path: profile.path,
      holds: "account names, tenant and subscription ids (no secrets), readable by other users",
      risk: "low",
      mode: profile.mode,
      readableByOthers: true,
      fix: `chmod 600 ${shellQuote(profile.path)}`,
    });

  const pickle = await fileInfo(p("msal_http_cache.bin"));
  if (pickle?.isFile && pickle.writableByOthers)
    findings.push({
      tool: TOOL,
      path: pickle.path,
      holds:
        "a Python pickle az loads on every run, writable by other users: whoever writes it runs code as you",
      risk: "high",
      mode: pickle.mode,
      readableByOthers: pickle.readableByOthers,
      fix: `chmod 600 ${shellQuote(pickle.path)}`,
    });
  return { findings, checked };
}
