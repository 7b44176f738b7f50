/**
 * Kubeconfigs (`KUBECONFIG`, a path list, or `~/.kube/config`) with credentials embedded in
 * `users[].user`: bearer `token`, `client-key-data` (a private key), basic-auth `password`, and
 * the legacy `auth-provider` config (refresh, id and access tokens, client secrets — the
 * `azure` and `oidc` providers kept these). An `exec` plugin (kubelogin, …) keeps nothing.
 */
import { delimiter, join } from "node:path";
import type { Context } from "../../context.js";
import { fileFinding, fileInfo, readText, shellQuote } from "../files.js";
import type { CheckResult, Finding } from "../types.js";

const TOOL = "kubectl";
const FIX =
  "replace embedded credentials with an exec credential plugin (AKS: kubelogin convert-kubeconfig -l azurecli)";

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === "object" && !Array.isArray(v);
const filled = (v: unknown) => typeof v === "string" && v !== "";

/** What each user entry embeds, as `user NAME: kinds`, and whether any of it is long-lived. */
export function embeddedCredentials(doc: unknown): { items: string[]; high: boolean } {
  const items: string[] = [];
  let high = false;
  const users = isObj(doc) && Array.isArray(doc.users) ? doc.users : [];
  for (const u of users) {
    if (!isObj(u) || !isObj(u.user)) continue;
    const name = typeof u.name === "string" ? u.name : "?";
    const user = u.user;
    const kinds: string[] = [];
    if (filled(user.token)) kinds.push("bearer token");
    if (filled(user["client-key-data"])) kinds.push("client private key");
    if (filled(user.password)) kinds.push("password");
    const ap =
      isObj(user["auth-provider"]) && isObj(user["auth-provider"].config) ? user["auth-provider"].config : {};
    if (filled(ap["refresh-token"])) kinds.push("refresh token");
    if (filled(ap["client-secret"])) kinds.push("client secret");
    if (filled(ap["access-token"])) kinds.push("access token");
    if (filled(ap["id-token"])) kinds.push("id token");
    if (kinds.length === 0) continue;
    // Service account tokens, private keys, passwords, refresh tokens and secrets are long-lived;
    // auth-provider access/id tokens alone expire within the hour.
    if (kinds.some((k) => k !== "access token" && k !== "id token")) high = true;
    items.push(`user ${name}: ${kinds.join(", ")}`);
  }
  return { items, high };
}

export async function checkKubeconfig(ctx: Context): Promise<CheckResult> {
  const paths = ctx.env.KUBECONFIG
    ? [...new Set(ctx.env.KUBECONFIG.split(delimiter).filter(Boolean))]
    : [join(ctx.paths.home, ".kube", "config")];
  const findings: Finding[] = [];
  for (const path of paths) {
    const info = await fileInfo(path);
    if (!info?.isFile) continue;
    const text = await readText(path);
    if (text === undefined || text.trim() === "") continue;
    // `yaml` is CommonJS under Node; bundled by esbuild, its dynamic import has only `default`.
    const { parseAllDocuments } = (await import("yaml")).default;
    let items: string[] = [];
    let high = false;
    let parsed = true;
    try {
      for (const d of parseAllDocuments(text)) {
        if (d.errors.length) {
          parsed = false;
          continue;
        }
        const r = embeddedCredentials(d.toJS());
        items = items.concat(r.items);
        high ||= r.high;
      }
    } catch (e) {
      ctx.logger.debug(`doctor: ${path}: ${e instanceof Error ? e.message : String(e)}`);
      parsed = false;
    }
    if (items.length)
      findings.push(
        fileFinding(
          TOOL,
          info,
          `embedded credentials in plain text (${items.join("; ")})`,
          high ? "high" : "medium",
          FIX,
        ),
      );
    else if (!parsed)
      findings.push({
        tool: TOOL,
        path,
        holds: "a kubeconfig that is not valid YAML, so it could not be checked",
        risk: "low",
        mode: info.mode,
        readableByOthers: info.readableByOthers,
        fix: `kubectl config view --kubeconfig ${shellQuote(path)} (shows what is wrong)`,
      });
  }
  return { findings, checked: paths };
}
