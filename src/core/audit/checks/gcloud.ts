/**
 * Google Cloud CLI (`CLOUDSDK_CONFIG` or `~/.config/gcloud`): refresh tokens and service
 * account keys in the SQLite `credentials.db`, access tokens in `access_tokens.db`, copies in
 * `legacy_credentials/<account>/adc.json` (and `.boto`), and Application Default Credentials
 * in `application_default_credentials.json` or the file `GOOGLE_APPLICATION_CREDENTIALS`
 * names. gcloud has no encrypted store, so the fix is to revoke what is not needed.
 */
import { join } from "node:path";
import type { Context } from "../../context.js";
import { fileFinding, fileInfo, listDirs, readBytes, readText } from "../files.js";
import type { CheckResult, Finding } from "../types.js";

const TOOL = "gcloud";

/** What a Google credential JSON (ADC, adc.json, a key file) holds; undefined when nothing usable. */
export function describeGoogleCredential(doc: unknown): { holds: string; risk: Finding["risk"] } | undefined {
  if (doc === null || typeof doc !== "object") return undefined;
  const d = doc as Record<string, unknown>;
  const has = (k: string) => typeof d[k] === "string" && d[k] !== "";
  switch (d.type) {
    case "authorized_user":
      return has("refresh_token")
        ? { holds: "a Google user refresh token in plain text", risk: "high" }
        : undefined;
    case "service_account":
      return has("private_key")
        ? { holds: "a Google service account private key in plain text", risk: "high" }
        : undefined;
    case "impersonated_service_account":
      return describeGoogleCredential(d.source_credentials);
    case "external_account_authorized_user":
      return has("refresh_token")
        ? { holds: "a workforce identity refresh token in plain text", risk: "high" }
        : undefined;
    default:
      // external_account (workload identity federation) names where to get a token; no secret.
      return has("refresh_token") || has("private_key")
        ? { holds: "Google credentials in plain text", risk: "high" }
        : undefined;
  }
}

async function jsonCredential(path: string, fix: string): Promise<Finding | undefined> {
  const info = await fileInfo(path);
  if (!info?.isFile) return undefined;
  let doc: unknown;
  try {
    doc = JSON.parse((await readText(path)) ?? "");
  } catch {
    return undefined;
  }
  const d = describeGoogleCredential(doc);
  return d ? fileFinding(TOOL, info, d.holds, d.risk, fix) : undefined;
}

export async function checkGcloud(ctx: Context): Promise<CheckResult> {
  const dir = ctx.env.CLOUDSDK_CONFIG || join(ctx.paths.home, ".config", "gcloud");
  const findings: Finding[] = [];
  const checked = [
    join(dir, "credentials.db"),
    join(dir, "access_tokens.db"),
    join(dir, "legacy_credentials", "*", "adc.json"),
    join(dir, "application_default_credentials.json"),
  ];

  const creds = await fileInfo(join(dir, "credentials.db"));
  if (creds?.isFile && creds.size > 0) {
    // SQLite keeps short text values inline, so the JSON field names show what is stored.
    const bytes = await readBytes(creds.path);
    const kinds = [
      ...(bytes?.includes("refresh_token") ? ["refresh tokens"] : []),
      ...(bytes?.includes("private_key") ? ["service account private keys"] : []),
    ];
    if (kinds.length || !bytes)
      findings.push(
        fileFinding(
          TOOL,
          creds,
          kinds.length
            ? `gcloud's credential database: ${kinds.join(" and ")} in plain text (SQLite)`
            : "gcloud's credential database in plain text (SQLite; could not be read)",
          "high",
          "gcloud auth revoke --all (gcloud has no encrypted store; sign in again only when needed)",
        ),
      );
  }

  const tokens = await fileInfo(join(dir, "access_tokens.db"));
  if (tokens?.isFile && tokens.size > 0) {
    const bytes = await readBytes(tokens.path);
    if (!bytes || bytes.includes("ya29.") || bytes.includes("access_token"))
      findings.push(
        fileFinding(
          TOOL,
          tokens,
          "gcloud's cached access tokens in plain text (SQLite; each lasts about an hour)",
          "medium",
          "gcloud auth revoke --all",
        ),
      );
  }

  for (const account of await listDirs(join(dir, "legacy_credentials"))) {
    const adc = await jsonCredential(join(account, "adc.json"), "gcloud auth revoke --all");
    if (adc) findings.push(adc);
    const boto = await fileInfo(join(account, ".boto"));
    if (boto?.isFile && /gs_oauth2_refresh_token|gs_service_key_file/.test((await readText(boto.path)) ?? ""))
      findings.push(
        fileFinding(
          TOOL,
          boto,
          "a gsutil refresh token or key file reference in plain text",
          "high",
          "gcloud auth revoke --all",
        ),
      );
  }

  const adcPath = join(dir, "application_default_credentials.json");
  const adc = await jsonCredential(adcPath, "gcloud auth application-default revoke");
  if (adc) findings.push(adc);

  const gac = ctx.env.GOOGLE_APPLICATION_CREDENTIALS;
  if (gac && gac !== adcPath) {
    checked.push(gac);
    const f = await jsonCredential(
      gac,
      "delete the key (gcloud iam service-accounts keys delete KEY_ID) and use workload identity federation or impersonation",
    );
    if (f) findings.push(f);
  }
  return { findings, checked };
}
