/**
 * Managed identity: the Azure Instance Metadata Service token endpoint
 * (`/metadata/identity/oauth2/token`, header `Metadata: true`) and the App Service style
 * endpoint (`/msi/token`, header `X-IDENTITY-HEADER`, api-version 2019-08-01). Tokens are
 * app-only tokens for the seeded managed identities.
 */
import { timingSafeEqual, createHash } from "node:crypto";
import { header, type Req } from "./http.js";
import type { SeedManagedIdentity } from "./seed.js";
import { knownResource, type TokenIssuer } from "./tokens.js";
import type { World } from "./world.js";

export class IdentityError extends Error {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
  ) {
    super(String(body.error_description ?? body.message ?? body.error));
  }
}

export interface IdentityContext {
  world: World;
  issuer: TokenIssuer;
  identityHeader: string;
}

function bad(description: string, error = "invalid_request"): IdentityError {
  return new IdentityError(400, { error, error_description: description });
}

function pickIdentity(
  world: World,
  by: { clientId?: string | null; objectId?: string | null; resourceId?: string | null },
): SeedManagedIdentity {
  const given = [by.clientId, by.objectId, by.resourceId].filter(
    (v) => v !== null && v !== undefined && v !== "",
  );
  if (given.length > 1) throw bad("Only one of client_id, object_id or msi_res_id may be given.");
  const mis = world.managedIdentities;
  let found: SeedManagedIdentity | undefined;
  if (by.clientId) found = mis.find((m) => m.clientId === by.clientId!.toLowerCase());
  else if (by.objectId) found = mis.find((m) => m.objectId === by.objectId!.toLowerCase());
  else if (by.resourceId)
    found = mis.find((m) => m.resourceId?.toLowerCase() === by.resourceId!.toLowerCase());
  else {
    found = mis.find((m) => m.type === "system");
    if (!found) {
      const users = mis.filter((m) => m.type === "user");
      if (users.length > 1)
        throw bad(
          "Multiple user assigned identities exist, please specify the clientId / resourceId of the identity in the token request",
        );
      found = users[0];
    }
  }
  if (!found) throw bad("Identity not found");
  return found;
}

function resourceOf(world: World, req: Req): string {
  const resource = req.query.get("resource");
  if (!resource) throw bad("Required query variable 'resource' is missing");
  if (!knownResource(world, resource))
    throw bad(
      `AADSTS500011: The resource principal named ${resource.slice(0, 200)} was not found in the tenant. This can happen if the application has not been installed by the administrator of the tenant.`,
      "invalid_resource",
    );
  return resource;
}

/** IMDS: `GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=…`. */
export async function imdsToken(ctx: IdentityContext, req: Req): Promise<Record<string, unknown>> {
  if (req.method !== "GET")
    throw new IdentityError(405, { error: "invalid_request", error_description: "Only GET is supported." });
  // The Metadata header stops server-side request forgery from reaching the token endpoint.
  if (header(req, "metadata")?.toLowerCase() !== "true") throw bad("Required metadata header not specified");
  // IMDS refuses forwarded requests: a proxy in front of it must not hand out the VM's tokens.
  if (header(req, "x-forwarded-for") !== undefined)
    throw bad("Request with the X-Forwarded-For header is not allowed for the identity endpoint");
  if (!req.query.get("api-version")) throw bad("Required query variable 'api-version' is missing");
  const resource = resourceOf(ctx.world, req);
  const mi = pickIdentity(ctx.world, {
    clientId: req.query.get("client_id"),
    objectId: req.query.get("object_id") ?? req.query.get("principal_id"),
    resourceId: req.query.get("msi_res_id") ?? req.query.get("mi_res_id"),
  });
  const t = await issue(ctx, mi, resource);
  return {
    access_token: t.token,
    client_id: mi.clientId,
    expires_in: String(t.expiresIn),
    expires_on: String(t.expiresOn),
    ext_expires_in: String(t.expiresIn),
    not_before: String(t.notBefore),
    resource,
    token_type: "Bearer",
  };
}

function sameHeader(a: string, b: string): boolean {
  return timingSafeEqual(createHash("sha256").update(a).digest(), createHash("sha256").update(b).digest());
}

/** App Service: `GET /msi/token?api-version=2019-08-01&resource=…` with `X-IDENTITY-HEADER`. */
export async function appServiceToken(ctx: IdentityContext, req: Req): Promise<Record<string, unknown>> {
  if (req.method !== "GET")
    throw new IdentityError(405, { statusCode: 405, message: "Only GET is supported." });
  const secret = header(req, "x-identity-header");
  if (!secret || !sameHeader(secret, ctx.identityHeader))
    throw new IdentityError(401, {
      statusCode: 401,
      message:
        "Unauthorized request: the X-IDENTITY-HEADER header is missing or wrong (use IDENTITY_HEADER).",
    });
  const version = req.query.get("api-version");
  if (version !== "2019-08-01")
    throw new IdentityError(400, {
      statusCode: 400,
      message: `The api-version '${(version ?? "").slice(0, 30)}' is not supported; use 2019-08-01.`,
    });
  const resource = resourceOf(ctx.world, req);
  const mi = pickIdentity(ctx.world, {
    clientId: req.query.get("client_id"),
    objectId: req.query.get("principal_id") ?? req.query.get("object_id"),
    resourceId: req.query.get("mi_res_id") ?? req.query.get("msi_res_id"),
  });
  const t = await issue(ctx, mi, resource);
  return {
    access_token: t.token,
    expires_on: String(t.expiresOn),
    resource,
    token_type: "Bearer",
    client_id: mi.clientId,
  };
}

function issue(ctx: IdentityContext, mi: SeedManagedIdentity, resource: string) {
  return ctx.issuer.appAccessToken({
    tenantId: mi.tenant,
    clientId: mi.clientId,
    oid: mi.objectId,
    resource,
    roles: undefined,
    appidacr: "2",
    cp1: false,
    lifetime: ctx.world.lifetimes.managedIdentity,
    ...(mi.resourceId ? { miResourceId: mi.resourceId } : {}),
  });
}
