/**
 * `-o yaml` byte for byte as az 2.45 prints it: knack's `yaml.safe_dump(result,
 * default_flow_style=False, allow_unicode=True)` (keys sorted, PyYAML's defaults width=80 and
 * indent=2). A port of the parts of PyYAML 6's `SafeRepresenter`, `Serializer`, `Resolver` and
 * `Emitter` that JSON-shaped values reach: the emitter's state (column, whitespace, indention,
 * indent stack, open-ended) and its `analyze_scalar`, `choose_scalar_style`, `check_simple_key`,
 * `write_plain`, `write_single_quoted` and `write_double_quoted` follow `yaml/emitter.py` line for
 * line, so folding at width 80, quoting and escaping match. Strings are walked by code point,
 * as Python indexes them. Compared with Debian's python3-yaml in `test/cli/yaml-pyyaml.test.ts`.
 *
 * Loaded only when `-o yaml`/`yamlc` is asked for (`format.ts` imports it lazily).
 */

const BEST_INDENT = 2;
const BEST_WIDTH = 80;

/** PyYAML's YAML 1.1 implicit resolvers: a plain scalar matching one is not a string. */
const IMPLICIT: RegExp[] = [
  // bool
  /^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)\n?$/,
  // float
  /^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))\n?$/,
  // int
  /^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)\n?$/,
  // merge
  /^(?:<<)\n?$/,
  // null (the empty string too)
  /^(?:~|null|Null|NULL|)\n?$/,
  // timestamp
  /^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)\n?$/,
  // value
  /^(?:=)\n?$/,
  // yaml (documentation only in PyYAML, but registered)
  /^(?:!|&|\*)\n?$/,
];
// Python's `$` also matches before a final "\n": hence `\n?$` above.

/** Whether a string written plain would read back as a string (the event's `implicit[0]`). */
function plainIsString(value: string): boolean {
  return !IMPLICIT.some((re) => re.test(value));
}

/** A scalar as the serializer hands it to the emitter. */
interface Scalar {
  kind: "scalar";
  /** The text, one code point per element (Python's indexing). */
  text: string[];
  /** `implicit[0]`: plain style reads back as the same type. */
  plainImplicit: boolean;
}
interface Seq {
  kind: "seq";
  items: Node[];
}
interface Map_ {
  kind: "map";
  pairs: [Scalar, Node][];
}
type Node = Scalar | Seq | Map_;

/** Python's `repr(float)`: shortest round-trip digits, exponent when decpt <= -4 or > 16. */
function pyFloatRepr(v: number): string {
  const [mant, exp] = Math.abs(v).toExponential().split("e") as [string, string];
  const digits = mant.replace(".", "");
  const decpt = Number(exp) + 1;
  let body: string;
  if (decpt <= -4 || decpt > 16) {
    const e = decpt - 1;
    const frac = digits.length > 1 ? `.${digits.slice(1)}` : "";
    body = `${digits[0]}${frac}e${e < 0 ? "-" : "+"}${String(Math.abs(e)).padStart(2, "0")}`;
  } else if (decpt <= 0) body = `0.${"0".repeat(-decpt)}${digits}`;
  else if (decpt >= digits.length) body = `${digits}${"0".repeat(decpt - digits.length)}.0`;
  else body = `${digits.slice(0, decpt)}.${digits.slice(decpt)}`;
  return (v < 0 ? "-" : "") + body;
}

/**
 * A number as PyYAML represents what Python's `json.loads` makes of `JSON.stringify(v)`: an
 * integer literal is an `int`, anything else a `float` (`1.0e+21`, `1.5e-05`, `.nan`, `.inf`).
 */
function numberText(v: number): string {
  if (Number.isNaN(v)) return ".nan";
  if (v === Infinity) return ".inf";
  if (v === -Infinity) return "-.inf";
  const s = String(v);
  if (/^-?[0-9]+$/.test(s)) return s;
  const r = pyFloatRepr(v);
  return !r.includes(".") && r.includes("e") ? r.replace("e", ".0e") : r;
}

