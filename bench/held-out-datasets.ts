/**
 * `npm run eval:held-out-datasets -- [--sources debian,wordnet] [--out bench/out/datasets] [--validation-fraction 0.01]`
 *
 * Writes the Debian and WordNet pairs every trainer holds out as BEIR datasets, so `npm run eval` can score a model on
 * more than SciFact: `<out>/<source>-held-out/{corpus.jsonl, queries.jsonl, qrels/test.tsv}`. Which pairs are held out
 * is a salted hash of the document (training/src/data/pairs.ts), independent of seed, caps and the run, so no shipped
 * model trained on any of these documents (each used `data.validationFraction` 0.01, the default). The corpus is the
 * source's held-out documents; a query is a held-out pair's query text, judged relevant to every held-out document it
 * was paired with (a WordNet term with several senses, a Debian description shared by packages).
 *
 * These are short-query, short-document tasks unlike SciFact; they test that hybrid never falls below BM25 and that
 * the dense side generalises beyond one domain. Prints one JSON line: the datasets written and their sizes.
 */
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { Command, InvalidArgumentError } from "commander";
import { normKey } from "../training/src/data/pairs.js";
import { EXTRA_SOURCES, heldOutPairSources, type ExtraSource } from "../training/src/router/router-training.js";

const DEFAULT_VALIDATION_FRACTION = 0.01;
/** The trainer's default (training/src/train/config.ts): shorter documents never reach a pair set. */
const MIN_DOC_CHARS = 16;

function sourceList(value: string): ExtraSource[] {
  const names = value.split(",").map((s) => s.trim()).filter(Boolean);
  const unknown = names.filter((n) => !(EXTRA_SOURCES as readonly string[]).includes(n));
  if (names.length === 0 || unknown.length > 0) {
    throw new InvalidArgumentError(`expected a comma-separated list of ${EXTRA_SOURCES.join(", ")}, got "${value}"`);
  }
  return names as ExtraSource[];
}

function fraction(value: string): number {
  const parsed = Number(value);
  if (!(parsed > 0 && parsed < 1)) throw new InvalidArgumentError(`expected a fraction in (0, 1), got "${value}"`);
  return parsed;
}

const program = new Command()
  .name("npm run eval:held-out-datasets --")
  .description("Write the Debian and WordNet pairs the trainers hold out as BEIR datasets for npm run eval.")
  .option("--sources <list>", `comma-separated: ${EXTRA_SOURCES.join(", ")}`, sourceList, [...EXTRA_SOURCES])
  .option("--out <dir>", "parent directory of the datasets", "bench/out/datasets")
  .option("--validation-fraction <x>", "the held-out fraction the models were trained with", fraction, DEFAULT_VALIDATION_FRACTION)
  .parse();
const options = program.opts<{ sources: ExtraSource[]; out: string; validationFraction: number }>();

const jsonl = (rows: readonly unknown[]) => rows.map((row) => JSON.stringify(row)).join("\n") + "\n";

async function main(): Promise<void> {
  const base = path.resolve(process.env["INIT_CWD"] ?? process.cwd(), options.out);
  const sources = await heldOutPairSources(options.sources, {
    validationFraction: options.validationFraction,
    minDocChars: MIN_DOC_CHARS,
    perSource: Number.MAX_SAFE_INTEGER,
    seed: 42,
  });
  const written = [];
  for (const source of sources) {
    // One query per distinct text: a text held out with several documents is judged against all of them.
    const byText = new Map<string, { id: string; text: string; relevant: Set<string> }>();
    for (const query of source.queries) {
      const key = normKey(query.text);
      let merged = byText.get(key);
      if (!merged) {
        merged = { id: `q${byText.size}`, text: query.text, relevant: new Set() };
        byText.set(key, merged);
      }
      for (const [docId, gain] of query.judgements) if (gain > 0) merged.relevant.add(docId);
    }
    const dir = path.join(base, source.dataset);
    await mkdir(path.join(dir, "qrels"), { recursive: true });
    await writeFile(path.join(dir, "corpus.jsonl"), jsonl(source.documents.map((d) => ({ _id: d.id, title: "", text: d.text }))));
    await writeFile(path.join(dir, "queries.jsonl"), jsonl([...byText.values()].map((q) => ({ _id: q.id, text: q.text }))));
    const qrels = ["query-id\tcorpus-id\tscore", ...[...byText.values()].flatMap((q) => [...q.relevant].map((d) => `${q.id}\t${d}\t1`))];
    await writeFile(path.join(dir, "qrels", "test.tsv"), qrels.join("\n") + "\n");
    written.push({ dataset: source.dataset, dir, documents: source.documents.length, queries: byText.size, judgements: qrels.length - 1 });
  }
  console.log(JSON.stringify({ validationFraction: options.validationFraction, datasets: written }));
}

main().catch((error: unknown) => {
  console.error(`held-out datasets failed: ${(error as Error).message}`);
  process.exit(1);
});
