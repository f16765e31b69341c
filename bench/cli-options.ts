/** Argument parsers shared by the eval and bench CLIs (commander calls them; a throw becomes a usage error, exit 1). */
import { InvalidArgumentError } from "commander";

/** A whole number ≥ 1, e.g. a count of queries, clients or documents. */
export function positiveInteger(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1) throw new InvalidArgumentError(`expected a whole number ≥ 1, got "${value}"`);
  return parsed;
}
