/**
 * Metadata filters for search: a small Mongo-style language that every index backend understands the same way. The
 * embedded index evaluates it here ({@link matchesFilter}); the Upstash adapter translates it to Upstash's filter
 * syntax. Platform-neutral.
 *
 * Grammar (every key of one object must hold — AND):
 *   filter    := { [path]: scalar | condition, $and?: filter[], $or?: filter[] }
 *   condition := { $eq | $ne: scalar, $in | $nin: scalar[], $gt | $gte | $lt | $lte: number | string, $exists: boolean }
 *   path      := a top-level metadata key, or dotted keys into nested objects ("source.site")
 *   scalar    := string | number | boolean | null
 *
 * Semantics chosen to be unsurprising: a bare scalar means `$eq`; comparisons only hold between values of the same
 * type (a string is never greater than a number); `$ne`/`$nin` hold for a missing field (as in MongoDB); an array
 * field matches `$eq`/`$in` when any element does ("tags": ["a", "b"] matches {tags: "a"}).
 *
 * @module
 * @example
 *   matchesFilter({ lang: "en", year: 2024 }, { lang: "en", year: { $gte: 2020 } }); // true
 */

export type FilterScalar = string | number | boolean | null;

export interface FilterCondition {
  $eq?: FilterScalar;
  $ne?: FilterScalar;
  $in?: FilterScalar[];
  $nin?: FilterScalar[];
  $gt?: number | string;
  $gte?: number | string;
  $lt?: number | string;
  $lte?: number | string;
  $exists?: boolean;
}

export interface MetadataFilter {
  $and?: MetadataFilter[];
  $or?: MetadataFilter[];
  [path: string]: FilterScalar | FilterCondition | MetadataFilter[] | undefined;
}

export const FILTER_OPERATORS = ["$eq", "$ne", "$in", "$nin", "$gt", "$gte", "$lt", "$lte", "$exists"] as const;

/** Metadata paths are plain keys joined by dots; no operators, brackets or empty segments. */
export const FILTER_PATH = /^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)*$/;

const MISSING = Symbol("missing");

function lookup(metadata: unknown, path: string): unknown {
  let value: unknown = metadata;
  for (const key of path.split(".")) {
    if (value === null || typeof value !== "object" || Array.isArray(value) || !Object.hasOwn(value, key)) return MISSING;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

function isCondition(value: unknown): value is FilterCondition {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function equals(value: unknown, expected: FilterScalar): boolean {
  if (Array.isArray(value)) return value.some((element) => element === expected);
  return value === expected;
}

function compare(value: unknown, bound: number | string, holds: (order: number) => boolean): boolean {
  if (typeof value !== typeof bound || (typeof value !== "number" && typeof value !== "string")) return false;
  const order = value < bound ? -1 : value > bound ? 1 : 0;
  return holds(order);
}

function conditionHolds(value: unknown, condition: FilterCondition): boolean {
  const present = value !== MISSING;
  if (condition.$exists !== undefined && condition.$exists !== present) return false;
  if (condition.$eq !== undefined && !(present && equals(value, condition.$eq))) return false;
  if (condition.$ne !== undefined && present && equals(value, condition.$ne)) return false;
  if (condition.$in !== undefined && !(present && condition.$in.some((option) => equals(value, option)))) return false;
  if (condition.$nin !== undefined && present && condition.$nin.some((option) => equals(value, option))) return false;
  if (condition.$gt !== undefined && !compare(value, condition.$gt, (o) => o > 0)) return false;
  if (condition.$gte !== undefined && !compare(value, condition.$gte, (o) => o >= 0)) return false;
  if (condition.$lt !== undefined && !compare(value, condition.$lt, (o) => o < 0)) return false;
  if (condition.$lte !== undefined && !compare(value, condition.$lte, (o) => o <= 0)) return false;
  return true;
}

/** True when `metadata` (a document's metadata object, or null for none) satisfies every clause of `filter`. */
export function matchesFilter(metadata: unknown, filter: MetadataFilter): boolean {
  for (const [key, clause] of Object.entries(filter)) {
    if (clause === undefined) continue;
    if (key === "$and") {
      if (!(clause as MetadataFilter[]).every((inner) => matchesFilter(metadata, inner))) return false;
    } else if (key === "$or") {
      if (!(clause as MetadataFilter[]).some((inner) => matchesFilter(metadata, inner))) return false;
    } else {
      const value = lookup(metadata, key);
      const condition: FilterCondition = isCondition(clause) ? clause : { $eq: clause as FilterScalar };
      if (!conditionHolds(value, condition)) return false;
    }
  }
  return true;
}
