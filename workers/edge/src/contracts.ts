/**
 * What the edge app depends on, as interfaces: the embedder (the shape of `TaesrEncoder.embed`), the lexical tokenizer,
 * the search index (sharded Durable Objects or Upstash), the query-embedding cache and the model's identity. `wiring.ts` supplies the
 * real implementations; tests and future platforms wire others. Nothing here imports a platform.
 *
 * @module
 */
import type { DriftBaseline, EmbedOptions, EmbedResult, EmbedRoute, FusionTuningRecord } from "../../../src/model/index.js";
import type { FusionDefault } from "../../../src/retrieval/index.js";
import type { DeadLetterStore } from "./dead-letters.js";
import type { DriftMonitorApi } from "./drift-api.js";
import type { IndexQueue } from "./index-queue.js";
import type { SearchIndex } from "./search-index.js";

export type { EmbedOptions, EmbedResult, EmbedRoute };

/** The model seam: `TaesrEncoder` satisfies it, so does any test double with the same `embed`. */
export interface Embedder {
  embed(texts: readonly string[], options?: EmbedOptions): Promise<EmbedResult>;
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

/** A loaded model: everything the app needs to embed and tokenize. */
export interface EdgeModel {
  embedder: Embedder;
  tokenizer: LexicalTokenizer;
  info: ModelInfo;
  /** The hybrid default this model ships; absent (test doubles, older loaders) → the built-in default. */
  fusion?: FusionInForce;
  /** The query distribution the model was checked against (manifest `drift`); absent → no drift monitoring. */
  drift?: DriftBaseline;
}

/** A cached query embedding with the facts about how it was computed. */
export interface CachedEmbedding {
  vector: Float32Array;
  depth: number;
  route: EmbedRoute;
  earlyExit: boolean;
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
  /** Current time in ms; injectable so the webhook replay window can be tested. */
  now(): number;
  /** The drift monitor of the named index (drift-recorder.ts); absent → queries are not recorded. */
  driftMonitor?(name: string): DriftMonitorApi;
  /** The indexing queue signed webhooks go onto; absent → the webhook answers 503. */
  indexQueue?: IndexQueue;
  /** The indexing queue's dead letters (GET /v1/admin/dead-letters); absent → that route answers 503. */
  deadLetters?: DeadLetterStore;
}

/** Lets background work (a cache write) outlive the response; absent → the caller awaits it. */
export type Background = (promise: Promise<unknown>) => void;
