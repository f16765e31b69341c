/**
 * The JSON object `npm run eval` prints last on stdout (and `--out` writes): the metrics, rounded to four decimals,
 * followed by every setting that produced them. The leading keys are those of the original eval CLI, in its order, so
 * scripts that read them keep working; what came later (vector format, projection, encoder, FLOPs, index bytes) follows.
 */
import type { PassageScoring } from "./corpus-index.js";
import type { EvalOutcome, EvalSetting } from "./evaluate.js";
import { round4 } from "./evaluate.js";

export interface ResultContext {
  dataset: string;
  split: string;
  /** The mode as the caller named it ("lexical" and "bm25" are the same ranking). */
  modeName: string;
  /** "1", "3", "6", "auto", or null for a peer encoder. */
  depth: string | null;
  /** The --quant value: fp32, int8 or binary; null for a peer. */
  quant: string | null;
  /** The ONNX variant that ran (binary runs the int8 graphs). */
  modelVariant: string | null;
  earlyExit: boolean | null;
  /** "name@version" of the artifact, or the peer's name. */
  model: string;
  encoder: string;
  /** Where the hybrid default came from: the artifact's tuned fusion ("manifest") or the constants ("built-in"). */
  fusionDefault?: "manifest" | "built-in";
  /** hybrid+late: where the rerank's k and weights came from (the artifact's tuned `retrieval.late`, or built-in). */
  lateDefault?: "manifest" | "built-in" | "cli";
  /** What depth auto routed by ("rule" | "fastrem"; `--router`), the fixed query depth if any, documents' mean steps. */
  router?: string;
  queryDepth?: string | null;
  meanDocDepth?: number | null;
  /** Documents as passages (corpus-index.ts CorpusPass.passages), with the mean passages per document. */
  documentPassages?: { maxPieces: number; maxPassages: number; meanPassages: number; scoring: PassageScoring } | null;
}

export interface EvalResultJson {
  [key: string]: unknown;
}

export function evalResultJson(
  context: ResultContext,
  setting: EvalSetting,
  outcome: EvalOutcome,
  sweep?: { lexical: number; dense: number; "ndcg@10": number }[],
): EvalResultJson {
  const fused = setting.mode === "hybrid" || setting.mode === "late" || setting.mode === "hybrid+late";
  const bytes = outcome.index_bytes_per_doc;
  const roundOrNull = (value: number | null) => (value === null ? null : round4(value));
  return {
    dataset: context.dataset,
    split: context.split,
    "ndcg@10": round4(outcome["ndcg@10"]),
    "mrr@10": round4(outcome["mrr@10"]),
    "recall@50": round4(outcome["recall@50"]),
    "recall@100": round4(outcome["recall@100"]),
    "map@100": round4(outcome["map@100"]),
    queries: outcome.queries,
    docs: outcome.docs,
    latency_ms: { p50: round4(outcome.latency_ms.p50), p95: round4(outcome.latency_ms.p95) },
    mode: context.modeName,
    fusion: fused ? setting.fusion : null,
    weights: outcome.weights,
    fusion_default: fused ? (context.fusionDefault ?? "built-in") : null,
    ...(setting.mode === "hybrid+late" && setting.late
      ? {
          late: { k: setting.late.k, weights: setting.late.weights, default: context.lateDefault ?? "built-in" },
          ...(outcome.first_stage
            ? { first_stage: { "ndcg@10": round4(outcome.first_stage["ndcg@10"]), "recall@100": round4(outcome.first_stage["recall@100"]) } }
            : {}),
        }
      : {}),
    ...(sweep ? { sweep: sweep.map((point) => ({ ...point, "ndcg@10": round4(point["ndcg@10"]) })) } : {}),
    dims: setting.dims,
    depth: context.depth,
    mean_depth: roundOrNull(outcome.mean_depth),
    ...(context.router !== undefined ? { router: context.router, query_depth: context.queryDepth ?? null, mean_doc_depth: roundOrNull(context.meanDocDepth ?? null) } : {}),
    ...(context.documentPassages !== undefined
      ? {
          document_passages: context.documentPassages
            ? {
                max_pieces: context.documentPassages.maxPieces,
                max_passages: context.documentPassages.maxPassages,
                mean: roundOrNull(context.documentPassages.meanPassages),
                scoring: context.documentPassages.scoring,
              }
            : null,
        }
      : {}),
    quant: context.quant,
    model: context.model,
    encoder: context.encoder,
    model_variant: context.modelVariant,
    early_exit: context.earlyExit,
    vectors: setting.vectors,
    projection: setting.projection,
    mean_query_tokens: roundOrNull(outcome.mean_query_tokens),
    flops_per_query: outcome.flops_per_query === null ? null : Math.round(outcome.flops_per_query),
    index_bytes_per_doc: {
      dense: roundOrNull(bytes.dense),
      bm25: roundOrNull(bytes.bm25),
      late: roundOrNull(bytes.late),
      ...(bytes.sparse !== undefined ? { sparse: round4(bytes.sparse) } : {}),
      total: round4(bytes.total),
    },
  };
}
