/**
 * The AWS CLI and SDKs: static access keys in `~/.aws/credentials` (or
 * `AWS_SHARED_CREDENTIALS_FILE`) and `~/.aws/config` (or `AWS_CONFIG_FILE`); IAM Identity
 * Center (SSO) tokens in `~/.aws/sso/cache/*.json`; assumed-role session keys in
 * `~/.aws/cli/cache/*.json`. aws-vault keeps the same keys in the OS keyring instead.
 */
import { join } from "node:path";
import type { Context } from "../../context.js";
import { fileFinding, fileInfo, listMatching, readText, shellQuote } from "../files.js";
import type { CheckResult, Finding } from "../types.js";

const TOOL = "AWS CLI";

/** The profiles of an INI file and their keys (names only are kept, plus whether a value is set). */
export function parseIni(text: string): Map<string, Map<string, string>> {
  const out = new Map<string, Map<string, string>>();
  let current: Map<string, string> | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith("#") || line.startsWith(";")) continue;
    const section = /^\[\s*(.+?)\s*\]$/.exec(line);
    if (section?.[1] !== undefined) {
      const name = section[1].replace(/^profile\s+/, "");
      current = out.get(name) ?? new Map<string, string>();
      out.set(name, current);
      continue;
    }
    const kv = /^([^=]+?)\s*=\s*(.*)$/.exec(line);
    if (kv?.[1] !== undefined && current) current.set(kv[1].toLowerCase(), kv[2] ?? "");
  }
  return out;
}

async function checkKeyFile(path: string): Promise<Finding | undefined> {
  const info = await fileInfo(path);
  if (!info?.isFile) return undefined;
  const text = await readText(path);
  if (text === undefined) return undefined;
  const longTerm: string[] = [];
  const temporary: string[] = [];
  for (const [profile, keys] of parseIni(text)) {
    if (!keys.get("aws_secret_access_key")) continue;
    if (keys.get("aws_session_token")) temporary.push(profile);
    else longTerm.push(profile);
  }
  if (longTerm.length)
    return fileFinding(
      TOOL,
      info,
      `long-term AWS access keys in plain text (profiles: ${longTerm.join(", ")})` +
        (temporary.length ? `; session keys for ${temporary.join(", ")}` : ""),
      "high",
      `${longTerm.map((p) => `aws-vault add ${shellQuote(p)}`).join(" && ")} (keys go to the OS keyring), then delete those keys from ${shellQuote(path)}`,
    );
  if (temporary.length)
    return fileFinding(
      TOOL,
      info,
      `temporary AWS session keys in plain text (profiles: ${temporary.join(", ")})`,
      "medium",
      `delete the session keys from ${shellQuote(path)}; use \`aws-vault exec PROFILE -- …\` to get them only for one command`,
    );
  return undefined;
}

export async function checkAws(ctx: Context): Promise<CheckResult> {
  const base = join(ctx.paths.home, ".aws");
  const credentials = ctx.env.AWS_SHARED_CREDENTIALS_FILE || join(base, "credentials");
  const config = ctx.env.AWS_CONFIG_FILE || join(base, "config");
  const sso = join(base, "sso", "cache");
  const cli = join(base, "cli", "cache");
  const checked = [credentials, config, join(sso, "*.json"), join(cli, "*.json")];
  const findings: Finding[] = [];
  const nowMs = ctx.clock.now();

  for (const path of [credentials, config]) {
    const f = await checkKeyFile(path);
    if (f) findings.push(f);
  }

  for (const path of await listMatching(sso, /\.json$/)) {
    const info = await fileInfo(path);
    if (!info?.isFile) continue;
    let doc: Record<string, unknown>;
    try {
      doc = JSON.parse((await readText(path)) ?? "") as Record<string, unknown>;
    } catch {
      continue;
    }
    const expiresAt = typeof doc.expiresAt === "string" ? Date.parse(doc.expiresAt) : NaN;
    const live = Number.isFinite(expiresAt) && expiresAt > nowMs;
    if (typeof doc.refreshToken === "string" && doc.refreshToken)
      findings.push(
        fileFinding(
          TOOL,
          info,
          "an IAM Identity Center (SSO) refresh token in plain text: it renews the SSO session without signing in",
          "high",
          "aws sso logout (removes the cached SSO tokens)",
        ),
      );
    else if (typeof doc.accessToken === "string" && doc.accessToken && live)
      findings.push(
        fileFinding(
          TOOL,
          info,
          `an unexpired IAM Identity Center (SSO) access token in plain text (until ${new Date(expiresAt).toISOString()})`,
          "medium",
          "aws sso logout (removes the cached SSO tokens)",
        ),
      );
  }

  for (const path of await listMatching(cli, /\.json$/)) {
    const info = await fileInfo(path);
    if (!info?.isFile) continue;
    try {
      const doc = JSON.parse((await readText(path)) ?? "") as { Credentials?: Record<string, unknown> };
      const c = doc.Credentials;
      const expiration = typeof c?.Expiration === "string" ? Date.parse(c.Expiration) : NaN;
      if (typeof c?.SecretAccessKey === "string" && c.SecretAccessKey && !(expiration <= nowMs))
        findings.push(
          fileFinding(
            TOOL,
            info,
            "an assumed role's temporary AWS keys in plain text",
            "medium",
            `rm ${shellQuote(path)}; use \`aws-vault exec PROFILE -- …\` for role sessions`,
          ),
        );
    } catch {
      /* not a credentials cache entry */
    }
  }
  return { findings, checked };
}
