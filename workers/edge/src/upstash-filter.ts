/**
 * Our metadata filters (src/retrieval/metadata-filter.ts) as Upstash Vector filter strings. `matchesFilter` there is the
 * reference; each operator is written so Upstash selects the same documents, under the assumptions noted below. What
 * Upstash cannot express is refused with {@link UnsupportedFilterError} rather than approximated.
 *
 * Translation (x = the metadata path under `prefix`; Upstash's grammar is documented at
 * https://upstash.com/docs/vector/features/filtering):
 *   { x: v } / $eq v   → (x = v OR x CONTAINS v)       an array field matches when any element does
 *   $ne v              → (HAS NOT FIELD x OR x != v)   a missing field satisfies $ne, as in MongoDB
 *   $in [a, b]         → (x IN (a, b) OR x CONTAINS a OR x CONTAINS b);  $in [] matches nothing
 *   $nin [a, b]        → (HAS NOT FIELD x OR x NOT IN (a, b));            $nin [] matches everything
 *   $gt/$gte/$lt/$lte n → x > n, x >= n, x < n, x <= n  (numbers only: Upstash does not order strings)
 *   $exists true/false → HAS FIELD x / HAS NOT FIELD x
 *   $and / $or         → ( … AND … ) / ( … OR … )
 *
 * Assumptions about Upstash that no live index confirmed (none was reachable from CI): an operator applied to a value
 * of another type (`=` on an array, `CONTAINS` on a string, `>` on a string) is false rather than an error; `!=` and
 * `NOT IN` are false on a missing field (hence the explicit HAS NOT FIELD, which is right either way). Known
 * divergences, then: `$ne`/`$nin` on an array-valued field, or against a value of another type than the field's
 * (`{ year: { $ne: "2020" } }` on a numeric year), exclude the document where the reference keeps it. Spelling those
 * cases out (`NOT CONTAINS`, one clause per type) would break the common scalar case should Upstash answer them
 * differently than assumed.
 *
 * Literals: `null` has no Upstash literal and is refused; booleans are written `true`/`false`; numbers in plain
 * decimal (Upstash's grammar shows no exponent form); strings in the quote they do not contain, so most strings need
 * no escape at all, and backslash escapes (`\\`, `\'`) only for strings holding a backslash or both quotes.
 *
 * Constant sub-filters ($in [], $or [], an empty condition) are folded away, so the result is either a filter string,
 * `true` (no filter needed) or `false` (nothing can match: the caller can skip the query).
 *
 * @module
 * @example
 *   toUpstashFilter({ lang: "en", year: { $gte: 2020 } }, "meta.");
 *   // "((meta.lang = 'en' OR meta.lang CONTAINS 'en') AND meta.year >= 2020)"
 */
import { FILTER_OPERATORS, FILTER_PATH, type MetadataFilter } from "../../../src/retrieval/metadata-filter.js";

/** A filter (or part of one) that Upstash's filter language cannot express. */
export class UnsupportedFilterError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UnsupportedFilterError";
  }
}

/** A translated filter: an Upstash filter string, or a constant when the filter is trivially true or false. */
export type UpstashFilter = string | boolean;

/** AND of parts with constants folded: any false → false, true parts dropped, none left → true. */
export function allOf(parts: readonly UpstashFilter[]): UpstashFilter {
  if (parts.includes(false)) return false;
  const terms = parts.filter((part): part is string => part !== true);
  if (terms.length === 0) return true;
  return terms.length === 1 ? terms[0]! : `(${terms.join(" AND ")})`;
}

/** OR of parts with constants folded: any true → true, false parts dropped, none left → false. */
export function anyOf(parts: readonly UpstashFilter[]): UpstashFilter {
  if (parts.includes(true)) return true;
  const terms = parts.filter((part): part is string => part !== false);
  if (terms.length === 0) return false;
  return terms.length === 1 ? terms[0]! : `(${terms.join(" OR ")})`;
}

