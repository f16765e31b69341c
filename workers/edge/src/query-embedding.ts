/**
 * The query's embedding for a search: from the KV cache, from the GPU origin (hard-routed queries, when one is
 * configured), or from the edge's own model.
 *
 * Routing happens first and costs no model run (tokenizer + router, `Embedder.route`): a query the router calls hard
 * goes to the origin's full-precision model at full depth; every other query, and every query with a fixed depth, is
 * embedded at the edge. When the origin cannot answer — too slow, down, its circuit open, an answer that breaks the
 * contract, or a different model version (its vectors would not be comparable with the index's) — the edge embeds the
 * query itself at full depth with early exit off, the same work the origin would have done, and the response says so
 * (`originFallback`). Nothing fails because the origin failed. Fallback vectors are not cached, so the next time the
 * query is asked the origin gets another chance; the origin's vectors are cached under their own key (embed-cache.ts).
 *
 * A search that reranks by late interaction also needs the query's token vectors, from the same model call as its
 * vector: the origin returns them from its pass when asked, and the cache keeps them beside the vector (embed-cache.ts)
 * — a model whose tuned rerank is on by default needs them for every hybrid query. An entry cached without them is a
 * miss for a reranked search, and is replaced by one that has them.
 *
 * A search that reads the learned sparse list needs the query's sparse terms, from the same model call too: the origin
 * returns them from its pass when asked (its fp32 sparse head, cut as the edge cuts them); the cache keeps them, beside
 * the vector (embed-cache.ts) — every hybrid query of a model with the head needs them, and skipping the cache would
 * give up the cache for that model altogether. An entry cached without them (before the list was read) is a miss for
 * a query that needs them, and is replaced by one that has them; the key already names the model version, whose head
 * and options (model-loader.ts DEFAULT_SPARSE) decide the terms.
 *
 * @module
 */
import { sparsePairs, type TokenMatrix } from "../../../src/retrieval/index.js";
import type { AppDeps, Background, EdgeModel, EmbedRoute, SparseInForce } from "./contracts.js";
import { queryCacheKey } from "./embed-cache.js";
import { OriginUnavailableError, type OriginFailureReason } from "./origin-client.js";
import type { SearchRequest } from "./schemas.js";

/** Why a hard-routed query was embedded at the edge instead: the origin's failure, or a model-version mismatch. */
export type OriginFallbackReason = OriginFailureReason | "model_mismatch";

export interface QueryEmbedding {
  vector: Float32Array;
  depth: number;
  route: EmbedRoute;
  earlyExit: boolean;
  cached: boolean;
  servedBy: "edge" | "origin";
  /** Set when the query was routed to the origin but the edge served it; says why. */
  originFallback: OriginFallbackReason | null;
  /** The query's late-head token vectors, from the same model call as `vector` (only when asked for). */
  tokens?: TokenMatrix;
  /** The query's learned sparse terms, from the same model call as `vector` (when asked for; a cache hit may carry them). */
  sparse?: [number, number][];
}

/** What a search needs besides the vector, each from the same model call. */
export interface QueryExtras {
  /** The late head's token vectors (a reranked search). */
  tokenVectors?: boolean;
  /** The sparse head's terms, cut with these options (a search reading the sparse list). */
  sparse?: SparseInForce;
}

/** Writes in the background when the platform lets work outlive the response, else before answering. */
async function store(deps: AppDeps, key: string, entry: Omit<QueryEmbedding, "cached" | "originFallback">, background?: Background): Promise<void> {
  const write = deps.cache.put(key, entry);
  if (background) background(write);
  else await write;
}

/** TAESR's full depth, for a model (test double) that does not state its own. */
const DEFAULT_FULL_DEPTH = 6;

