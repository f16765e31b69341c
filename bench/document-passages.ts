/**
 * `npm run eval:document-passages -- --dataset ../shared/datasets/scifact --split train [--model <dir>] [--passages 120x8] [--save]`
 *
 * Chooses whether documents are indexed as passages. The model reads a document's first maxLength word pieces; a
 * longer one (a SciFact abstract is about 300) embedded as passages pooled into one vector (src/model/passages.ts)
 * covers all of it, at one model pass per passage. So: the documents whole against the documents as passages, at the
 * depth the Worker indexes them, the queries as served (router depth, early exit), 128-d in the variant the edge runs,
 * ranked dense alone and hybrid with the artifact's fusion (and its sparse list when it has the head); for an artifact
 * adapted on this split's queries, only the queries it held out (src/model/adaptation.ts untrainedQueries).
 *
 * Passages are chosen when the dense list gains more than TIE_STANDARD_ERRORS paired standard errors and the hybrid
 * ranking does not lose more than that: the indexer's extra passes must buy something a search can see, and must not
 * cost the ranking users get by default. `--save` writes the choice into the manifest (`retrieval.documentPassages`;
 * the manifest is outside its own sha256 list) and the CHANGELOG, never from the test split; the indexer
 * (workers/edge/src/indexer.ts, and the GPU origin it asks) and the eval then embed documents as those passages. A
 * model switch re-embeds an index (README → Live model updates); saving into a model already serving applies to the
 * documents indexed from then on. Prints one JSON line.
 */
import { Command } from "commander";
import { checkPassageOptions, type PassageOptions, type TunedDocumentPassages } from "../src/model/index.js";
import { DEFAULT_FUSION, fusionDefaultFor, sparseWeight } from "../src/retrieval/index.js";
import { editManifest, manifestTextWithRetrievalDefault } from "../training/src/export/manifest-edit.js";
import { DenseViews, SERVED_SPARSE_CUT, buildLexicalIndex, embedCorpus, indexedDocumentDepth, type CorpusPass } from "./eval/corpus-index.js";
import { evaluate, type EvalInputs, type EvalSetting } from "./eval/evaluate.js";
import { TIE_STANDARD_ERRORS, pairedStandardError } from "./eval/fusion-tuning.js";
import { passagesVerdict } from "./eval/passage-choice.js";
import { encodeQueries } from "./eval/queries.js";
import { openTuningSplit } from "./eval/tuning-split.js";
import { passageSpec } from "./cli-options.js";

const program = new Command()
  .name("npm run eval:document-passages --")
  .description("Choose whether documents are indexed as passages: only when dense retrieval gains and hybrid does not lose, on a validation split.")
  .requiredOption("--dataset <dir>", "BEIR dataset directory")
  .option("--split <name>", "qrels split (never test with --save)", "train")
  .option("--model <dir>", "artifact directory (default: the one the Worker bundles)")
  .option("--passages <spec>", "the passages to try, <maxPieces>x<maxPassages>", passageSpec, { maxPieces: 120, maxPassages: 8 })
  .option("--save", "write the choice into the manifest and CHANGELOG")
  .parse();
const options = program.opts<{ dataset: string; split: string; model?: string; passages: PassageOptions; save?: boolean }>();

const round4 = (value: number) => Math.round(value * 1e4) / 1e4;
const DIMS = 128;

interface Measured {
  ndcg10: number;
  perQuery: number[];
}

