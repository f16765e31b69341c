/**
 * The query path: normalise → cached or fresh query embedding → index search (dense + BM25 — and, for a model with the
 * sparse head, its learned sparse terms — over every shard, fused, filtered, one page) → results with query-biased
 * snippets. Also the plain embedding API. Routes call these; nothing here knows about HTTP.
 *
 * Lexical mode never touches the model's encoder (BM25 needs only the tokenizer), so it reports depth 0, route "none"
 * and cache "none". Sparse mode runs the model (the terms come from its last hidden state) and reports it as the
 * other modes that embed do.
 *
 * @module
 */
import { BUILT_IN_FUSION_DEFAULT, fusionDefaultFor, lexicalTerms, listsFor, makeSnippet } from "../../../src/retrieval/index.js";
import { normalize } from "../../../src/tokenizer/normalize.js";
import type { AppDeps, Background, EdgeModel, EmbedRoute, FusionInForce } from "./contracts.js";
import { recordQuery } from "./drift-recorder.js";
import { embedQuery, type OriginFallbackReason } from "./query-embedding.js";
import { planRerank } from "./rerank.js";
import { planSparse } from "./sparse-plan.js";
import { LIMITS, type EmbedRequest, type Metadata, type SearchRequest } from "./schemas.js";
import type { MetadataJson } from "./shard-api.js";

export interface SearchResult {
  id: string;
  score: number;
  title: string;
  snippet: string;
  metadata: Metadata | null;
  ranks: { dense?: number; lexical?: number; sparse?: number; late?: number };
}

export interface SearchResponse {
  results: SearchResult[];
  /** This page's place in the ranking; ask for the next with `offset: nextOffset`. */
  page: { offset: number; topK: number; hasMore: boolean; nextOffset: number | null };
  model: {
    version: string;
    dims: number;
    depth: number;
    route: EmbedRoute | "none";
    earlyExit: boolean;
    cached: boolean;
    /** Who embedded the query: the edge's model, or the GPU origin's (hard-routed queries); "none" in lexical mode. */
    servedBy: "edge" | "origin" | "none";
    /** Why a query routed to the origin was embedded at the edge instead (at full depth); null otherwise. */
    originFallback: OriginFallbackReason | null;
  };
  /** Milliseconds: the query embedding, the whole index search and, under `stages`, each of its steps. */
  timings: { embedMs: number; searchMs: number; totalMs: number; cache: "hit" | "miss" | "none"; stages: Record<string, number> };
}


/** Metadata as stored (JSON text) back to the object the client sent. */
export function parseMetadata(json: MetadataJson): Metadata | null {
  return json === null ? null : (JSON.parse(json) as Metadata);
}

/** The hybrid default a model brings (its manifest's tuned fusion), or the built-in one for a model that names none. */
export function fusionDefaultOf(model: EdgeModel): FusionInForce {
  return model.fusion ?? { method: BUILT_IN_FUSION_DEFAULT.method, weights: { ...BUILT_IN_FUSION_DEFAULT.weights }, source: "built-in" };
}

/** Rounds a duration to 0.01 ms: finer digits are noise, and workerd's clock is coarser still. */
function ms(start: number): number {
  return Math.round((performance.now() - start) * 100) / 100;
}

export async function search(deps: AppDeps, request: SearchRequest, background?: Background): Promise<SearchResponse> {
  const started = performance.now();
  const model = await deps.loadModel();
  const normalized = normalize(request.query);
  // Tokenized at most once, and only when BM25 or the drift monitor needs the pieces.
  let queryPieces: string[] | undefined;
  const pieces = () => (queryPieces ??= model.tokenizer.tokenize(normalized));
  const rerank = planRerank(request, model, deps.index);
  const defaults = fusionDefaultOf(model);
  const sparse = planSparse(request, model, deps.index, defaults);
  // A search that does not read the sparse list fuses with the two-list tuning of a three-list default.
  const fused = fusionDefaultFor(defaults, sparse !== null);
  const use = listsFor(request.mode, { sparse: sparse !== null });

  const embedStarted = performance.now();
  const embedding =
    use.dense || use.sparse
      ? await embedQuery(deps, model, normalized, request, background, { tokenVectors: rerank !== null, ...(sparse ? { sparse } : {}) })
      : null;
  const embedMs = embedding ? ms(embedStarted) : 0;
  if (embedding) await recordQuery(deps, model, request, pieces, embedding.vector, background);

  const searchStarted = performance.now();
  const found = await deps.index.search({
    mode: request.mode,
    topK: request.topK,
    offset: request.offset,
    filter: request.filter,
    vector: embedding?.vector,
    modelVersion: model.info.version,
    terms: use.lexical ? lexicalTerms(pieces()) : undefined,
    ...(sparse ? { sparseTerms: embedding?.sparse } : {}),
    fusion: request.fusion,
    weights: request.weights,
    // Only the defaults travel: the request's own fusion/weights still override them in the shard, field by field.
    fusionDefault: { method: fused.method, weights: fused.weights },
    ...(rerank && embedding?.tokens ? { rerank: { ...rerank, queryTokens: embedding.tokens } } : {}),
  });
  const searchMs = ms(searchStarted);

  return {
    results: found.hits.map((hit) => ({
      id: hit.id,
      score: hit.score,
      title: hit.title,
      snippet: makeSnippet(hit.text, request.query),
      metadata: parseMetadata(hit.metadataJson),
      ranks: hit.ranks,
    })),
    page: {
      offset: request.offset,
      topK: request.topK,
      hasMore: found.hasMore,
      // Null also where the ranking goes on past the deepest page a request may ask for (LIMITS.pageDepth).
      nextOffset: found.hasMore && request.offset + request.topK < LIMITS.pageDepth ? request.offset + request.topK : null,
    },
    model: {
      version: model.info.version,
      dims: request.dims,
      depth: embedding?.depth ?? 0,
      route: embedding?.route ?? "none",
      earlyExit: embedding?.earlyExit ?? false,
      cached: embedding?.cached ?? false,
      servedBy: embedding?.servedBy ?? "none",
      originFallback: embedding?.originFallback ?? null,
    },
    timings: {
      embedMs,
      searchMs,
      totalMs: ms(started),
      cache: embedding ? (embedding.cached ? "hit" : "miss") : "none",
      stages: found.timings,
    },
  };
}

export interface EmbedResponse {
  embeddings: number[][];
  dims: number;
  depth: number;
  route: EmbedRoute;
  earlyExit: boolean;
  model: { name: string; version: string };
}

export async function embed(deps: AppDeps, request: EmbedRequest): Promise<EmbedResponse> {
  const model = await deps.loadModel();
  const result = await model.embedder.embed(request.input, { dims: request.dims, depth: request.depth });
  return {
    embeddings: result.embeddings.map((vector) => Array.from(vector)),
    dims: request.dims,
    depth: result.depth,
    route: result.route,
    earlyExit: result.earlyExit,
    model: { name: model.info.name, version: model.info.version },
  };
}
