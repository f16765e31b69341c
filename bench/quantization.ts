/**
 * `npm run eval:quantization`: what each compression keeps of the fp32 model, with the noise of the measurement.
 *
 *   npm run eval:quantization -- --dataset ../shared/datasets/scifact [--dataset <dir>[:<split>] …] [--model <dir>]
 *                                [--dims 128] [--out <file>]
 *
 * A NDCG@10 ratio on a few hundred queries moves by a percent when a handful of near-tied documents swap places, so a
 * ratio alone cannot say whether int8 "keeps 99 %". This report gives, per dataset and pooled over all of them:
 * - each variant's dense NDCG@10 at --dims, its share of fp32's, and the paired standard error of the difference (the
 *   same queries on both sides, so the query-to-query spread cancels) with the number of queries whose NDCG@10 changed;
 * - the variants: int8 graphs, int4 and int8w graphs (when the artifact has them), the stored-vector formats of int8
 *   graphs (int8 vectors, sign bits + int8 rescoring, sign bits alone) and of int8w's (int8 vectors, sign bits + int8
 *   rescoring: the Worker's defaults);
 * - fidelity without ranking noise: the cosine between each query's and each document's variant embedding and its fp32
 *   embedding (the --dims prefix, renormalised), mean and minimum.
 * Everything runs as the Worker serves: depth auto with early exit, queries routed for dense search, documents at the
 * manifest's document depth when it chose one. A dataset is `<dir>` (split test) or `<dir>:<split>`.
 *
 * Prints one JSON object last on stdout (and writes it to --out); a Markdown table goes to stderr.
 */
import { Command, InvalidArgumentError } from "commander";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { mean } from "../src/eval/metrics.js";
import { ARTIFACT_VARIANTS, type ArtifactVariant } from "../src/model/index.js";
import { defaultArtifactDir } from "./default-artifact.js";
import { DenseViews, embedCorpus, indexedDocumentPass, type CorpusPass, type DenseIndex } from "./eval/corpus-index.js";
import { loadBeirDataset, type EvalDataset } from "./eval/dataset.js";
import { evaluate, round4, type VectorFormat } from "./eval/evaluate.js";
import { pairedStandardError } from "./eval/fusion-tuning.js";
import { artifactBytes, openModel, type EvalModel } from "./eval/model.js";
import { encodeQueries, type EncodedQuery } from "./eval/queries.js";

interface DatasetArg {
  dir: string;
  split: string;
}

function datasetArg(value: string, previous: DatasetArg[] = []): DatasetArg[] {
  const colon = value.lastIndexOf(":");
  const [dir, split] = colon > 0 ? [value.slice(0, colon), value.slice(colon + 1)] : [value, "test"];
  if (!dir || !split) throw new InvalidArgumentError(`expected <dir> or <dir>:<split>, got "${value}"`);
  return [...previous, { dir, split }];
}

const DIMS = ["64", "128", "256", "384"] as const;

const program = new Command()
  .name("npm run eval:quantization --")
  .description("Quality each compression keeps of fp32 (NDCG@10 with paired standard errors, embedding cosines).")
  .requiredOption("--dataset <dir[:split]>", "a BEIR folder, optionally with its qrels split (default test); repeat for more", datasetArg)
  .option("--model <dir>", "artifact directory (default: the one the Worker bundles)")
  .option("--dims <n>", "Matryoshka prefix searched", (value) => {
    if (!(DIMS as readonly string[]).includes(value)) throw new InvalidArgumentError(`expected one of ${DIMS.join(", ")}, got "${value}"`);
    return Number(value);
  }, 128)
  .option("--out <file>", "also write the JSON result here")
  .parse();

const options = program.opts<{ dataset: DatasetArg[]; model?: string; dims: number; out?: string }>();
const log = (message: string) => process.stderr.write(`[quantization] ${message}\n`);

/** A compressed setting: which graphs embed, and how document vectors are stored. */
interface Row {
  name: string;
  variant: ArtifactVariant;
  vectors: VectorFormat;
}

const ROWS: readonly Row[] = [
  { name: "int8 graphs", variant: "int8", vectors: "float" },
  { name: "int4 graphs", variant: "int4", vectors: "float" },
  { name: "int8w graphs", variant: "int8w", vectors: "float" },
  { name: "int8 graphs + int8 vectors", variant: "int8", vectors: "int8" },
  { name: "int8 graphs + sign bits, int8 rescoring", variant: "int8", vectors: "binary-rescore" },
  { name: "int8 graphs + sign bits alone", variant: "int8", vectors: "binary" },
  { name: "int8w graphs + int8 vectors", variant: "int8w", vectors: "int8" },
  { name: "int8w graphs + sign bits, int8 rescoring", variant: "int8w", vectors: "binary-rescore" },
];

