/**
 * The tiny training config (training/configs/tiny.json) with a test's overrides, written to a temp directory: the
 * tokenizer path made absolute and exports sent into the temp directory, so a test run never writes into the repo.
 *
 * @example
 *   const config = await writeTinyConfig(tmp, "dp", { training: { workers: 2 } });
 */
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const TINY_CONFIG = fileURLToPath(new URL("../../configs/tiny.json", import.meta.url));

export interface TinyOverrides {
  /** Merged over tiny.json's `training` (after evalEvery: 10 000, so a test validates only when it asks to). */
  training?: Record<string, unknown>;
  /** Merged over tiny.json's `arch`. */
  arch?: Record<string, unknown>;
  /** Whole top-level fields replaced (e.g. `name`, `data`). */
  top?: Record<string, unknown>;
}

/** Writes `<dir>/<name>.json` and returns its path; the export goes to `<dir>/<name>-artifacts`. */
export async function writeTinyConfig(dir: string, name: string, overrides: TinyOverrides = {}): Promise<string> {
  const raw = JSON.parse(await readFile(TINY_CONFIG, "utf8")) as Record<string, any>;
  raw["tokenizer"] = path.resolve(path.dirname(TINY_CONFIG), raw["tokenizer"] as string);
  raw["arch"] = { ...raw["arch"], ...overrides.arch };
  raw["training"] = { ...raw["training"], evalEvery: 10_000, ...overrides.training };
  raw["export"] = { ...raw["export"], outDir: path.join(dir, `${name}-artifacts`) };
  Object.assign(raw, overrides.top);
  const file = path.join(dir, `${name}.json`);
  await writeFile(file, JSON.stringify(raw));
  return file;
}