/** A string literal in Upstash's filter grammar. */
export function quoteString(value: string): string {
  const hasSingle = value.includes("'");
  const hasDouble = value.includes('"');
  if (!value.includes("\\") && !(hasSingle && hasDouble)) return hasSingle ? `"${value}"` : `'${value}'`;
  return `'${value.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

/** A number in plain decimal: JavaScript writes 1e21 and 1e-7 in exponent form, which Upstash's grammar does not show. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) throw new UnsupportedFilterError(`cannot filter on the number ${value}`);
  const text = String(value);
  const match = /^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(text);
  if (!match) return text;
  const [, sign, lead, fraction = "", exponentText] = match;
  const digits = lead! + fraction;
  const exponent = Number(exponentText);
  if (exponent >= 0) return sign + digits.padEnd(exponent + 1, "0");
  return `${sign}0.${"0".repeat(-exponent - 1)}${digits}`;
}

function literal(value: unknown, where: string): string {
  if (typeof value === "string") return quoteString(value);
  if (typeof value === "number") return formatNumber(value);
  if (typeof value === "boolean") return value ? "true" : "false";
  if (value === null) throw new UnsupportedFilterError(`${where}: Upstash Vector filters have no null literal`);
  throw new UnsupportedFilterError(`${where}: expected a string, number or boolean, got ${JSON.stringify(value)}`);
}

function listOf(value: unknown, where: string): unknown[] {
  if (!Array.isArray(value)) throw new UnsupportedFilterError(`${where} takes an array`);
  return value;
}

const COMPARISONS = { $gt: ">", $gte: ">=", $lt: "<", $lte: "<=" } as const;
const OPERATORS = new Set<string>(FILTER_OPERATORS);

function equals(field: string, value: string): UpstashFilter {
  return anyOf([`${field} = ${value}`, `${field} CONTAINS ${value}`]);
}

function condition(field: string, path: string, clause: unknown): UpstashFilter {
  if (clause === null || typeof clause !== "object") return equals(field, literal(clause, path));
  if (Array.isArray(clause)) {
    throw new UnsupportedFilterError(`${path}: an array is not a value to compare with; use { "$in": [...] }`);
  }
  const parts: UpstashFilter[] = [];
  for (const [operator, operand] of Object.entries(clause)) {
    if (operand === undefined) continue;
    if (!OPERATORS.has(operator)) {
      throw new UnsupportedFilterError(`${path}: unknown operator "${operator}" (nested fields are addressed by dotted paths)`);
    }
    const where = `${path}.${operator}`;
    switch (operator) {
      case "$eq":
        parts.push(equals(field, literal(operand, where)));
        break;
      case "$ne":
        parts.push(anyOf([`HAS NOT FIELD ${field}`, `${field} != ${literal(operand, where)}`]));
        break;
      case "$in": {
        const values = listOf(operand, where).map((value) => literal(value, where));
        if (values.length === 0) parts.push(false);
        else parts.push(anyOf([`${field} IN (${values.join(", ")})`, ...values.map((value) => `${field} CONTAINS ${value}`)]));
        break;
      }
      case "$nin": {
        const values = listOf(operand, where).map((value) => literal(value, where));
        if (values.length > 0) parts.push(anyOf([`HAS NOT FIELD ${field}`, `${field} NOT IN (${values.join(", ")})`]));
        break;
      }
      case "$exists":
        if (typeof operand !== "boolean") throw new UnsupportedFilterError(`${where} takes true or false`);
        parts.push(`${operand ? "HAS FIELD" : "HAS NOT FIELD"} ${field}`);
        break;
      default: {
        if (typeof operand !== "number") {
          throw new UnsupportedFilterError(`${where}: Upstash Vector compares numbers only, not ${JSON.stringify(operand)}`);
        }
        parts.push(`${field} ${COMPARISONS[operator as keyof typeof COMPARISONS]} ${formatNumber(operand)}`);
      }
    }
  }
  return allOf(parts);
}

function translate(filter: MetadataFilter, prefix: string, at: string): UpstashFilter {
  if (filter === null || typeof filter !== "object" || Array.isArray(filter)) {
    throw new UnsupportedFilterError(`${at || "filter"} must be an object`);
  }
  const parts: UpstashFilter[] = [];
  for (const [key, clause] of Object.entries(filter)) {
    if (clause === undefined) continue;
    if (key === "$and" || key === "$or") {
      const inner = listOf(clause, `${at}${key}`).map((sub, i) => translate(sub as MetadataFilter, prefix, `${at}${key}.${i}.`));
      parts.push(key === "$and" ? allOf(inner) : anyOf(inner));
    } else if (key.startsWith("$")) {
      throw new UnsupportedFilterError(`${at}${key}: unknown operator (the combinators are $and and $or)`);
    } else if (FILTER_PATH.test(key)) {
      parts.push(condition(prefix + key, at + key, clause));
    } else {
      throw new UnsupportedFilterError(`"${at}${key}" is not a metadata path (letters, digits, _ and -, joined by dots)`);
    }
  }
  return allOf(parts);
}

/**
 * The Upstash filter selecting the documents `filter` matches, with every metadata path written under `prefix` (where
 * the adapter stores user metadata). Throws {@link UnsupportedFilterError} for what Upstash cannot express.
 */
export function toUpstashFilter(filter: MetadataFilter | undefined, prefix = ""): UpstashFilter {
  return filter === undefined ? true : translate(filter, prefix, "");
}
