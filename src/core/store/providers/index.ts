/**
 * Loading key providers (each lazily, so a command pays only for the one it uses) and the
 * automatic choice on first write: the OS keyring when it answers quickly, else the kernel
 * keyring, else a passphrase (given in the environment or typed on a terminal), else one error
 * that lists every option. `insecure-file` and `memory` are never chosen automatically.
 */
import type { Context } from "../../context.js";
import { AzkeepError, UsageError } from "../../errors.js";
import {
  PROVIDER_NAMES,
  isProviderName,
  type KeyProvider,
  type ProviderContext,
  type ProviderName,
  type StoreOptions,
} from "../provider.js";

export async function loadProvider(name: ProviderName, pctx: ProviderContext): Promise<KeyProvider> {
  const override = pctx.options.providers?.[name];
  if (override) return override;
  switch (name) {
    case "keyring":
      return (await import("./keyring.js")).createKeyringProvider(pctx);
    case "keyutils":
      return (await import("./keyutils.js")).createKeyutilsProvider(pctx);
    case "passphrase":
      return (await import("./passphrase.js")).createPassphraseProvider(pctx);
    case "insecure-file":
      return (await import("./insecure-file.js")).createInsecureFileProvider(pctx);
    case "memory":
      return (await import("./memory.js")).createMemoryProvider(pctx);
  }
}

/** The provider asked for explicitly: the `provider` option, else `AZKEEP_STORE_PROVIDER`. */
export function requestedProvider(
  ctx: Pick<Context, "env">,
  options: StoreOptions,
): ProviderName | undefined {
  if (options.provider) return options.provider;
  const env = ctx.env.AZKEEP_STORE_PROVIDER?.trim();
  if (!env) return undefined;
  if (!isProviderName(env))
    throw new UsageError(`AZKEEP_STORE_PROVIDER=${env} is not a key provider.`, {
      hint: `Use one of: ${PROVIDER_NAMES.join(", ")} (see docs/store.md).`,
    });
  return env;
}

/**
 * Tries the automatic candidates in order, calling `create` with each until one works. A
 * candidate that is unavailable (`store_unavailable`) is skipped; any other error stops.
 */
export async function chooseProvider<R>(
  pctx: ProviderContext,
  create: (p: KeyProvider) => Promise<R>,
): Promise<R> {
  const reasons: string[] = [];
  const attempt = async (
    name: ProviderName,
    make: () => Promise<KeyProvider>,
  ): Promise<{ ok: R } | undefined> => {
    try {
      return { ok: await create(await make()) };
    } catch (e) {
      if (e instanceof AzkeepError && e.code === "store_unavailable") {
        reasons.push(`${name}: ${e.message}`);
        pctx.ctx.logger.debug(`key provider ${name} unavailable: ${e.message}`);
        return undefined;
      }
      throw e;
    }
  };
  const keyring = await attempt("keyring", async () => {
    if (pctx.options.providers?.keyring) return pctx.options.providers.keyring;
    const { createKeyringProvider } = await import("./keyring.js");
    return createKeyringProvider(pctx, { timeoutMs: pctx.options.keyringProbeTimeoutMs ?? 3000 });
  });
  if (keyring) return keyring.ok;
  if (process.platform === "linux" || pctx.options.providers?.keyutils) {
    const keyutils = await attempt("keyutils", () => loadProvider("keyutils", pctx));
    if (keyutils) return keyutils.ok;
  } else reasons.push("keyutils: only on Linux");
  const { passphraseConfigured } = await import("./passphrase.js");
  if (passphraseConfigured(pctx) || pctx.ctx.prompter.interactive) {
    const passphrase = await attempt("passphrase", () => loadProvider("passphrase", pctx));
    if (passphrase) return passphrase.ok;
  } else reasons.push("passphrase: no terminal to ask on and no AZKEEP_PASSPHRASE / AZKEEP_PASSPHRASE_FILE");
  throw new AzkeepError(
    "store_unavailable",
    `azkeep found no safe place for the token store's key:\n  ${reasons.join("\n  ")}`,
    {
      hint:
        "Choose one: start a Secret Service (e.g. gnome-keyring) in this session; or run inside `keyctl session`; " +
        "or set AZKEEP_PASSPHRASE / AZKEEP_PASSPHRASE_FILE; or set AZKEEP_STORE_PROVIDER=memory for a job that keeps " +
        "nothing; or — knowing anyone who copies the config folder can then use your sign-in — " +
        "AZKEEP_STORE_PROVIDER=insecure-file. See docs/store.md.",
    },
  );
}
