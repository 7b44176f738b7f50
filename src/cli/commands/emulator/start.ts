import type { CommandRun } from "../../command.js";
import { UsageError } from "../../../core/errors.js";

export interface StartOptions {
  seed?: string;
  port: string;
}

// Placeholder until the emulator lands (issue 2): it fails clearly instead of pretending.
export const run: CommandRun<StartOptions> = async () => {
  throw new UsageError("The emulator is not built yet.");
};
