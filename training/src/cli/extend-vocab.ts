/**
 * Extends a model's WordPiece vocabulary with the frequent words it fragments (tokenizer/extend-vocab.ts) and writes
 * the new tokenizer JSON. A training config that names it as `tokenizer`, with the same artifact as `initFrom`,
 * continues that model with one row per added word, started from GloVe through a map fitted to the trained rows
 * (model/vocab-extension.ts).
 *
 * The words come from the shared training corpora (Debian, WordNet, the SciFact corpus — never queries) or, with
 * --corpus, from a user's corpus directory (BEIR or JSONL, as `npm run train -- --adapt` reads it; documents only).
 *
 * Relative paths are resolved against the directory npm was started from (INIT_CWD), as `npm run train` does.
 *
 * @example
 *   npm run extend-vocab -- --base model-artifacts/taesr-edge-small@0.5.0 --add 8192 --out training/vocab/taesr-8k-ext8k.json
 *   npm run extend-vocab -- --base model-artifacts/taesr-edge-small@0.5.0 --corpus ../shared/datasets/scifact --add 4096 --out /tmp/sci.json
 *
 * @module
 */
import { readFileSync, statSync, writeFileSync, mkdirSync } from "node:fs";
import path from "node:path";
import { Command } from "commander";
import { collect, positiveInteger } from "./options.js";
import cliProgress from "cli-progress";
import type { TokenizerJSON } from "../../../src/tokenizer/index.js";
import { parseManifest } from "../../../src/model/manifest.js";
import { CORPUS_DOCUMENTS, type CorpusName } from "../data/corpora.js";
import { adaptRecords } from "../data/adapt-corpus.js";
import { DEFAULT_MIN_FREQUENCY, extendVocabulary } from "../tokenizer/extend-vocab.js";
import { serializeTokenizer } from "../tokenizer/serialize.js";

const SHARED_CORPORA: CorpusName[] = ["debian", "wordnet", "scifact"];

/** The base tokenizer: a tokenizer JSON file, or the one an artifact directory's manifest names. */
function readBase(base: string): { json: TokenizerJSON; file: string } {
  let file = base;
  let isDir = false;
  try {
    isDir = statSync(base).isDirectory();
  } catch {
    throw new Error(`--base ${base} does not exist (an artifact directory or a tokenizer JSON file)`);
  }
  if (isDir) {
    let manifestText: string;
    try {
      manifestText = readFileSync(path.join(base, "manifest.json"), "utf8");
    } catch {
      throw new Error(`--base ${base} has no manifest.json: is it a model artifact directory?`);
    }
    file = path.join(base, ...parseManifest(manifestText).tokenizer.split("/"));
  }
  try {
    return { json: JSON.parse(readFileSync(file, "utf8")) as TokenizerJSON, file };
  } catch (error) {
    throw new Error(`cannot read the tokenizer ${file}: ${(error as Error).message}`);
  }
}

async function* documentTexts(corpora: string[], onText: () => void): AsyncGenerator<string> {
  if (corpora.length === 0) {
    for (const name of SHARED_CORPORA) {
      for await (const doc of CORPUS_DOCUMENTS[name]()) {
        onText();
        yield `${doc.title}\n${doc.text}`;
      }
    }
    return;
  }
  for (const dir of corpora) {
    for await (const record of adaptRecords(dir)) {
      onText();
      yield `${record.title}\n${record.text}`;
    }
  }
}

async function main(argv: string[]): Promise<void> {
  const program = new Command()
    .name("extend-vocab")
    .description("Append the frequent words a model's vocabulary fragments, as whole-word pieces, and write the tokenizer JSON.")
    .requiredOption("--base <dir|file>", "the model artifact directory (or tokenizer JSON) whose vocabulary is extended")
    .requiredOption("--out <file>", "where to write the extended tokenizer JSON")
    .option("--add <n>", "append at most this many words", positiveInteger, 8192)
    .option("--min-frequency <n>", "fewest occurrences a word needs", positiveInteger, DEFAULT_MIN_FREQUENCY)
    .option("--corpus <dir>", "read this corpus directory (BEIR or JSONL; repeatable) instead of the shared corpora", collect, [])
    .option("--no-progress", "no progress bar")
    .showHelpAfterError()
    .parse(argv);
  const opts = program.opts<{ base: string; out: string; add: number; minFrequency: number; corpus: string[]; progress: boolean }>();

  const cwd = process.env["INIT_CWD"] ?? process.cwd();
  const base = readBase(path.resolve(cwd, opts.base));
  const bar = opts.progress ? new cliProgress.SingleBar({ format: "counting words {value} texts", hideCursor: true }, cliProgress.Presets.shades_classic) : undefined;
  let texts = 0;
  bar?.start(0, 0);
  const t0 = performance.now();
  const { json, added, stats } = await extendVocabulary(
    documentTexts(opts.corpus.map((dir) => path.resolve(cwd, dir)), () => {
      texts += 1;
      if (texts % 1000 === 0) bar?.update(texts);
    }),
    base.json,
    { add: opts.add, minFrequency: opts.minFrequency },
  );
  bar?.update(texts);
  bar?.stop();

  const out = path.resolve(cwd, opts.out);
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, serializeTokenizer(json));
  const pct = (n: number) => `${((100 * n) / stats.occurrences).toFixed(1)}%`;
  console.log(
    `Wrote ${out}: ${base.json.vocab.length} + ${added.length} = ${json.vocab.length} entries (base ${base.file}); ` +
      `${stats.texts} texts, ${stats.words} distinct words, ${stats.candidates} fragmented candidates (${pct(stats.candidateOccurrences)} of ` +
      `word occurrences), the added ones ${pct(stats.addedOccurrences)}; ${((performance.now() - t0) / 1000).toFixed(1)} s.`,
  );
  console.log(`Most frequent added: ${added.slice(0, 12).map((a) => `${a.word} (${a.basePieces.join(" ")})`).join(", ")}`);
  if (added.length < opts.add) console.warn(`Note: only ${added.length} words qualified (asked for ${opts.add}); lower --min-frequency or add text.`);
}

main(process.argv).catch((err: unknown) => {
  console.error(`extend-vocab: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
