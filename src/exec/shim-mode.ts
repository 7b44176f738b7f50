/**
 * The `az` shim's exec mode: inside `azkeep exec`, `az account show|list|get-access-token`
 * are answered from the run's endpoint (`AZKEEP_EXEC_ENDPOINT`), never from the store: the
 * child's processes have no key, no refresh token, and cannot widen the run's subscription,
 * tenant or audiences.
 *
 * Part of the shim's one-file bundle: kept small, and `node:http` is loaded only when used.
 */
import { AzkeepError } from "../core/errors.js";
import { formatExpiresOn } from "../core/tokens/time.js";

export interface ExecModeRequest {
  command: "account show" | "account list" | "account get-access-token";
  resource?: string | undefined;
  resourceType?: string | undefined;
  scope?: string[] | undefined;
  subscription?: string | undefined;
  tenant?: string | undefined;
}

interface View {
  account: Record<string, unknown> & { id?: string; name?: string };
  tenant: string;
  subscription: string;
  resources: Record<string, string>;
}

async function getJson(
  url: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const http = await import("node:http");
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, timeout: 60_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        try {
          resolve({
            status: res.statusCode ?? 0,
            body: JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>,
          });
        } catch (e) {
          reject(e instanceof Error ? e : new Error(String(e)));
        }
      });
    });
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
  });
}

function refused(body: Record<string, unknown>): AzkeepError {
  const message =
    typeof body.message === "string"
      ? body.message
      : typeof body.error_description === "string"
        ? body.error_description
        : "refused";
  return new AzkeepError("auth_failed", `azkeep exec's endpoint refused: ${message}`, {
    hint: "This az runs inside `azkeep exec`: tokens come from the run (see its --log); run the command outside exec to use another account.",
  });
}

function unreachable(e: unknown): AzkeepError {
  return new AzkeepError("network", `azkeep exec's endpoint cannot be reached (${(e as Error).message}).`, {
    hint: "The `azkeep exec` run this command belongs to has ended; run it again inside a new `azkeep exec`.",
  });
}

/** Answers a shim command from the run's endpoint. */
export async function answerFromEndpoint(base: string, req: ExecModeRequest): Promise<unknown> {
  const origin = new URL(base).host;
  const headers = { Host: origin, Metadata: "true" };
  let view: View;
  try {
    const r = await getJson(`${base}/azkeep/account`, headers);
    if (r.status !== 200) throw refused(r.body);
    view = r.body as unknown as View;
  } catch (e) {
    throw e instanceof AzkeepError ? e : unreachable(e);
  }
  const sub = req.subscription;
  if (
    sub !== undefined &&
    sub.toLowerCase() !== view.subscription.toLowerCase() &&
    sub.toLowerCase() !== String(view.account.name ?? "").toLowerCase()
  ) {
    throw new AzkeepError(
      "auth_failed",
      `This azkeep exec run is for subscription ${view.subscription} only.`,
      {
        hint: "Start the tool with `azkeep exec --subscription <subscription> -- …` to use another one.",
      },
    );
  }
  if (req.command === "account show") return view.account;
  if (req.command === "account list") {
    // az's list shape: `environmentName` is `cloudName` there (as `account show` keeps it).
    const { environmentName, ...rest } = view.account;
    return [{ cloudName: environmentName, ...rest }];
  }
  if (req.tenant !== undefined && req.tenant.toLowerCase() !== view.tenant.toLowerCase()) {
    throw new AzkeepError("auth_failed", `This azkeep exec run is for tenant ${view.tenant} only.`, {
      hint: "Start the tool with `azkeep exec --tenant <tenant> -- …` to use another one.",
    });
  }
  let resource: string | undefined;
  const scopes = (req.scope ?? []).flatMap((s) => s.split(/\s+/)).filter(Boolean);
  if (scopes.length > 1) {
    throw new AzkeepError("bad_input", "Inside azkeep exec a token is for one scope at a time.", {
      hint: "Give a single --scope.",
    });
  }
  if (scopes[0]) resource = scopes[0].replace(/\/\.default$/, "");
  else if (req.resource) resource = req.resource;
  else resource = view.resources[req.resourceType ?? "arm"];
  if (!resource) {
    throw new AzkeepError(
      "not_found",
      `This cloud has no endpoint for --resource-type ${req.resourceType}.`,
      {
        hint: "Pass the resource itself with --resource, or a scope with --scope.",
      },
    );
  }
  let r: { status: number; body: Record<string, unknown> };
  try {
    r = await getJson(
      `${base}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=${encodeURIComponent(resource)}`,
      headers,
    );
  } catch (e) {
    throw unreachable(e);
  }
  if (r.status !== 200) throw refused(r.body);
  const expiresOn = Number(r.body.expires_on);
  const out: Record<string, unknown> = {
    accessToken: r.body.access_token,
    expiresOn: formatExpiresOn(expiresOn),
    expires_on: expiresOn,
    tenant: view.tenant,
    tokenType: r.body.token_type ?? "Bearer",
  };
  if (req.tenant === undefined) out.subscription = view.subscription;
  return out;
}