function plainScalar(text: string): Scalar {
  return { kind: "scalar", text: Array.from(text), plainImplicit: true };
}

function strScalar(s: string): Scalar {
  return { kind: "scalar", text: Array.from(s), plainImplicit: plainIsString(s) };
}

/** Python's order of `str` keys: by code point (JavaScript's default sort is by UTF-16 unit). */
function byCodePoint(a: string, b: string): number {
  const x = Array.from(a);
  const y = Array.from(b);
  for (let i = 0; i < x.length && i < y.length; i++) {
    const d = x[i]!.codePointAt(0)! - y[i]!.codePointAt(0)!;
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

/** The representer: a JSON value (as `JSON.stringify` sees it) to a node tree. */
function represent(value: unknown): Node {
  if (
    value !== null &&
    typeof value === "object" &&
    typeof (value as { toJSON?: unknown }).toJSON === "function"
  )
    value = (value as { toJSON: () => unknown }).toJSON();
  if (value === null || value === undefined) return plainScalar("null");
  if (typeof value === "boolean") return plainScalar(value ? "true" : "false");
  if (typeof value === "number") return plainScalar(numberText(value));
  if (typeof value === "bigint") return plainScalar(value.toString());
  if (typeof value === "string") return strScalar(value);
  if (Array.isArray(value))
    return {
      kind: "seq",
      items: value.map((v: unknown) =>
        typeof v === "function" || typeof v === "symbol" ? represent(null) : represent(v),
      ),
    };
  if (typeof value === "object") {
    const rec = value as Record<string, unknown>;
    const keys = Object.keys(rec)
      .filter((k) => rec[k] !== undefined && typeof rec[k] !== "function" && typeof rec[k] !== "symbol")
      .sort(byCodePoint);
    return { kind: "map", pairs: keys.map((k) => [strScalar(k), represent(rec[k])]) };
  }
  return plainScalar("null");
}

const BREAKS = "\n\x85\u2028\u2029";
const WHITESPACE_OR_END = "\0 \t\r\n\x85\u2028\u2029";

interface Analysis {
  empty: boolean;
  multiline: boolean;
  allowFlowPlain: boolean;
  allowBlockPlain: boolean;
  allowSingleQuoted: boolean;
}

/** PyYAML's `Emitter.analyze_scalar` (allow_unicode=True). */
function analyzeScalar(s: string[]): Analysis {
  if (s.length === 0)
    return {
      empty: true,
      multiline: false,
      allowFlowPlain: false,
      allowBlockPlain: true,
      allowSingleQuoted: true,
    };
  let blockIndicators = false;
  let flowIndicators = false;
  let lineBreaks = false;
  let specialCharacters = false;
  let leadingSpace = false;
  let leadingBreak = false;
  let trailingSpace = false;
  let trailingBreak = false;
  let breakSpace = false;
  let spaceBreak = false;
  const head = s.slice(0, 3).join("");
  if (head === "---" || head === "...") {
    blockIndicators = true;
    flowIndicators = true;
  }
  let precededByWhitespace = true;
  let followedByWhitespace = s.length === 1 || WHITESPACE_OR_END.includes(s[1]!);
  let previousSpace = false;
  let previousBreak = false;
  for (let index = 0; index < s.length;) {
    const ch = s[index]!;
    if (index === 0) {
      if ("#,[]{}&*!|>'\"%@`".includes(ch)) {
        flowIndicators = true;
        blockIndicators = true;
      }
      if (ch === "?" || ch === ":") {
        flowIndicators = true;
        if (followedByWhitespace) blockIndicators = true;
      }
      if (ch === "-" && followedByWhitespace) {
        flowIndicators = true;
        blockIndicators = true;
      }
    } else {
      if (",?[]{}".includes(ch)) flowIndicators = true;
      if (ch === ":") {
        flowIndicators = true;
        if (followedByWhitespace) blockIndicators = true;
      }
      if (ch === "#" && precededByWhitespace) {
        flowIndicators = true;
        blockIndicators = true;
      }
    }
    if (BREAKS.includes(ch)) lineBreaks = true;
    const cp = ch.codePointAt(0)!;
    if (!(ch === "\n" || (cp >= 0x20 && cp <= 0x7e))) {
      const printable =
        (cp === 0x85 ||
          (cp >= 0xa0 && cp <= 0xd7ff) ||
          (cp >= 0xe000 && cp <= 0xfffd) ||
          (cp >= 0x10000 && cp < 0x10ffff)) &&
        cp !== 0xfeff;
      // allow_unicode: a printable non-ASCII character is written as is.
      if (!printable) specialCharacters = true;
    }
    if (ch === " ") {
      if (index === 0) leadingSpace = true;
      if (index === s.length - 1) trailingSpace = true;
      if (previousBreak) breakSpace = true;
      previousSpace = true;
      previousBreak = false;
    } else if (BREAKS.includes(ch)) {
      if (index === 0) leadingBreak = true;
      if (index === s.length - 1) trailingBreak = true;
      if (previousSpace) spaceBreak = true;
      previousSpace = false;
      previousBreak = true;
    } else {
      previousSpace = false;
      previousBreak = false;
    }
    index += 1;
    precededByWhitespace = WHITESPACE_OR_END.includes(ch);
    followedByWhitespace = index + 1 >= s.length || WHITESPACE_OR_END.includes(s[index + 1]!);
  }
  let allowFlowPlain = true;
  let allowBlockPlain = true;
  let allowSingleQuoted = true;
  if (leadingSpace || leadingBreak || trailingSpace || trailingBreak)
    allowFlowPlain = allowBlockPlain = false;
  if (breakSpace) allowFlowPlain = allowBlockPlain = allowSingleQuoted = false;
  if (spaceBreak || specialCharacters) allowFlowPlain = allowBlockPlain = allowSingleQuoted = false;
  if (lineBreaks) allowFlowPlain = allowBlockPlain = false;
  if (flowIndicators) allowFlowPlain = false;
  if (blockIndicators) allowBlockPlain = false;
  return { empty: false, multiline: lineBreaks, allowFlowPlain, allowBlockPlain, allowSingleQuoted };
}

const ESCAPES: Record<string, string> = {
  "\0": "0",
  "\x07": "a",
  "\x08": "b",
  "\x09": "t",
  "\x0A": "n",
  "\x0B": "v",
  "\x0C": "f",
  "\x0D": "r",
  "\x1B": "e",
  '"': '"',
  "\\": "\\",
  "\x85": "N",
  "\xA0": "_",
  "\u2028": "L",
  "\u2029": "P",
};

function hex(cp: number, width: number): string {
  return cp.toString(16).toUpperCase().padStart(width, "0");
}

/** PyYAML's `Emitter` for the events of one document, with `safe_dump`'s options. */
class Emitter {
  private out: string[] = [];
  private indents: (number | null)[] = [];
  private indent: number | null = null;
  private flowLevel = 0;
  private column = 0;
  private whitespace = true;
  private indention = true;
  private openEnded = false;
  private rootContext = false;
  private simpleKeyContext = false;

  document(root: Node): string {
    this.node(root, { root: true });
    // DocumentEnd (implicit), then StreamEnd.
    this.writeIndent();
    if (this.openEnded) {
      this.writeIndicator("...", true);
      this.writeIndent();
    }
    return this.out.join("");
  }

  private increaseIndent(flow: boolean, indentless = false): void {
    this.indents.push(this.indent);
    if (this.indent === null) this.indent = flow ? BEST_INDENT : 0;
    else if (!indentless) this.indent += BEST_INDENT;
  }

  private popIndent(): void {
    this.indent = this.indents.pop() ?? null;
  }

  /** An empty sequence or mapping, the only ones in flow style (default_flow_style=False): `[]`, `{}`. */
  private writeEmptyFlow(open: string, close: string): void {
    this.writeIndicator(open, true, true);
    this.flowLevel += 1;
    this.increaseIndent(true);
    this.popIndent();
    this.flowLevel -= 1;
    this.writeIndicator(close, false);
  }

  private node(
    n: Node,
    ctx: { root?: boolean; mapping?: boolean; simpleKey?: boolean; analysis?: Analysis },
  ): void {
    this.rootContext = ctx.root ?? false;
    const mappingContext = ctx.mapping ?? false;
    this.simpleKeyContext = ctx.simpleKey ?? false;
    if (n.kind === "scalar") {
      const analysis = ctx.analysis ?? analyzeScalar(n.text);
      const style = this.chooseStyle(n, analysis);
      this.increaseIndent(true);
      const split = !this.simpleKeyContext;
      if (style === '"') this.writeDoubleQuoted(n.text, split);
      else if (style === "'") this.writeSingleQuoted(n.text, split);
      else this.writePlain(n.text, split);
      this.popIndent();
    } else if (n.kind === "seq") {
      if (this.flowLevel > 0 || n.items.length === 0) {
        this.writeEmptyFlow("[", "]");
        return;
      }
      this.increaseIndent(false, mappingContext && !this.indention);
      for (const item of n.items) {
        this.writeIndent();
        this.writeIndicator("-", true, false, true);
        this.node(item, {});
      }
      this.popIndent();
    } else {
      if (this.flowLevel > 0 || n.pairs.length === 0) {
        this.writeEmptyFlow("{", "}");
        return;
      }
      this.increaseIndent(false);
      for (const [key, value] of n.pairs) {
        this.writeIndent();
        const analysis = analyzeScalar(key.text);
        // check_simple_key: the key's length plus its tag's (`!!str`, 5) under 128, one line.
        if (key.text.length + 5 < 128 && !analysis.empty && !analysis.multiline) {
          this.node(key, { mapping: true, simpleKey: true, analysis });
          this.writeIndicator(":", false);
          this.node(value, { mapping: true });
        } else {
          this.writeIndicator("?", true, false, true);
          this.node(key, { mapping: true, analysis });
          this.writeIndent();
          this.writeIndicator(":", true, false, true);
          this.node(value, { mapping: true });
        }
      }
      this.popIndent();
    }
  }

  /** `choose_scalar_style` for an event with no requested style (`safe_dump`'s). */
  private chooseStyle(n: Scalar, a: Analysis): "" | "'" | '"' {
    if (
      n.plainImplicit &&
      !(this.simpleKeyContext && (a.empty || a.multiline)) &&
      ((this.flowLevel > 0 && a.allowFlowPlain) || (this.flowLevel === 0 && a.allowBlockPlain))
    )
      return "";
    if (a.allowSingleQuoted && !(this.simpleKeyContext && a.multiline)) return "'";
    return '"';
  }

  private write(data: string, length: number): void {
    this.column += length;
    this.out.push(data);
  }

  private writeIndicator(
    indicator: string,
    needWhitespace: boolean,
    whitespace = false,
    indention = false,
  ): void {
    const data = this.whitespace || !needWhitespace ? indicator : " " + indicator;
    this.whitespace = whitespace;
    this.indention = this.indention && indention;
    this.openEnded = false;
    this.write(data, data.length);
  }

  private writeIndent(): void {
    const indent = this.indent ?? 0;
    if (!this.indention || this.column > indent || (this.column === indent && !this.whitespace))
      this.writeLineBreak();
    if (this.column < indent) {
      this.whitespace = true;
      this.out.push(" ".repeat(indent - this.column));
      this.column = indent;
    }
  }

  private writeLineBreak(data = "\n"): void {
    this.whitespace = true;
    this.indention = true;
    this.column = 0;
    this.out.push(data);
  }

  private writeBreaks(text: string[], start: number, end: number): void {
    if (text[start] === "\n") this.writeLineBreak();
    for (let i = start; i < end; i++) this.writeLineBreak(text[i]);
  }

  private writeSingleQuoted(text: string[], split: boolean): void {
    this.writeIndicator("'", true);
    let spaces = false;
    let breaks = false;
    let start = 0;
    for (let end = 0; end <= text.length; end++) {
      const ch = end < text.length ? text[end] : undefined;
      if (spaces) {
        if (ch === undefined || ch !== " ") {
          if (start + 1 === end && this.column > BEST_WIDTH && split && start !== 0 && end !== text.length)
            this.writeIndent();
          else this.write(text.slice(start, end).join(""), end - start);
          start = end;
        }
      } else if (breaks) {
        if (ch === undefined || !BREAKS.includes(ch)) {
          this.writeBreaks(text, start, end);
          this.writeIndent();
          start = end;
        }
      } else if (ch === undefined || ` ${BREAKS}`.includes(ch) || ch === "'") {
        if (start < end) {
          this.write(text.slice(start, end).join(""), end - start);
          start = end;
        }
      }
      if (ch === "'") {
        this.write("''", 2);
        start = end + 1;
      }
      if (ch !== undefined) {
        spaces = ch === " ";
        breaks = BREAKS.includes(ch);
      }
    }
    this.writeIndicator("'", false);
  }

  private writeDoubleQuoted(text: string[], split: boolean): void {
    this.writeIndicator('"', true);
    let start = 0;
    for (let end = 0; end <= text.length; end++) {
      const ch = end < text.length ? text[end] : undefined;
      const cp = ch === undefined ? -1 : ch.codePointAt(0)!;
      if (
        ch === undefined ||
        '"\\\x85\u2028\u2029\uFEFF'.includes(ch) ||
        !((cp >= 0x20 && cp <= 0x7e) || (cp >= 0xa0 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd))
      ) {
        if (start < end) {
          this.write(text.slice(start, end).join(""), end - start);
          start = end;
        }
        if (ch !== undefined) {
          const esc = ESCAPES[ch];
          const data =
            esc !== undefined
              ? `\\${esc}`
              : cp <= 0xff
                ? `\\x${hex(cp, 2)}`
                : cp <= 0xffff
                  ? `\\u${hex(cp, 4)}`
                  : `\\U${hex(cp, 8)}`;
          this.write(data, data.length);
          start = end + 1;
        }
      }
      if (
        end > 0 &&
        end < text.length - 1 &&
        (ch === " " || start >= end) &&
        this.column + (end - start) > BEST_WIDTH &&
        split
      ) {
        const data = text.slice(start, end).join("") + "\\";
        const length = end - start + 1;
        if (start < end) start = end;
        this.write(data, length);
        this.writeIndent();
        this.whitespace = false;
        this.indention = false;
        if (text[start] === " ") this.write("\\", 1);
      }
    }
    this.writeIndicator('"', false);
  }

  private writePlain(text: string[], split: boolean): void {
    if (this.rootContext) this.openEnded = true;
    if (text.length === 0) return;
    if (!this.whitespace) this.write(" ", 1);
    this.whitespace = false;
    this.indention = false;
    let spaces = false;
    let breaks = false;
    let start = 0;
    for (let end = 0; end <= text.length; end++) {
      const ch = end < text.length ? text[end] : undefined;
      if (spaces) {
        if (ch !== " ") {
          if (start + 1 === end && this.column > BEST_WIDTH && split) {
            this.writeIndent();
            this.whitespace = false;
            this.indention = false;
          } else this.write(text.slice(start, end).join(""), end - start);
          start = end;
        }
      } else if (breaks) {
        if (ch === undefined || !BREAKS.includes(ch)) {
          this.writeBreaks(text, start, end);
          this.writeIndent();
          this.whitespace = false;
          this.indention = false;
          start = end;
        }
      } else if (ch === undefined || ` ${BREAKS}`.includes(ch)) {
        this.write(text.slice(start, end).join(""), end - start);
        start = end;
      }
      if (ch !== undefined) {
        spaces = ch === " ";
        breaks = BREAKS.includes(ch);
      }
    }
  }
}

/** `yaml.safe_dump(value, default_flow_style=False, allow_unicode=True)`, as knack calls it. */
export function safeDump(value: unknown): string {
  return new Emitter().document(represent(value));
}
