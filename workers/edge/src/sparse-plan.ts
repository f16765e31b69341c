/**
 * Whether a search reads the learned sparse list: the request's mode and `weights.sparse` against what the model (a
 * sparse head) and the index backend (sparse postings stored) allow.
 *
 * Hybrid mode reads it whenever both allow it and its weight is above 0 — a model with the head fuses dense, sparse
 * and BM25 by default, with the weight its fusion was tuned to — and fuses exactly as before when either does not, or
 * when the weight in force is 0 (a tuning that gave the list nothing should not cost a query embedding of its terms
 * and a scan of their postings). Asking for it explicitly (mode "sparse", or a sparse weight above 0)
 * where it cannot be read is a 400 naming why: silently ranking without the list asked for would answer a question the
 * caller did not ask.
 *
 * @module
 */
import { DEFAULT_FUSION, sparseWeight, type FusionDefault } from "../../../src/retrieval/index.js";
import type { EdgeModel, ModelInfo, SparseInForce } from "./contracts.js";
import { ApiError } from "./errors.js";
import type { SearchRequest } from "./schemas.js";
import type { SearchIndex } from "./search-index.js";

/** The sparse options this search embeds its query with, or null when it reads no sparse list. @throws ApiError 400. */
export function planSparse(
  request: Pick<SearchRequest, "mode" | "weights" | "fusion">,
  model: Pick<EdgeModel, "sparse"> & { info: Pick<ModelInfo, "name" | "version"> },
  index: Pick<SearchIndex, "learnedSparse">,
  fusionDefault?: FusionDefault,
): SparseInForce | null {
  const byMode = request.mode === "sparse";
  const byWeight = (request.weights?.sparse ?? 0) > 0;
  if (byMode || byWeight) {
    const path = byMode ? "mode" : "weights.sparse";
    const issue = (message: string) => new ApiError(400, "invalid_request", message, [{ path, message }]);
    const asked = byMode ? 'mode "sparse"' : "a sparse weight above 0";
    if (!model.sparse) {
      throw issue(`model ${model.info.name}@${model.info.version} has no sparse head: no learned sparse terms for ${asked} (use mode "lexical" for BM25)`);
    }
    if (index.learnedSparse !== true) {
      throw issue(`this index backend stores no learned sparse postings, so it cannot serve ${asked} (the Durable Object index can)`);
    }
  }
  if (request.mode !== "sparse" && request.mode !== "hybrid") return null;
  if (!model.sparse || index.learnedSparse !== true) return null;
  if (request.mode === "hybrid" && sparseWeight(request.fusion ?? fusionDefault?.method ?? DEFAULT_FUSION, request.weights, fusionDefault) === 0) return null;
  return { ...model.sparse };
}