async function main(): Promise<void> {
  const { modelDir, variant, model, dataset, queriesNote } = await openTuningSplit(options);
  checkPassageOptions(options.passages, model.manifest.architecture.maxLength);
  const encoder = await model.encoder(variant);
  const sparse = encoder.hasSparse ? SERVED_SPARSE_CUT : undefined;
  const inputs: EvalInputs = { dataset, tokenizer: model.tokenizer, lexical: buildLexicalIndex(model.tokenizer, dataset.corpus) };
  const queryPass: CorpusPass = { variant, depth: "auto", earlyExit: true };
  // Queries route by the ranking they are searched in, as in the Worker (a hybrid-labelled router serves hybrid only).
  const denseQueries = await encodeQueries(encoder, dataset.queries, queryPass, { tokenizer: model.tokenizer, ranking: "dense" });
  const hybridQueries = await encodeQueries(encoder, dataset.queries, queryPass, { tokenizer: model.tokenizer, ranking: "hybrid", ...(sparse ? { sparse } : {}) });
  const tuned = model.manifest.retrieval?.fusion;
  // The hybrid default as the Worker resolves it (as in bench/eval.ts): a three-list tuning's own method when the sparse
  // list takes part, its two-list method otherwise.
  const readsSparse = sparse !== undefined && sparseWeight(tuned?.method ?? DEFAULT_FUSION, undefined, tuned) > 0;
  const fusion = tuned ? fusionDefaultFor(tuned, readsSparse).method : DEFAULT_FUSION;
  const base = { dims: DIMS, vectors: "float", projection: "matryoshka", fusion, defaults: tuned } as const;
  const dense: EvalSetting = { ...base, mode: "dense" };
  const hybrid: EvalSetting = { ...base, mode: "hybrid" };

  const documentPass: CorpusPass = { variant, depth: indexedDocumentDepth("auto", model.manifest) ?? "auto", earlyExit: true };
  const measure = async (passages: PassageOptions | undefined) => {
    const pass: CorpusPass = passages ? { ...documentPass, passages, passageScoring: "mean" } : documentPass;
    const corpus = await embedCorpus(encoder, dataset.corpus, pass, sparse ? { sparse } : {});
    inputs.dense = new DenseViews(corpus);
    const run = (setting: EvalSetting, queries: typeof denseQueries): Measured => {
      inputs.queries = queries;
      const outcome = evaluate(inputs, setting, { keepPerQuery: true });
      return { ndcg10: outcome["ndcg@10"], perQuery: outcome.perQueryNdcg10! };
    };
    const result = { dense: run(dense, denseQueries), hybrid: run(hybrid, hybridQueries), meanPassages: corpus.meanPassages ?? 1 };
    console.error(`documents ${passages ? `as passages (${result.meanPassages.toFixed(2)} per document)` : "whole"}: dense NDCG@10 ${result.dense.ndcg10.toFixed(4)}, hybrid ${result.hybrid.ndcg10.toFixed(4)}`);
    return result;
  };
  const whole = await measure(undefined);
  const asPassages = await measure(options.passages);
  await model.release();

  const compare = (list: "dense" | "hybrid") => ({
    ndcg10: round4(asPassages[list].ndcg10),
    ndcg10Whole: round4(whole[list].ndcg10),
    standardError: round4(pairedStandardError(whole[list].perQuery, asPassages[list].perQuery)),
  });
  const denseGain = compare("dense");
  const hybridGain = compare("hybrid");
  const verdict = passagesVerdict(denseGain, hybridGain);
  const chosen = verdict === "chosen";
  const result: Record<string, unknown> = {
    model: model.label,
    dataset: dataset.name,
    split: options.split,
    queries: dataset.queries.length,
    ...(queriesNote ? { queries_note: queriesNote } : {}),
    rule: `passages when dense NDCG@10 gains more than ${TIE_STANDARD_ERRORS} paired standard error and hybrid loses no more than that`,
    passages: { max_pieces: options.passages.maxPieces, max_passages: options.passages.maxPassages, mean_per_document: round4(asPassages.meanPassages) },
    dense: denseGain,
    hybrid: hybridGain,
    chosen: chosen ? "passages" : "whole",
  };
  if (options.save) {
    if (verdict !== "chosen") throw new Error(`documents stay whole: ${verdict}; nothing to save`);
    const record: TunedDocumentPassages = {
      ...options.passages,
      tunedOn: {
        dataset: dataset.name,
        split: options.split,
        queries: dataset.queries.length,
        dense: denseGain,
        hybrid: hybridGain,
        meanPassages: round4(asPassages.meanPassages),
        date: new Date().toISOString().slice(0, 10),
        dims: DIMS,
        variant,
      },
    };
    const { tunedOn } = record;
    const saved = await editManifest(
      modelDir,
      "saving the document passages",
      (text) => manifestTextWithRetrievalDefault(text, "documentPassages", record),
      (before) =>
        `- document passages chosen: ${before.name}@${before.version}, ${tunedOn.date} — documents indexed as passages of ≤ ${record.maxPieces} pieces ` +
        `(≤ ${record.maxPassages}, pooled; ${tunedOn.meanPassages.toFixed(2)} per document, as many model passes); ${tunedOn.dataset} ${tunedOn.split} ` +
        `(${tunedOn.queries} queries${queriesNote ? `: ${queriesNote}` : ""}; ${DIMS}-d ${variant}) NDCG@10 dense ${tunedOn.dense.ndcg10.toFixed(4)} vs whole ` +
        `${tunedOn.dense.ndcg10Whole.toFixed(4)} (paired SE ${tunedOn.dense.standardError.toFixed(4)}), hybrid ${tunedOn.hybrid.ndcg10.toFixed(4)} vs ` +
        `${tunedOn.hybrid.ndcg10Whole.toFixed(4)} (${tunedOn.hybrid.standardError.toFixed(4)}) (\`npm run eval:document-passages -- ${process.argv.slice(2).join(" ")}\`)`,
    );
    console.error(`saved document passages into ${saved.manifest}${saved.changelog ? ` and ${saved.changelog}` : ""}`);
    result.saved = { manifest: saved.manifest, changelog: saved.changelog, documentPassages: record };
  }
  console.log(JSON.stringify(result));
}

main().catch((error: unknown) => {
  console.error(`eval:document-passages failed: ${(error as Error).message}`);
  process.exit(1);
});