interface Embedded {
  corpus: DenseIndex;
  views: DenseViews;
  queries: EncodedQuery[];
}

interface Fidelity {
  mean: number;
  min: number;
}

interface RowResult {
  name: string;
  variant: ArtifactVariant;
  vectors: VectorFormat;
  "ndcg@10": number;
  /** ndcg@10 ÷ fp32's. */
  retained: number;
  /** Mean per-query difference to fp32 and its paired standard error. */
  diff: number;
  paired_se: number;
  changed_queries: number;
  /** Cosine to fp32's embedding at --dims (graph rows only: stored formats share the int8 graphs' embeddings). */
  query_cosine: Fidelity | null;
  document_cosine: Fidelity | null;
  perQuery: number[];
}

/** Cosine of the `dims` prefixes of two full-width unit vectors (each prefix renormalised, as Matryoshka search does). */
function prefixCosine(a: Float32Array, b: Float32Array, dims: number): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < dims; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : 0;
}

function fidelity(pairs: Array<[Float32Array, Float32Array]>, dims: number): Fidelity {
  const cosines = pairs.map(([a, b]) => prefixCosine(a, b, dims));
  return { mean: Number(mean(cosines).toFixed(6)), min: Number(Math.min(...cosines).toFixed(6)) };
}

function corpusRows(index: DenseIndex): Float32Array[] {
  return Array.from({ length: index.rows }, (_, row) => index.vectors.subarray(row * index.fullDims, (row + 1) * index.fullDims));
}

/** Corpus embeddings by dataset folder and variant: two splits of one dataset (test, train) share their corpus. */
const corpora = new Map<string, Promise<{ corpus: DenseIndex; views: DenseViews }>>();

async function embedAll(model: EvalModel, variant: ArtifactVariant, dataset: EvalDataset): Promise<Embedded> {
  const encoder = await model.encoder(variant);
  const pass: CorpusPass = { variant, depth: "auto", earlyExit: true };
  const key = `${path.resolve(dataset.dir)}\u0000${variant}`;
  let corpusPass = corpora.get(key);
  if (!corpusPass) {
    corpusPass = embedCorpus(encoder, dataset.corpus, indexedDocumentPass(pass, model.manifest)).then((corpus) => ({ corpus, views: new DenseViews(corpus) }));
    corpora.set(key, corpusPass);
  }
  const { corpus, views } = await corpusPass;
  const queries = await encodeQueries(encoder, dataset.queries, pass, { tokenizer: model.tokenizer, ranking: "dense" });
  return { corpus, views, queries };
}

function score(dataset: EvalDataset, model: EvalModel, embedded: Embedded, vectors: VectorFormat): { ndcg: number; perQuery: number[] } {
  const outcome = evaluate(
    { dataset, tokenizer: model.tokenizer, dense: embedded.views, queries: embedded.queries, architecture: model.manifest.architecture },
    { mode: "dense", dims: options.dims, vectors, projection: "matryoshka", fusion: "convex" },
    { keepPerQuery: true },
  );
  return { ndcg: outcome["ndcg@10"], perQuery: outcome.perQueryNdcg10! };
}

function compare(reference: number[], perQuery: number[]): Pick<RowResult, "retained" | "diff" | "paired_se" | "changed_queries"> {
  const ref = mean(reference);
  const ours = mean(perQuery);
  return {
    retained: ref > 0 ? round4(ours / ref) : Number.NaN,
    diff: round4(ours - ref),
    paired_se: round4(pairedStandardError(perQuery, reference)),
    changed_queries: perQuery.filter((value, i) => Math.abs(value - reference[i]!) > 1e-9).length,
  };
}

