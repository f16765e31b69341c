/**
 * What the edge app depends on, as interfaces: the embedder (the shape of `TaesrEncoder.embed`), the lexical tokenizer,
 * the search index (sharded Durable Objects or Upstash), the query-embedding cache and the model's identity. `wiring.ts` supplies the
 * real implementations; tests and future platforms wire others. Nothing here imports a platform.
 *
 * @module
 */
import type { DriftBaseline, EmbedOptions, EmbedResult, EmbedRoute, FusionTuningRecord, LateTuningRecord, PassageOptions, Route } from "../../../src/model/index.js";
import type { FusionDefault, LateFusionWeights, TokenMatrix } from "../../../src/retrieval/index.js";
import type { DeadLetterStore } from "./dead-letters.js";
import type { DriftMonitorApi } from "./drift-api.js";
import type { IndexQueue } from "./index-queue.js";
import type { OriginEmbedding } from "./origin-client.js";
import type { ModelDeployments } from "./rollout-api.js";
import type { SearchIndex } from "./search-index.js";

export type { EmbedOptions, EmbedResult, EmbedRoute };

/** The model seam: `TaesrEncoder` satisfies it, so does any test double with the same `embed`. */
export interface Embedder {
  embed(texts: readonly string[], options?: EmbedOptions): Promise<EmbedResult>;
  /** The route depth "auto" would take, without running the model; absent → queries are never sent to the origin. */
  route?(texts: readonly string[], options?: Pick<EmbedOptions, "ranking">): Route;
}

/** The GPU origin seam (`OriginClient`): embeds with the full model, or throws `OriginUnavailableError` saying why. */
export interface OriginEmbedder {
  embed(texts: string[], options: { dims: number; depth: number }): Promise<OriginEmbedding>;
  /** The client's circuit breaker state, when it has one (reported by /v1/health). */
  readonly circuit?: "closed" | "open" | "half_open";
}

/** The tokenizer seam for lexical search: word pieces of normalised text (`WordPieceTokenizer` satisfies it). */
export interface LexicalTokenizer {
  tokenize(text: string): string[];
}

/** The model's identity as reported by /v1/health and recorded beside every stored vector. */
export interface ModelInfo {
  name: string;
  version: string;
  /** Widest embedding the model produces (384 for TAESR). */
  dims: number;
  /** Weights variant in use (e.g. "int8" at the edge). */
  variant: string;
  /** Recursion steps of a hard-routed input (the model's full depth); absent (test doubles) → 6. */
  fullDepth?: number;
}

/**
 * The hybrid fusion a search uses when the request names none (reported by /v1/health). Its method and weights are
 * the defaults a request's `fusion`/`weights` override, exactly as before; only where the defaults come from changed.
 */
export interface FusionInForce extends FusionDefault {
  /** "manifest": tuned on a validation split and shipped in the model's manifest; "built-in": src/retrieval's constants. */
  source: "manifest" | "built-in";
  /** For a tuned default: the split it was tuned on and the figures there. */
  tunedOn?: FusionTuningRecord;
}

/**
 * The late-interaction rerank a model supports: present only for a model with a trained late head (the indexer then
 * stores token matrices, and searches may rerank). `source` "manifest": k and weights tuned on a validation split
 * (manifest `retrieval.late`), and hybrid searches rerank by default when the tuned late weight is above 0;
 * "built-in": untuned defaults, used only when a request asks for the rerank.
 */
export interface LateInForce {
  /** Width of the head's token vectors. */
  dims: number;
  k: number;
  weights: LateFusionWeights;
  source: "manifest" | "built-in";
  tunedOn?: LateTuningRecord;
}

/**
 * The learned sparse list a model supports: present only for a model with the SPLADE-style sparse head whose graph is
 * loaded. Documents and queries are both cut with these options (encoder.ts `sparse`), so their terms stay alike.
 */
export interface SparseInForce {
  /** Weights at or below this are dropped. */
  threshold: number;
  /** The most terms kept per text. */
  maxTerms: number;
}

/** A loaded model: everything the app needs to embed and tokenize. */
export interface EdgeModel {
  embedder: Embedder;
  tokenizer: LexicalTokenizer;
  info: ModelInfo;
  /** The hybrid default this model ships; absent (test doubles, older loaders) → the built-in default. */
  fusion?: FusionInForce;
  /** The model's late-interaction head and rerank default; absent → no head: no token matrices, no rerank. */
  late?: LateInForce;
  /** The model's sparse head; absent → no head: no sparse postings, no sparse list. */
  sparse?: SparseInForce;
  /** The query distribution the model was checked against (manifest `drift`); absent → no drift monitoring. */
  drift?: DriftBaseline;
  /**
   * The depth documents are indexed at (manifest `retrieval.documentDepth`, chosen on a validation split as the
   * cheapest as good as the router's); absent → the router decides, as for queries.
   */
  documentDepth?: number;
  /**
   * The passages documents are embedded as, pooled into one vector (manifest `retrieval.documentPassages`, chosen on a
   * validation split); absent → each document's first maxLength word pieces.
   */
  documentPassages?: PassageOptions;
}

/** A cached query embedding with the facts about how it was computed. */
export interface CachedEmbedding {
  vector: Float32Array;
  depth: number;
  route: EmbedRoute;
  earlyExit: boolean;
  /** Which model computed it: the edge's own, or the origin's full-precision one. Absent in older entries → edge. */
  servedBy?: "edge" | "origin";
  /** The query's learned sparse terms from the same model call, when they were asked for; absent → not computed. */
  sparse?: [number, number][];
  /** The query's late-head token vectors from the same model call, when they were asked for; absent → not computed. */
  tokens?: TokenMatrix;
}

/** The query-embedding cache seam (Workers KV in production). Keys are built by `embed-cache.ts`. */
export interface EmbeddingCache {
  get(key: string): Promise<CachedEmbedding | null>;
  put(key: string, value: CachedEmbedding): Promise<void>;
}

/** Everything `createApp` needs; all of it injected so each piece can be replaced in tests. */
export interface AppDeps {
  /** Loads (once) and returns the model; rejects with a clear error when none is available. */
  loadModel(): Promise<EdgeModel>;
  /** The search index, whichever backend holds it. */
  index: SearchIndex;
  /** The index's name (its shard prefix): per-index state such as the drift monitor is kept under it. */
  indexName: string;
  cache: EmbeddingCache;
  /** Secrets; an absent secret disables the routes that need it (503), it never opens them. */
  secrets: { apiKey?: string; webhookSecret?: string };
  /** The GPU origin for hard-routed queries; absent → every query is embedded at the edge. */
  origin?: OriginEmbedder;
  /** Current time in ms; injectable so the webhook replay window can be tested. */
  now(): number;
  /** The drift monitor of the named index (drift-recorder.ts); absent → queries are not recorded. */
  driftMonitor?(name: string): DriftMonitorApi;
  /** The indexing queue signed webhooks go onto; absent → the webhook answers 503. */
  indexQueue?: IndexQueue;
  /** The indexing queue's dead letters (GET /v1/admin/dead-letters); absent → that route answers 503. */
  deadLetters?: DeadLetterStore;
  /**
   * Live model updates (model-rollout.ts): queries follow the published route's model and index, writes reach every
   * index of the route. Absent → `loadModel` over `index` serve everything, and the model admin routes answer 503.
   */
  models?: ModelDeployments;
}

/** Lets background work (a cache write) outlive the response; absent → the caller awaits it. */
export type Background = (promise: Promise<unknown>) => void;
