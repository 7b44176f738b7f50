import { join } from "node:path";
import type { Context } from "../context.js";

/** The Azure CLI's config folder: `--config-dir`, else `AZURE_CONFIG_DIR`, else `~/.azure` (reference §1.1). */
export function azureCliConfigDir(ctx: Context, configDir?: string): string {
  return configDir || ctx.env.AZURE_CONFIG_DIR || join(ctx.paths.home, ".azure");
}
