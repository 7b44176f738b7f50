/** Helpers for the emulator's tests: a started emulator, form posts, JWT decoding. */
import { request as httpRequest } from "node:http";
import { decodeJwt, decodeProtectedHeader } from "jose";
import { startEmulator, type Emulator, type EmulatorOptions } from "../../src/emulator/index.js";

import {
  AZ_CLI_CLIENT_ID as AZ,
  ALICE,
  BOB,
  CONTOSO,
  FABRIKAM,
  NATIVE_APP,
  SP,
  TAILSPIN,
  WOODGROVE,
} from "../helpers/seed.js";

export { AZ, ALICE, BOB, CONTOSO, FABRIKAM, NATIVE_APP, SP, TAILSPIN, WOODGROVE };

export const ARM_SCOPE = "https://management.core.windows.net//.default";
export const USER_SCOPE = `${ARM_SCOPE} offline_access openid profile`;

/** Starts an emulator on plain HTTP only (fast); pass `https: true` for the transport. */
export function emulator(options: EmulatorOptions = {}): Promise<Emulator> {
  return startEmulator({ https: false, ...options });
}

export interface Json {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

export async function post(
  url: string,
  form: Record<string, string>,
  headers: Record<string, string> = {},
): Promise<Json> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(form).toString(),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
}

export async function get(url: string, headers: Record<string, string> = {}): Promise<Json> {
  const res = await fetch(url, { headers });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    body: (text ? JSON.parse(text) : {}) as Record<string, unknown>,
  };
}

export function claims(jwt: unknown): Record<string, unknown> {
  return decodeJwt(String(jwt));
}

export function jwtHeader(jwt: unknown): Record<string, unknown> {
  return decodeProtectedHeader(String(jwt));
}

export function token(
  emu: Emulator,
  tenant: string,
  form: Record<string, string>,
  headers: Record<string, string> = {},
) {
  return post(`${emu.urls.http}/${tenant}/oauth2/v2.0/token`, form, headers);
}

export function ropc(emu: Emulator, tenant = "organizations", user = ALICE, scope = USER_SCOPE) {
  return token(emu, tenant, {
    grant_type: "password",
    client_id: AZ,
    username: user.upn,
    password: user.password,
    scope,
    client_info: "1",
  });
}

/** The AADSTS code of an Entra error body. */
export function aadsts(body: Record<string, unknown>): number | undefined {
  const codes = body.error_codes;
  return Array.isArray(codes) ? (codes[0] as number) : undefined;
}

/** A GET through node:http, which (unlike fetch) lets a test set the Host header. */
export function rawGet(url: string, headers: Record<string, string> = {}): Promise<Json> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: new Headers(Object.entries(res.headers).map(([k, v]) => [k, String(v)])),
          body: (text ? JSON.parse(text) : {}) as Record<string, unknown>,
        }),
      );
    });
    req.on("error", reject);
    req.end();
  });
}