export async function embedQuery(
  deps: AppDeps,
  model: EdgeModel,
  normalized: string,
  request: Pick<SearchRequest, "mode" | "dims" | "depth">,
  background?: Background,
  extras: QueryExtras = {},
): Promise<QueryEmbedding> {
  const tokenVectors = extras.tokenVectors === true;
  const sparse = extras.sparse;
  // Lexical searches never get here; hybrid fuses the dense list with BM25, and sparse mode is a term-matching list
  // like BM25, so both route as hybrid searches do.
  const ranking = request.mode === "dense" ? "dense" : "hybrid";
  const toOrigin =
    deps.origin !== undefined &&
    request.depth === "auto" &&
    model.embedder.route?.([normalized], { ranking }) === "hard";
  const key = await queryCacheKey(`${model.info.name}@${model.info.version}`, request.dims, request.depth, normalized, ranking, toOrigin ? "origin" : "edge");
  const hit = await deps.cache.get(key);
  if (hit && hit.vector.length === request.dims && (!sparse || hit.sparse) && (!tokenVectors || hit.tokens)) {
    return { ...hit, cached: true, servedBy: hit.servedBy ?? "edge", originFallback: null };
  }

  const cache = (entry: Omit<QueryEmbedding, "cached" | "originFallback">) => store(deps, key, entry, background);

  const fullDepth = model.info.fullDepth ?? DEFAULT_FULL_DEPTH;
  let originFallback: OriginFallbackReason | null = null;
  if (toOrigin) {
    try {
      const answer = await deps.origin!.embed([normalized], {
        dims: request.dims,
        depth: fullDepth,
        ...(tokenVectors ? { tokenVectors } : {}),
        ...(sparse ? { sparse: { threshold: sparse.threshold, maxTerms: sparse.maxTerms } } : {}),
      });
      const vector = answer.embeddings[0];
      // Present when asked for: the client refuses an answer without them (bad_response, a fallback below).
      const originTokens = answer.tokenVectors?.[0];
      const originSparse = answer.sparse?.[0];
      if (answer.model.version !== model.info.version) {
        originFallback = "model_mismatch";
        console.warn(`origin runs ${answer.model.name}@${answer.model.version}, the edge ${model.info.version}: serving hard queries locally`);
      } else if (vector) {
        const fresh = {
          vector,
          depth: answer.depth,
          route: "hard" as const,
          earlyExit: false,
          servedBy: "origin" as const,
          ...(originTokens ? { tokens: originTokens } : {}),
          ...(sparse && originSparse ? { sparse: sparsePairs(originSparse, "the origin's sparse terms for the query") } : {}),
        };
        await cache(fresh);
        return { ...fresh, cached: false, originFallback: null };
      }
    } catch (error) {
      if (!(error instanceof OriginUnavailableError)) throw error;
      originFallback = error.reason;
    }
  }

  const result = await model.embedder.embed([normalized], {
    dims: request.dims,
    // The origin's work, done here: every step, no early exit.
    ...(originFallback ? { depth: fullDepth, earlyExit: false } : { depth: request.depth }),
    ranking,
    ...(tokenVectors ? { tokenVectors } : {}),
    ...(sparse ? { sparse: { ...sparse } } : {}),
  });
  const vector = result.embeddings[0];
  if (!vector) throw new Error("the embedder returned no vector for the query");
  const tokens = result.tokenVectors?.[0];
  if (tokenVectors && !tokens) throw new Error("the embedder returned no token vectors for the query");
  const sparseTerms = result.sparse?.[0];
  if (sparse && !sparseTerms) throw new Error("the embedder returned no sparse terms for the query");
  const fresh = {
    vector,
    depth: result.depth,
    route: originFallback ? ("hard" as const) : result.route,
    earlyExit: result.earlyExit,
    servedBy: "edge" as const,
    ...(sparse && sparseTerms ? { sparse: sparsePairs(sparseTerms, "the query's sparse terms") } : {}),
    ...(tokens ? { tokens } : {}),
  };
  if (!originFallback) await cache(fresh);
  return { ...fresh, cached: false, originFallback };
}
