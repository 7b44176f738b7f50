/**
 * Output formats with the Azure CLI's semantics (knack `output.py`, tabulate, PyYAML): `json` is
 * indented by two with sorted keys, `tsv` puts a dict's values in sorted-key order on one line
 * (a `--query` multiselect keeps its own order), lists one line per element, nested dicts as
 * empty strings, nested lists as their length, booleans and null as Python prints them
 * (`True`, `None`); a `null` result prints nothing in every format. Compared with the real
 * az 2.45 in `test/interop/az-conformance.test.ts`.
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
  /** The command's table transformer; not used when a `--query` is active. */
  table?: TableTransformer | undefined;
  /** A `--query` was applied (table columns keep their order; knack's `is_query_active`). */
  queryActive?: boolean;
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

/**
 * Objects a `--query` made (a multiselect hash `{Name:name, Id:id}`): az keeps their key order
 * in tsv and table (knack's JMESPath runs with an OrderedDict), where it sorts the command's own.
 */
const queryMade = new WeakSet<object>();

/** Whether `o` was made by the `--query` (its key order is the query's). */
export function madeByQuery(o: object): boolean {
  return queryMade.has(o);
}

function collectObjects(value: unknown, into: WeakSet<object>): void {
  if (value === null || typeof value !== "object" || into.has(value)) return;
  into.add(value);
  for (const v of Array.isArray(value) ? value : Object.values(value)) collectObjects(v, into);
}

function markQueryMade(value: unknown, original: WeakSet<object>): void {
  if (value === null || typeof value !== "object" || original.has(value)) return;
  if (!Array.isArray(value)) queryMade.add(value);
  for (const v of Array.isArray(value) ? value : Object.values(value)) markQueryMade(v, original);
}

/** A scalar as Python's `str()` prints it (knack's tsv and tabulate's table cells). */
function pyStr(v: unknown): string {
  if (v === null || v === undefined) return "None";
  if (typeof v === "boolean") return v ? "True" : "False";
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "bigint") return v.toString();
  return "";
}

function tsvCell(v: unknown): string {
  if (Array.isArray(v)) return String(v.length);
  if (v !== null && typeof v === "object") return "";
  return pyStr(v);
}

function tsvRow(v: unknown): string {
  if (Array.isArray(v)) return v.map(tsvCell).join("\t");
  if (v !== null && typeof v === "object") {
    const rec = v as Record<string, unknown>;
    const keys = madeByQuery(rec) ? Object.keys(rec) : Object.keys(rec).sort();
    return keys.map((k) => tsvCell(rec[k])).join("\t");
  }
  if (typeof v === "boolean") return v ? "true" : "false";
  return tsvCell(v);
}

/** knack's `_TsvOutput`: one line per element of a list; a dict's values tab-separated. */
export function formatTsv(value: unknown): string {
  if (value === null || value === undefined) return "";
  const rows = Array.isArray(value) ? value : [value];
  return rows.map((r) => tsvRow(r) + "\n").join("");
}

