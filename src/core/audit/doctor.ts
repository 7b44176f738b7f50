/**
 * `azkeep doctor`: finds credentials kept in plain text where tools are known to keep them
 * (the Azure CLI, azd, the AWS CLI, gcloud, kubeconfigs) and reports how azkeep's own store is
 * protected. Every location comes from the Context (`paths.home`, `env`), so tests point it at
 * a fake home. It only reads; fixing is left to the commands each finding names.
 */
import { stat } from "node:fs/promises";
import { join } from "node:path";
import type { Context } from "../context.js";
import type { StoreStatus } from "../store/types.js";
import { checkAws } from "./checks/aws.js";
import { checkAzd } from "./checks/azd.js";
import { checkAzureCli } from "./checks/azure-cli.js";
import { checkGcloud } from "./checks/gcloud.js";
import { checkKubeconfig } from "./checks/kube.js";
import { fileInfo, shellQuote } from "./files.js";
import type { Check, Finding, Risk } from "./types.js";

export type { Check, CheckResult, Finding, Risk } from "./types.js";

/** How azkeep's own store is protected. */
export interface StoreReport {
  /** `none`: no store yet; `ok`; `warning`: works but weaker than it should be; `error`: cannot tell. */
  state: "none" | "ok" | "warning" | "error";
  configDir: string;
  provider: string | null;
  /** What protects the tokens, in words. */
  protection: string;
  files: { path: string; mode: string; exists: boolean }[];
  warnings: string[];
  /** Whether the key provider has the store's key now (`null`: not checked, e.g. a passphrase). */
  keyAvailable?: boolean | null;
}

export interface DoctorReport {
  /** True when any finding is `high` or `medium`: the exit code is then 3. */
  atRisk: boolean;
  summary: Record<Risk, number>;
  findings: Finding[];
  store: StoreReport;
  /** Every place looked at. */
  checked: string[];
}

export interface DoctorOptions {
  /**
   * Reads the status of azkeep's store; resolves undefined when there is no store yet. A
   * rejection is reported in `store`, not thrown: the doctor must work on a broken setup.
   */
  storeStatus?: () => Promise<StoreStatus | undefined>;
  /**
   * The agent's release log check (src/agent/log.ts): `problem` names an edited, removed or cut
   * record. Undefined: no agent to ask (the log's MAC key lives in the unlocked store).
   */
  releaseLog?: () => Promise<{ ok: boolean; path: string; problem?: string; previous?: string } | undefined>;
  /** The checks to run (default: all); tests narrow them. */
  checks?: Check[];
}

export const ALL_CHECKS: readonly Check[] = [checkAzureCli, checkAzd, checkAws, checkGcloud, checkKubeconfig];

const RISK_ORDER: Record<Risk, number> = { high: 0, medium: 1, low: 2 };

const PROTECTION: Record<string, string> = {
  keyring: "sealed (AES-256-GCM); the key is in the OS keyring",
  keyutils:
    "sealed (AES-256-GCM); the key is in the Linux kernel keyring, which forgets it at reboot (then sign in again)",
  passphrase: "sealed (AES-256-GCM); the key is derived from your passphrase (scrypt)",
  "insecure-file":
    "sealed, but the key is in a file beside the store (insecure-file opt-in): a copy of the folder opens it",
  memory: "kept in memory only; nothing is written to disk",
};

