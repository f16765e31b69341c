/**
 * The tokenizer JSON as written to disk: one vocabulary entry per line, so vocabulary changes diff readably in git.
 *
 * @module
 */
import type { TokenizerJSON } from "../../../src/tokenizer/index.js";

export function serializeTokenizer(json: TokenizerJSON): string {
  const { vocab, ...header } = json;
  const head = JSON.stringify(header).slice(0, -1);
  return `${head},"vocab":[\n${vocab.map((t) => JSON.stringify(t)).join(",\n")}\n]}\n`;
}