async function main(): Promise<void> {
  const modelDir = options.model ?? (await defaultArtifactDir());
  // int4 and int8w came after the first artifacts: those without them are measured on the rest.
  const rawManifest = JSON.parse(await readFile(path.join(modelDir, "manifest.json"), "utf8")) as { variants?: Record<string, unknown> };
  const present = ARTIFACT_VARIANTS.filter((v) => rawManifest.variants?.[v] !== undefined);
  const model = await openModel(modelDir, present);
  const rows = ROWS.filter((row) => present.includes(row.variant));
  const sizes = Object.fromEntries(present.map((v) => [v, artifactBytes(model.manifest, v)]));

  const datasets = [];
  const pooled = new Map<string, { reference: number[]; perQuery: number[] }>();
  for (const { dir, split } of options.dataset) {
    const dataset = await loadBeirDataset(dir, split);
    log(`${model.label} on ${dataset.name} (${split}): ${dataset.queries.length} judged queries, ${dataset.corpus.length} documents`);
    const fp32 = await embedAll(model, "fp32", dataset);
    const reference = score(dataset, model, fp32, "float");
    const fp32Documents = corpusRows(fp32.corpus);
    const byVariant = new Map<ArtifactVariant, Embedded>([["fp32", fp32]]);
    const results: RowResult[] = [];
    for (const row of rows) {
      let embedded = byVariant.get(row.variant);
      if (!embedded) byVariant.set(row.variant, (embedded = await embedAll(model, row.variant, dataset)));
      const { ndcg, perQuery } = score(dataset, model, embedded, row.vectors);
      const graphRow = row.vectors === "float";
      results.push({
        name: row.name,
        variant: row.variant,
        vectors: row.vectors,
        "ndcg@10": round4(ndcg),
        ...compare(reference.perQuery, perQuery),
        query_cosine: graphRow ? fidelity(embedded.queries.map((q, i) => [q.vector, fp32.queries[i]!.vector]), options.dims) : null,
        document_cosine: graphRow ? fidelity(corpusRows(embedded.corpus).map((v, i) => [v, fp32Documents[i]!]), options.dims) : null,
        perQuery,
      });
      const pool = pooled.get(row.name) ?? { reference: [], perQuery: [] };
      pool.reference.push(...reference.perQuery);
      pool.perQuery.push(...perQuery);
      pooled.set(row.name, pool);
    }
    datasets.push({
      dataset: dataset.name,
      split,
      queries: dataset.queries.length,
      docs: dataset.corpus.length,
      fp32: round4(reference.ndcg),
      rows: results.map(({ perQuery: _dropped, ...rest }) => rest),
    });
  }
  const pooledRows = [...pooled].map(([name, { reference, perQuery }]) => ({ name, queries: perQuery.length, fp32: round4(mean(reference)), "ndcg@10": round4(mean(perQuery)), ...compare(reference, perQuery) }));

  const report = { model: model.label, dims: options.dims, graph_bytes: sizes, datasets, pooled: pooledRows };
  const table = [
    `| set | setting | NDCG@10 | of fp32 | diff ± paired SE | queries changed | query cos (mean / min) | doc cos (mean / min) |`,
    `| --- | --- | --- | --- | --- | --- | --- | --- |`,
    ...datasets.flatMap((d) => [
      `| ${d.dataset} ${d.split} (${d.queries} q) | fp32 graphs | ${d.fp32.toFixed(4)} | 100 % | – | – | – | – |`,
      ...d.rows.map(
        (r) =>
          `| ${d.dataset} ${d.split} | ${r.name} | ${r["ndcg@10"].toFixed(4)} | ${(100 * r.retained).toFixed(1)} % | ${r.diff.toFixed(4)} ± ${r.paired_se.toFixed(4)} | ${r.changed_queries} | ${r.query_cosine ? `${r.query_cosine.mean.toFixed(5)} / ${r.query_cosine.min.toFixed(4)}` : "–"} | ${r.document_cosine ? `${r.document_cosine.mean.toFixed(5)} / ${r.document_cosine.min.toFixed(4)}` : "–"} |`,
      ),
    ]),
    ...pooledRows.map((r) => `| pooled (${r.queries} q) | ${r.name} | ${r["ndcg@10"].toFixed(4)} (fp32 ${r.fp32.toFixed(4)}) | ${(100 * r.retained).toFixed(1)} % | ${r.diff.toFixed(4)} ± ${r.paired_se.toFixed(4)} | ${r.changed_queries} | – | – |`),
  ].join("\n");
  process.stderr.write(`\n${table}\n\n`);
  const json = JSON.stringify(report);
  if (options.out) await writeFile(options.out, `${JSON.stringify(report, null, 2)}\n`);
  await model.release();
  console.log(json);
}

main().catch((err: unknown) => {
  process.stderr.write(`error: ${(err as Error).message}\n`);
  process.exit(1);
});