async function storeReport(
  ctx: Context,
  options: DoctorOptions,
): Promise<{ report: StoreReport; findings: Finding[] }> {
  const configDir = ctx.paths.configDir;
  const findings: Finding[] = [];
  const base = { configDir, provider: null, files: [], warnings: [] };
  let status: StoreStatus | undefined;
  if (options.storeStatus) {
    try {
      status = await options.storeStatus();
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      const hint = e instanceof Error && "hint" in e && typeof e.hint === "string" ? ` ${e.hint}` : "";
      return {
        report: { ...base, state: "error", protection: `cannot tell: ${msg}${hint}`, warnings: [msg] },
        findings,
      };
    }
  } else {
    // No store port given: say whether a sealed file exists, without opening it.
    const sealed = await stat(join(configDir, "tokens.sealed")).then(
      () => true,
      () => false,
    );
    if (sealed)
      return {
        report: { ...base, state: "error", protection: "a store exists, but its status could not be read" },
        findings,
      };
  }
  // Before its first write the store reports provider `none`: nothing is kept yet.
  if (!status || status.provider === "none")
    return {
      report: {
        ...base,
        state: "none",
        protection:
          "no azkeep store yet: run `azkeep login`, or `azkeep import az` to move the Azure CLI's sign-in",
      },
      findings,
    };

  const warnings = [...status.warnings];
  if (status.provider === "insecure-file")
    findings.push({
      tool: "azkeep",
      path: status.configDir,
      holds: "azkeep's store key is in a file beside the store (the insecure-file opt-in)",
      risk: "medium",
      mode: null,
      readableByOthers: false,
      fix: "azkeep store migrate --to keyring (or --to keyutils / passphrase)",
    });
  for (const f of status.files) {
    if (!f.exists) continue;
    const info = await fileInfo(f.path);
    if (!info) continue;
    const loose = (Number.parseInt(info.mode, 8) & 0o077) !== 0;
    if (!loose) continue;
    findings.push({
      tool: "azkeep",
      path: f.path,
      holds: `azkeep's ${info.isDirectory ? "folder" : "file"} is open to other users (azkeep refuses to use it)`,
      risk: "high",
      mode: info.mode,
      readableByOthers: info.readableByOthers,
      fix: `chmod ${info.isDirectory ? "700" : "600"} ${shellQuote(f.path)}`,
    });
  }
  const state = findings.length > 0 || warnings.length > 0 ? "warning" : "ok";
  return {
    report: {
      state,
      configDir: status.configDir,
      provider: status.provider,
      protection: PROTECTION[status.provider] ?? `sealed; key provider ${status.provider}`,
      files: status.files,
      warnings,
      ...(status.keyAvailable !== undefined ? { keyAvailable: status.keyAvailable } : {}),
    },
    findings,
  };
}

/** Runs every check and the store report. Never throws for what it finds on disk. */
export async function runDoctor(ctx: Context, options: DoctorOptions = {}): Promise<DoctorReport> {
  const checks = options.checks ?? ALL_CHECKS;
  const [results, store] = await Promise.all([
    Promise.all(
      checks.map(async (check) => {
        try {
          return await check(ctx);
        } catch (e) {
          ctx.logger.debug(`doctor: a check failed: ${e instanceof Error ? e.message : String(e)}`);
          return { findings: [], checked: [] };
        }
      }),
    ),
    storeReport(ctx, options),
  ]);
  const logFindings: Finding[] = [];
  if (options.releaseLog) {
    const v = await options.releaseLog().catch((e: unknown) => {
      ctx.logger.debug(`doctor: the release log could not be checked: ${String(e)}`);
      return undefined;
    });
    for (const problem of [v?.ok === false ? v.problem : undefined, v?.previous])
      if (v && problem)
        logFindings.push({
          tool: "azkeep",
          path: v.path,
          holds: `the agent's release log is broken: ${problem}`,
          risk: "high",
          mode: null,
          readableByOthers: false,
          fix: "someone with your uid changed the log: see `azkeep agent log`, check what ran as you, then `azkeep agent stop && azkeep agent start` (a broken log is kept aside, a new chain starts)",
        });
  }
  const findings = [...results.flatMap((r) => r.findings), ...store.findings, ...logFindings].sort(
    (a, b) =>
      RISK_ORDER[a.risk] - RISK_ORDER[b.risk] || a.tool.localeCompare(b.tool) || a.path.localeCompare(b.path),
  );
  const summary: Record<Risk, number> = { high: 0, medium: 0, low: 0 };
  for (const f of findings) summary[f.risk]++;
  return {
    atRisk: summary.high + summary.medium > 0,
    summary,
    findings,
    store: store.report,
    checked: results.flatMap((r) => r.checked),
  };
}

/** Rows for `-o table`: one per finding, then one for azkeep's store. */
export function doctorTable(value: unknown): Record<string, unknown>[] {
  const r = value as DoctorReport;
  const rows: Record<string, unknown>[] = r.findings.map((f) => ({
    Risk: f.risk,
    Tool: f.tool,
    Path: f.path,
    Mode: f.mode ?? "",
    Holds: f.holds,
    Fix: f.fix,
  }));
  rows.push({
    Risk: r.store.state === "ok" ? "ok" : r.store.state,
    Tool: "azkeep store",
    Path: r.store.configDir,
    Mode: "",
    Holds: r.store.protection,
    Fix: "",
  });
  return rows;
}
