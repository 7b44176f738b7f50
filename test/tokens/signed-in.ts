/**
 * An azkeep signed in to the emulator, for end-to-end tests that spawn the built CLI: a
 * temporary HOME, the emulator's HTTPS listener and CONNECT proxy (so azkeep talks to
 * login.microsoftonline.com and management.azure.com as in production), the `insecure-file`
 * key provider (no keyring needed), and alice signed in with her password.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createNodeContext, type Context } from "../../src/core/context.js";
import { openStore } from "../../src/core/store/index.js";
import type { Secrets, Store } from "../../src/core/store/types.js";
import { startEmulator, type Emulator } from "../../src/emulator/index.js";
import { runCli, tempHome, type CliResult } from "../helpers/cli.js";
import { ALICE, CONTOSO, SP } from "../helpers/seed.js";

export const REPO = fileURLToPath(new URL("../../", import.meta.url));
export const SHIM_DIR = join(REPO, "shim");

export { ALICE, CONTOSO, DEV_SUB, DEV_SUB_NAME, FABRIKAM, PROD_SUB, SP } from "../helpers/seed.js";

export interface SignedIn {
  emu: Emulator;
  home: string;
  /** Environment for the CLI and the shim: HOME, config dir, proxy, CA, key provider. */
  env: Record<string, string>;
  cli(
    args: string[],
    options?: { input?: string; env?: Record<string, string>; timeoutMs?: number },
  ): Promise<CliResult>;
  /** The store as the CLI sees it (same folder and provider), for setting up states. */
  store(): Promise<Store>;
  /** Sets every cached access token to expire `secondsLeft` from now (negative: expired). */
  ageAccessTokens(secondsLeft: number): Promise<void>;
  secrets(): Promise<Secrets>;
  /** Removes the failure memo, so the next refresh asks the IdP at once. */
  forgetFailures(): void;
  close(): Promise<void>;
}

export interface SignInOptions {
  /** Sign in as the service principal (client secret) instead of alice. */
  servicePrincipal?: boolean;
}

export async function signedIn(options: SignInOptions = {}): Promise<SignedIn> {
  const h = tempHome();
  const emu = await startEmulator({ dataDir: join(h.home, "emulator") });
  const env: Record<string, string> = {
    ...h.env,
    ...emu.env,
    AZKEEP_STORE_PROVIDER: "insecure-file",
    NO_COLOR: "1",
  };
  const cli: SignedIn["cli"] = (args, o = {}) =>
    runCli(args, {
      env: { ...env, ...o.env },
      ...(o.input !== undefined ? { input: o.input } : {}),
      timeoutMs: o.timeoutMs ?? 120_000,
    });
  const login = options.servicePrincipal
    ? await cli(
        ["login", "--service-principal", "-u", SP.clientId, "--tenant", CONTOSO, "--password-stdin"],
        {
          input: SP.secret,
        },
      )
    : await cli(["login", "-u", ALICE.upn, "--password-stdin"], { input: ALICE.password });
  if (login.code !== 0) {
    await emu.close();
    h[Symbol.dispose]();
    throw new Error(`login failed (${login.code}): ${login.stderr}`);
  }
  let ctx: Context | undefined;
  let store: Store | undefined;
  const getStore = async () => {
    ctx ??= createNodeContext({ env, onlyShowErrors: true });
    store ??= await openStore(ctx);
    return store;
  };
  return {
    emu,
    home: h.home,
    env,
    cli,
    store: getStore,
    async ageAccessTokens(secondsLeft) {
      const s = await getStore();
      const exp = Math.floor(Date.now() / 1000) + secondsLeft;
      await s.update((state) => {
        for (const at of state.secrets.accessTokens) {
          at.expiresOn = exp;
          delete at.refreshOn;
        }
      });
    },
    async secrets() {
      return (await getStore()).readSecrets();
    },
    forgetFailures() {
      rmSync(join(env.XDG_RUNTIME_DIR!, "azkeep", "refresh-failures.json"), { force: true });
    },
    async close() {
      await emu.close();
      h[Symbol.dispose]();
    },
  };
}