function capitalizeFirst(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** Keys knack's table leaves out. */
const TABLE_SKIP_KEYS = new Set(["id", "type", "etag"]);

/** knack's `_auto_table_item`: a dict's scalar values, a list's items as Column1…, else Result. */
function tableItem(item: unknown, sortKeys: boolean): Map<string, unknown> {
  const row = new Map<string, unknown>();
  if (Array.isArray(item)) {
    item.forEach((v, i) => row.set(`Column${i + 1}`, v));
  } else if (item !== null && typeof item === "object") {
    const rec = item as Record<string, unknown>;
    const keys = sortKeys ? Object.keys(rec).sort() : Object.keys(rec);
    for (const k of keys) {
      if (TABLE_SKIP_KEYS.has(k)) continue;
      const v = rec[k];
      if (v === null || v === undefined || typeof v === "object") continue;
      row.set(capitalizeFirst(k), v);
    }
  } else {
    row.set("Result", item);
  }
  return row;
}

/**
 * `-o table` as knack prints it (tabulate's "simple" format): columns in the order first seen,
 * each as wide as its widest cell and at least its header plus two, two spaces between, lines
 * without trailing blanks. Keys are sorted unless a `--query` is active or the command has a
 * transformer (then they keep their order).
 */
export function formatTable(value: unknown, transformer?: TableTransformer, queryActive = false): string {
  const source = transformer ? transformer(value) : value;
  const list = Array.isArray(source) ? (source as unknown[]) : [source];
  const sortKeys = !transformer && !queryActive;
  const rows = list.map((item) => tableItem(item, sortKeys));
  const columns: string[] = [];
  for (const r of rows) for (const k of r.keys()) if (!columns.includes(k)) columns.push(k);
  if (columns.length === 0) return "\n"; // az prints an empty line for an empty table
  const cells = rows.map((r) => columns.map((c) => (r.has(c) ? pyStr(r.get(c)) : "")));
  const widths = columns.map((h, i) => Math.max(h.length + 2, ...cells.map((row) => row[i]!.length)));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => v.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  return [line(columns), line(widths.map((w) => "-".repeat(w))), ...cells.map(line)].join("\n") + "\n";
}

/**
 * `-o yaml` as az prints it: PyYAML's `safe_dump` (keys sorted, block style, sequences not
 * indented under their key, strings that YAML 1.1 would read as another type quoted, long
 * scalars folded at 80 columns, a plain scalar on its own ended by `...`). The emitter
 * (`pyyaml.ts`) is loaded only when yaml is asked for.
 */
export async function formatYaml(value: unknown): Promise<string> {
  const { safeDump } = await import("./pyyaml.js");
  return safeDump(value);
}

/**
 * Formats `value` for stdout in `format`; `--query` has been applied already. Nothing at all
 * for `null` (a query that matched nothing), as az.
 */
export async function formatOutput(
  value: unknown,
  format: OutputFormat,
  options: FormatOptions,
): Promise<string> {
  if (value === null || value === undefined) return "";
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
      return formatTable(value, options.queryActive ? undefined : options.table, options.queryActive);
    case "yaml":
    case "yamlc":
      return formatYaml(value);
  }
}

/**
 * A query that is one unquoted JMESPath identifier: `--query accessToken`, what scripts pass in
 * loops. It means the field of that name of an object (JMESPath's `Field`), and null for
 * anything else, so it is answered without loading `jmespath` (~3.7 ms of a ~30 ms cached
 * `get-access-token`, docs/benchmarks.md). `test/cli/output.test.ts` checks the two agree.
 */
const FIELD_QUERY = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** JMESPath's value of the identifier `name` on `value` (an own field of a plain object). */
function fieldOf(value: unknown, name: string): unknown {
  if (Object.prototype.toString.call(value) !== "[object Object]") return null;
  const v = Object.hasOwn(value as object, name) ? (value as Record<string, unknown>)[name] : undefined;
  return v === undefined ? null : v;
}

/**
 * Applies a JMESPath `--query`; `jmespath` is imported only when a query is given, and not for
 * a query of one field name. A query that does not parse, or fails on the result, is a usage
 * error (exit 2), as in az.
 */
export async function applyQuery(value: unknown, query: string): Promise<unknown> {
  // A field of the value is the value's own (nothing the query made: no key order to keep).
  if (FIELD_QUERY.test(query)) return fieldOf(value, query);
  const { default: jmespath } = await import("jmespath");
  let result: unknown;
  try {
    result = jmespath.search(value as Parameters<typeof jmespath.search>[0], query) as unknown;
  } catch (e) {
    throw invalidQuery(query, e);
  }
  const original = new WeakSet<object>();
  collectObjects(value, original);
  markQueryMade(result, original);
  return result;
}

/** Parses `query` without running it, so a bad `--query` fails before the command acts. */
export async function checkQuery(query: string): Promise<void> {
  if (FIELD_QUERY.test(query)) return;
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

/** az's `--verbose` last line (knack: "Command ran in 1.234 seconds"). */
export function commandRan(startedMs: number): string {
  return `Command ran in ${((performance.now() - startedMs) / 1000).toFixed(3)} seconds`;
}

/** az's order of the formats in its messages (knack's `_FORMAT_DICT`). */
const AZ_FORMAT_ORDER = ["json", "jsonc", "yaml", "yamlc", "table", "tsv", "none"];

/** az's words for a bad `-o` (exit 2). */
export function invalidOutputMessage(value: string): string {
  return `'${value}' is not a valid value for '--output'. Allowed values: ${AZ_FORMAT_ORDER.join(", ")}.`;
}

function invalidQuery(query: string, e: unknown): UsageError {
  const why = e instanceof Error ? e.message : String(e);
  return new UsageError(`argument --query: invalid jmespath_type value: '${query}' (${why})`, {
    hint: "See https://jmespath.org for the query syntax.",
  });
}
