/** Argument parsers shared by the eval and bench CLIs (commander calls them; a throw becomes a usage error, exit 1). */
import { InvalidArgumentError } from "commander";
import type { PassageOptions } from "../src/model/index.js";

/** A whole number ≥ 1, e.g. a count of queries, clients or documents. */
export function positiveInteger(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1) throw new InvalidArgumentError(`expected a whole number ≥ 1, got "${value}"`);
  return parsed;
}

/** "120x8" → {maxPieces 120, maxPassages 8} (checked against the model once it loads: src/model/passages.ts). */
export function passageSpec(value: string): PassageOptions {
  const match = /^(\d+)x(\d+)$/.exec(value);
  if (!match) throw new InvalidArgumentError(`expected <maxPieces>x<maxPassages> such as 120x8, got "${value}"`);
  return { maxPieces: Number(match[1]), maxPassages: Number(match[2]) };
}
