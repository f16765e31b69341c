/**
 * `npm run eval:document-depth -- --dataset ../shared/datasets/scifact --split train [--model <dir>] [--save]`
 *
 * Chooses the depth documents are indexed at. The router sends every document-length input to the full depth (it was
 * trained on queries; past `maxTokens` it does not even look), and the indexer's cost is almost all that recursion. So:
 * documents embedded at the router's depth ("auto", as the Worker indexed them until now) against each fixed depth of the
 * architecture, the queries as served (router depth, early exit), ranked as served (hybrid with the artifact's fusion,
 * the variant the edge runs, 128-d); for an artifact adapted on this split's queries, only the queries it held out
 * (src/model/adaptation.ts untrainedQueries). The cheapest depth whose NDCG@10 is not below auto's by more than
 * TIE_STANDARD_ERRORS paired standard errors is chosen. `--save` writes it into the manifest (`retrieval.documentDepth`; the manifest is outside its own
 * sha256 list) and the CHANGELOG, never from the test split; the indexer (workers/edge/src/indexer.ts) and the eval
 * then embed documents at it. Prints one JSON line.
 */
import { Command } from "commander";
import type { TunedDocumentDepth } from "../src/model/index.js";
import { editManifest, manifestTextWithRetrievalDefault } from "../training/src/export/manifest-edit.js";
import { DenseViews, buildLexicalIndex, embedCorpus, indexedDocumentPassages, type CorpusPass } from "./eval/corpus-index.js";
import { evaluate, type EvalInputs, type EvalSetting } from "./eval/evaluate.js";
import { TIE_STANDARD_ERRORS, pairedStandardError } from "./eval/fusion-tuning.js";
import { encodeQueries } from "./eval/queries.js";
import { openTuningSplit } from "./eval/tuning-split.js";
import { DEFAULT_FUSION } from "../src/retrieval/index.js";

const program = new Command()
  .name("npm run eval:document-depth --")
  .description("Choose the depth documents are indexed at: the cheapest as good as the router's, on a validation split.")
  .requiredOption("--dataset <dir>", "BEIR dataset directory")
  .option("--split <name>", "qrels split (never test with --save)", "train")
  .option("--model <dir>", "artifact directory (default: the one the Worker bundles)")
  .option("--save", "write the chosen depth into the manifest and CHANGELOG")
  .parse();
const options = program.opts<{ dataset: string; split: string; model?: string; save?: boolean }>();

const round4 = (value: number) => Math.round(value * 1e4) / 1e4;
const DIMS = 128;

async function main(): Promise<void> {
  const { modelDir, variant, model, dataset, queriesNote } = await openTuningSplit(options);
  const encoder = await model.encoder(variant);
  const inputs: EvalInputs = { dataset, tokenizer: model.tokenizer, lexical: buildLexicalIndex(model.tokenizer, dataset.corpus) };
  const queryPass: CorpusPass = { variant, depth: "auto", earlyExit: true };
  inputs.queries = await encodeQueries(encoder, dataset.queries, queryPass, { tokenizer: model.tokenizer, ranking: "hybrid" });
  const tuned = model.manifest.retrieval?.fusion;
  const setting: EvalSetting = { mode: "hybrid", dims: DIMS, vectors: "float", projection: "matryoshka", fusion: tuned?.method ?? DEFAULT_FUSION, defaults: tuned };

  const depths = [...new Set(Object.values(model.manifest.architecture.depths))].sort((a, b) => a - b) as (1 | 3 | 6)[];
  // Documents as the manifest has them indexed (whole, or as its chosen passages): only the depth varies.
  const passages = indexedDocumentPassages(model.manifest);
  const points: { depth: "auto" | number; ndcg10: number; perQuery: number[]; meanSteps: number }[] = [];
  for (const depth of ["auto" as const, ...depths]) {
    const corpus = await embedCorpus(encoder, dataset.corpus, { variant, depth, earlyExit: true, ...(passages ? { passages, passageScoring: "mean" as const } : {}) });
    inputs.dense = new DenseViews(corpus);
    const outcome = evaluate(inputs, setting, { keepPerQuery: true });
    const meanSteps = corpus.meanDocDepth ?? Number.NaN;
    points.push({ depth, ndcg10: outcome["ndcg@10"], perQuery: outcome.perQueryNdcg10!, meanSteps });
    console.error(`documents at depth ${depth}: hybrid NDCG@10 ${outcome["ndcg@10"].toFixed(4)} (mean steps ${meanSteps.toFixed(2)})`);
  }
  await model.release();

  const auto = points[0]!;
  const judged = points.slice(1).map((p) => ({ ...p, standardError: pairedStandardError(auto.perQuery, p.perQuery) }));
  const chosen = judged.find((p) => auto.ndcg10 - p.ndcg10 <= TIE_STANDARD_ERRORS * p.standardError);
  const result: Record<string, unknown> = {
    model: model.label,
    dataset: dataset.name,
    split: options.split,
    queries: dataset.queries.length,
    ...(queriesNote ? { queries_note: queriesNote } : {}),
    rule: `cheapest depth whose hybrid NDCG@10 is within ${TIE_STANDARD_ERRORS} paired standard error of the router's depth ("auto") or above it`,
    auto: { "ndcg@10": round4(auto.ndcg10), mean_steps: round4(auto.meanSteps) },
    depths: judged.map((p) => ({ depth: p.depth, "ndcg@10": round4(p.ndcg10), standard_error: round4(p.standardError), mean_steps: round4(p.meanSteps) })),
    chosen: chosen ? chosen.depth : "auto",
  };
  if (options.save) {
    if (!chosen) throw new Error("no fixed depth is as good as the router's on this split; nothing to save");
    const tunedOn = {
      dataset: dataset.name,
      split: options.split,
      queries: dataset.queries.length,
      ndcg10: round4(chosen.ndcg10),
      ndcg10Auto: round4(auto.ndcg10),
      standardError: round4(chosen.standardError),
      meanStepsAuto: round4(auto.meanSteps),
      date: new Date().toISOString().slice(0, 10),
      dims: DIMS,
      variant,
    };
    const record: TunedDocumentDepth = { depth: chosen.depth as number, tunedOn };
    const saved = await editManifest(
      modelDir,
      "saving the document depth",
      (text) => manifestTextWithRetrievalDefault(text, "documentDepth", record),
      (before) =>
        `- document depth chosen: ${before.name}@${before.version}, ${tunedOn.date} — documents indexed at depth ${record.depth} ` +
        `(the router ran ${tunedOn.meanStepsAuto.toFixed(2)} steps); ${tunedOn.dataset} ${tunedOn.split} ` +
        `(${tunedOn.queries} queries${queriesNote ? `: ${queriesNote}` : ""}; hybrid ${DIMS}-d ${variant}) NDCG@10 ${tunedOn.ndcg10.toFixed(4)} vs ${tunedOn.ndcg10Auto.toFixed(4)} ` +
        `(paired SE ${tunedOn.standardError.toFixed(4)}) (\`npm run eval:document-depth -- ${process.argv.slice(2).join(" ")}\`)`,
    );
    console.error(`saved document depth ${record.depth} into ${saved.manifest}${saved.changelog ? ` and ${saved.changelog}` : ""}`);
    result.saved = { manifest: saved.manifest, changelog: saved.changelog, documentDepth: record };
  }
  console.log(JSON.stringify(result));
}

main().catch((error: unknown) => {
  console.error(`eval:document-depth failed: ${(error as Error).message}`);
  process.exit(1);
});
