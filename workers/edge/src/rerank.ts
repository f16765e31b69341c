/**
 * Whether a search reranks by late interaction, and with what k and weights: the request's `rerank` field against
 * what the model (a trained late head, a tuned late fusion) and the index backend (token matrices stored) allow.
 *
 * An explicit request the search cannot honour is a 400 naming why — silently ranking without the stage asked for
 * would report figures for a ranking the caller did not get. The default is on only where it was measured to help:
 * hybrid mode, a model whose manifest ships a late fusion tuned with a late weight above 0, a backend that can rerank.
 *
 * @module
 */
import type { LateFusionWeights } from "../../../src/retrieval/index.js";
import type { EdgeModel } from "./contracts.js";
import { ApiError } from "./errors.js";
import type { SearchRequest } from "./schemas.js";
import type { SearchIndex } from "./search-index.js";

export interface RerankPlan {
  k: number;
  weights: LateFusionWeights;
}

/** The rerank this search runs, or null for none. @throws ApiError 400 for a rerank that cannot be honoured. */
export function planRerank(request: Pick<SearchRequest, "rerank" | "mode">, model: Pick<EdgeModel, "late" | "info">, index: Pick<SearchIndex, "lateRerank">): RerankPlan | null {
  const asked = request.rerank;
  const late = model.late;
  if (asked === undefined) {
    const tunedOn = late?.source === "manifest" && late.weights.late > 0;
    return tunedOn && request.mode === "hybrid" && index.lateRerank === true ? { k: late.k, weights: { ...late.weights } } : null;
  }
  if (asked === false) return null;
  const issue = (message: string) => new ApiError(400, "invalid_request", message, [{ path: "rerank", message }]);
  if (request.mode !== "hybrid") throw issue(`rerank applies to hybrid mode (the late fusion reranks the fused ranking), not to mode "${request.mode}"`);
  if (!late) {
    throw issue(`model ${model.info.name}@${model.info.version} has no late-interaction head: no token vectors to rerank by (set rerank: false or leave it out)`);
  }
  if (index.lateRerank !== true) throw issue("this index backend stores no token matrices and cannot rerank (the Durable Object index can)");
  const options = asked === true ? {} : asked;
  const weights = options.weight === undefined ? { ...late.weights } : { first: 1 - options.weight, late: options.weight };
  return { k: options.k ?? late.k, weights };
}
