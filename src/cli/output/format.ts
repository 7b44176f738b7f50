/**
 * Output formats with the Azure CLI's semantics (knack `output.py`): `json` is indented by two
 * with sorted keys, `tsv` puts a dict's values in sorted-key order on one line, lists one line
 * per element, nested dicts as empty strings and nested lists as their length.
 */
import { UsageError } from "../../core/errors.js";

export const OUTPUT_FORMATS = ["json", "jsonc", "tsv", "table", "yaml", "yamlc", "none"] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export function isOutputFormat(s: string): s is OutputFormat {
  return (OUTPUT_FORMATS as readonly string[]).includes(s);
}

/** Turns a result into rows for `-o table` when the command has a transformer and no `--query`. */
export type TableTransformer = (value: unknown) => Record<string, unknown>[];

export interface FormatOptions {
  color: boolean;
  table?: TableTransformer | undefined;
}

function sortKeysDeep(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeysDeep);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) out[k] = sortKeysDeep((value as Record<string, unknown>)[k]);
    return out;
  }
  return value;
}

export function formatJson(value: unknown): string {
  return JSON.stringify(sortKeysDeep(value), null, 2) + "\n";
}

const C = { key: "\x1b[94m", str: "\x1b[32m", num: "\x1b[36m", lit: "\x1b[35m", reset: "\x1b[0m" };

export function formatJsonc(value: unknown, color: boolean): string {
  const text = formatJson(value);
  if (!color) return text;
  return text.replace(
    /("(?:\\.|[^"\\])*")(\s*:)?|\b(true|false|null)\b|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g,
    (
      m,
      str: string | undefined,
      colon: string | undefined,
      lit: string | undefined,
      num: string | undefined,
    ) => {
      if (str !== undefined) return colon ? `${C.key}${str}${C.reset}${colon}` : `${C.str}${str}${C.reset}`;
      if (lit !== undefined) return `${C.lit}${lit}${C.reset}`;
      if (num !== undefined) return `${C.num}${num}${C.reset}`;
      return m;
    },
  );
}

function tsvCell(v: unknown): string {
  if (Array.isArray(v)) return String(v.length);
  if (v === null || v === undefined) return "";
  if (typeof v === "object") return "";
  if (typeof v === "boolean") return v ? "true" : "false";
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "bigint") return v.toString();
  return "";
}

function tsvRow(v: unknown): string {
  if (Array.isArray(v)) return v.map(tsvCell).join("\t");
  if (v !== null && typeof v === "object") {
    const rec = v as Record<string, unknown>;
    return Object.keys(rec)
      .sort()
      .map((k) => tsvCell(rec[k]))
      .join("\t");
  }
  return tsvCell(v);
}

export function formatTsv(value: unknown): string {
  if (value === null || value === undefined) return "";
  const rows = Array.isArray(value) ? value : [value];
  return rows.map((r) => tsvRow(r) + "\n").join("");
}

function capitalizeFirst(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

export function formatTable(value: unknown, transformer?: TableTransformer): string {
  let rows: Record<string, unknown>[];
  if (transformer) rows = transformer(value);
  else {
    const list = Array.isArray(value) ? value : [value];
    rows = list.map((item) =>
      item !== null && typeof item === "object" && !Array.isArray(item)
        ? (item as Record<string, unknown>)
        : { Result: item },
    );
  }
  if (rows.length === 0) return "";
  const columns: string[] = [];
  for (const r of rows)
    for (const k of Object.keys(r)) {
      const v = r[k];
      if (v !== null && typeof v === "object") continue; // nested values are left out, as az does
      if (!columns.includes(k)) columns.push(k);
    }
  if (!transformer) columns.sort();
  const headers = columns.map(capitalizeFirst);
  const cells = rows.map((r) => columns.map((c) => tsvCell(r[c])));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((row) => row[i]!.length)));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => v.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  return [line(headers), line(widths.map((w) => "-".repeat(w))), ...cells.map(line)].join("\n") + "\n";
}

/** Formats `value` for stdout in `format`; `--query` has been applied already. */
export async function formatOutput(
  value: unknown,
  format: OutputFormat,
  options: FormatOptions,
): Promise<string> {
  switch (format) {
    case "none":
      return "";
    case "json":
      return formatJson(value);
    case "jsonc":
      return formatJsonc(value, options.color);
    case "tsv":
      return formatTsv(value);
    case "table":
      return formatTable(value, options.table);
    case "yaml":
    case "yamlc": {
      const { stringify } = await import("yaml");
      return stringify(sortKeysDeep(value));
    }
  }
}

/**
 * Applies a JMESPath `--query`; `jmespath` is imported only when a query is given. A query that
 * does not parse, or fails on the result, is a usage error (exit 2), as in az.
 */
export async function applyQuery(value: unknown, query: string): Promise<unknown> {
  const { default: jmespath } = await import("jmespath");
  try {
    return jmespath.search(value as Parameters<typeof jmespath.search>[0], query) as unknown;
  } catch (e) {
    throw invalidQuery(query, e);
  }
}

/** Parses `query` without running it, so a bad `--query` fails before the command acts. */
export async function checkQuery(query: string): Promise<void> {
  const { default: jmespath } = await import("jmespath");
  try {
    // Searching `null` parses the whole expression; functions on null simply yield null.
    jmespath.search(null, query);
  } catch (e) {
    // A function given null (e.g. `length(@)`) is fine here: the real result is not null.
    if (!(e instanceof Error && /expected argument \d+ to be type/.test(e.message)))
      throw invalidQuery(query, e);
  }
}

function invalidQuery(query: string, e: unknown): UsageError {
  const why = e instanceof Error ? e.message : String(e);
  return new UsageError(`argument --query: invalid jmespath_type value: '${query}' (${why})`, {
    hint: "See https://jmespath.org for the query syntax.",
  });
}
