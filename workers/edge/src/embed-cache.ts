/**
 * The query-embedding cache in Workers KV. A hit skips the model entirely, which is most of a warm query's cost.
 *
 * Key: `emb:<modelVersion>:<dims>:<depth setting>:<sha256 hex of the normalised query>`. The model version keeps a
 * new model from serving an old model's vectors; dims and the *requested* depth setting ("auto" or 1/3/6) are what
 * decide the vector — "auto" for a hybrid search, "auto:dense" for a dense-only one, which a router labelled on hybrid
 * retrieval routes by its length rule instead (encoder.ts `ranking`), so the two may get different vectors. The query
 * is normalised by the tokenizer's own `normalize` (case, accents, whitespace), the same step the model applies first,
 * so every spelling that embeds identically shares one entry. A vector the GPU origin computed gets its own key (suffix
 * `:origin`): it comes from the full-precision model, and a query routed there must not be answered by an edge vector
 * cached before the origin was configured (nor the reverse).
 * Value: the raw float32 vector (little-endian bytes); KV metadata holds how it was computed ({depth, route,
 * earlyExit, servedBy}).
 *
 * KV failures never fail a search: a read error counts as a miss, a write error is logged and dropped.
 *
 * @module
 */
import { sha256Hex } from "../../../src/digest.js";
import type { EmbeddingRanking } from "../../../src/model/index.js";
import type { CachedEmbedding, EmbedRoute, EmbeddingCache } from "./contracts.js";

/** Seven days: long enough to keep popular queries warm, short enough that abandoned keys age out. */
export const EMBED_CACHE_TTL_SECONDS = 7 * 24 * 60 * 60;

export async function queryCacheKey(
  modelVersion: string,
  dims: number,
  depth: number | "auto",
  normalizedQuery: string,
  ranking: EmbeddingRanking = "hybrid",
  servedBy: "edge" | "origin" = "edge",
): Promise<string> {
  const setting = depth === "auto" && ranking === "dense" ? "auto:dense" : depth;
  return `emb:${modelVersion}:${dims}:${setting}:${await sha256Hex(normalizedQuery)}${servedBy === "origin" ? ":origin" : ""}`;
}

interface CacheMetadata {
  depth: number;
  route: EmbedRoute;
  earlyExit: boolean;
  servedBy?: "edge" | "origin";
}

const ROUTES: readonly string[] = ["easy", "medium", "hard", "fixed"];

function isCacheMetadata(value: unknown): value is CacheMetadata {
  if (typeof value !== "object" || value === null) return false;
  const { depth, route, earlyExit } = value as Record<string, unknown>;
  return typeof depth === "number" && typeof route === "string" && ROUTES.includes(route) && typeof earlyExit === "boolean";
}

export class KvEmbeddingCache implements EmbeddingCache {
  constructor(
    private readonly kv: KVNamespace,
    private readonly ttlSeconds: number = EMBED_CACHE_TTL_SECONDS,
  ) {}

  async get(key: string): Promise<CachedEmbedding | null> {
    try {
      const { value, metadata } = await this.kv.getWithMetadata<CacheMetadata>(key, "arrayBuffer");
      // An entry of the wrong shape (older format, partial write) is a miss, not an error.
      if (!value || value.byteLength === 0 || value.byteLength % 4 !== 0 || !isCacheMetadata(metadata)) return null;
      return {
        vector: new Float32Array(value),
        depth: metadata.depth,
        route: metadata.route,
        earlyExit: metadata.earlyExit,
        servedBy: metadata.servedBy === "origin" ? "origin" : "edge",
      };
    } catch (error) {
      console.warn(`embedding cache read failed for ${key}: ${(error as Error).message}`);
      return null;
    }
  }

  async put(key: string, entry: CachedEmbedding): Promise<void> {
    const { vector } = entry;
    const bytes = vector.buffer.slice(vector.byteOffset, vector.byteOffset + vector.byteLength) as ArrayBuffer;
    const metadata: CacheMetadata = { depth: entry.depth, route: entry.route, earlyExit: entry.earlyExit, servedBy: entry.servedBy ?? "edge" };
    try {
      await this.kv.put(key, bytes, { expirationTtl: this.ttlSeconds, metadata });
    } catch (error) {
      console.warn(`embedding cache write failed for ${key}: ${(error as Error).message}`);
    }
  }
}
