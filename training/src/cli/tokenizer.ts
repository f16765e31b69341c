/**
 * Trains the project's WordPiece vocabulary from the shared corpora (Debian descriptions, WordNet glosses, SciFact
 * abstracts — never SciFact queries) and writes the tokenizer JSON.
 *
 * @example
 *   npm run -w training tokenizer -- --out vocab/taesr-8k.json --vocab-size 8192 --min-frequency 3
 *   npm run -w training tokenizer -- --out /tmp/small.json --vocab-size 2000 --limit 5000   # quick run
 *
 * @module
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Command } from "commander";
import { positiveInteger } from "./options.js";
import cliProgress from "cli-progress";
import { WordPieceTokenizer } from "../../../src/tokenizer/index.js";
import { CORPUS_DOCUMENTS, type CorpusName } from "../data/corpora.js";
import { trainVocab, type TrainProgress } from "../tokenizer/train-vocab.js";
import { serializeTokenizer } from "../tokenizer/serialize.js";

const CORPORA: CorpusName[] = ["debian", "wordnet", "scifact"];

/** Every corpus's title and text as one training text per record; `limit` applies per corpus. */
async function* corpusTexts(limit: number | undefined): AsyncGenerator<string> {
  for (const name of CORPORA) {
    for await (const doc of CORPUS_DOCUMENTS[name]({ limit })) yield `${doc.title}\n${doc.text}`;
  }
}

async function main(argv: string[]): Promise<void> {
  const program = new Command()
    .name("tokenizer")
    .description("Train the TAESR WordPiece vocabulary from the shared corpora (SciFact corpus only, never queries).")
    .requiredOption("--out <file>", "where to write the tokenizer JSON")
    .option("--vocab-size <n>", "target vocabulary size, specials included", positiveInteger, 8192)
    .option("--min-frequency <n>", "minimum pair frequency to merge (also the minimum character frequency)", positiveInteger, 3)
    .option("--limit <n>", "read at most this many records per corpus (quick runs)", positiveInteger)
    .showHelpAfterError()
    .parse(argv);
  const opts = program.opts<{ out: string; vocabSize: number; minFrequency: number; limit?: number }>();

  const bar = new cliProgress.SingleBar(
    { format: "{phase} [{bar}] {value}/{total} {detail}", hideCursor: true, etaBuffer: 50 },
    cliProgress.Presets.shades_classic,
  );
  let phase: TrainProgress["phase"] | undefined;
  const onProgress = (p: TrainProgress): void => {
    if (p.phase === "count") {
      if (phase !== "count") bar.start(0, 0, { phase: "counting words", detail: "" });
      phase = "count";
      bar.setTotal(p.texts);
      bar.update(p.texts, { detail: `${p.uniqueWords} unique words` });
    } else {
      if (phase !== "merge") {
        bar.stop();
        bar.start(p.targetVocabSize, 0, { phase: "merging", detail: "" });
      }
      phase = "merge";
      bar.update(p.vocabSize, { detail: "tokens" });
    }
  };

  const t0 = performance.now();
  const { tokenizer, stats } = await trainVocab(corpusTexts(opts.limit), {
    vocabSize: opts.vocabSize,
    minFrequency: opts.minFrequency,
    onProgress,
  });
  bar.stop();
  // Round-trip through the runtime loader: fails here, not at the edge, if the JSON is malformed.
  WordPieceTokenizer.fromJSON(tokenizer);

  const out = path.resolve(opts.out);
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, serializeTokenizer(tokenizer));
  const seconds = ((performance.now() - t0) / 1000).toFixed(1);
  console.log(
    `Wrote ${out}: ${tokenizer.vocab.length} tokens (${stats.alphabetTokens} alphabet, ${stats.merges} merges, ` +
      `stopped by ${stats.stoppedBy}) from ${stats.texts} texts, ${stats.uniqueWords} unique words ` +
      `(${stats.trainedWords} trained) in ${seconds} s (count ${(stats.countMs / 1000).toFixed(1)} s, ` +
      `merge ${(stats.mergeMs / 1000).toFixed(1)} s).`,
  );
  if (tokenizer.vocab.length < opts.vocabSize) {
    console.warn(`Note: fewer tokens than requested (${opts.vocabSize}); lower --min-frequency or add text.`);
  }
}

main(process.argv).catch((err: unknown) => {
  console.error(`tokenizer: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
