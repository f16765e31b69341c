/**
 * The query-embedding cache in Workers KV. A hit skips the model entirely, which is most of a warm query's cost.
 *
 * Key: `emb:<name@version>:<dims>:<depth setting>:<sha256 hex of the normalised query>`. The model's name and version
 * keep a new model from serving an old model's vectors (the name too: two models may share a version number, and live
 * model updates serve either); dims and the *requested* depth setting ("auto" or 1/3/6) are what
 * decide the vector — "auto" for a hybrid search, "auto:dense" for a dense-only one, which a router labelled on hybrid
 * retrieval routes by its length rule instead (encoder.ts `ranking`), so the two may get different vectors. The query
 * is normalised by the tokenizer's own `normalize` (case, accents, whitespace), the same step the model applies first,
 * so every spelling that embeds identically shares one entry. A vector the GPU origin computed gets its own key (suffix
 * `:origin`): it comes from the full-precision model, and a query routed there must not be answered by an edge vector
 * cached before the origin was configured (nor the reverse).
 * Value: the raw float32 vector (little-endian bytes), followed — for a query embedded with the sparse head — by its
 * sparse terms as (uint32 term, float32 weight) pairs; KV metadata holds how it was computed ({depth, route, earlyExit,
 * servedBy}) and, with sparse terms, how many there are (`sparseTerms`). Sparse terms travel in the value because KV
 * metadata holds 1 KB, too little for 256 terms; float32 holds the encoder's weights exactly (it computes in float32),
 * so a cached query ranks exactly as a fresh one. An entry without them answers only queries that need none.
 * Likewise the late head's token vectors of a query embedded for a reranked search: float32 rows after the sparse pairs,
 * their shape in the metadata (`tokenCount`, `tokenDims`). With the rerank on by default, every hybrid query of such a
 * model needs them; keeping them out of the cache would give up the cache for that model altogether.
 *
 * KV failures never fail a search: a read error counts as a miss, a write error is logged and dropped.
 *
 * @module
 */
import { sha256Hex } from "../../../src/digest.js";
import type { EmbeddingRanking } from "../../../src/model/index.js";
import type { TokenMatrix } from "../../../src/retrieval/index.js";
import type { CachedEmbedding, EmbedRoute, EmbeddingCache } from "./contracts.js";

/** Seven days: long enough to keep popular queries warm, short enough that abandoned keys age out. */
export const EMBED_CACHE_TTL_SECONDS = 7 * 24 * 60 * 60;

export async function queryCacheKey(
  /** The model, name@version. */
  model: string,
  dims: number,
  depth: number | "auto",
  normalizedQuery: string,
  ranking: EmbeddingRanking = "hybrid",
  servedBy: "edge" | "origin" = "edge",
): Promise<string> {
  const setting = depth === "auto" && ranking === "dense" ? "auto:dense" : depth;
  return `emb:${model}:${dims}:${setting}:${await sha256Hex(normalizedQuery)}${servedBy === "origin" ? ":origin" : ""}`;
}

interface CacheMetadata {
  depth: number;
  route: EmbedRoute;
  earlyExit: boolean;
  servedBy?: "edge" | "origin";
  /** How many (term, weight) pairs follow the vector; absent → the entry has no sparse terms. */
  sparseTerms?: number;
  /** The token matrix after the pairs, [tokenCount, tokenDims] float32; absent → the entry has no token vectors. */
  tokenCount?: number;
  tokenDims?: number;
}

/** Bytes of one sparse (uint32 term, float32 weight) pair in a cache value. */
const SPARSE_PAIR_BYTES = 8;

/** The vector's bytes, then the sparse pairs', then the token matrix's, little-endian. */
function encodeValue(vector: Float32Array, sparse: readonly (readonly [number, number])[] | undefined, tokens: TokenMatrix | undefined): ArrayBuffer {
  const pairsBytes = (sparse?.length ?? 0) * SPARSE_PAIR_BYTES;
  const bytes = new ArrayBuffer(vector.byteLength + pairsBytes + (tokens?.data.byteLength ?? 0));
  const view = new DataView(bytes);
  vector.forEach((value, i) => view.setFloat32(4 * i, value, true));
  sparse?.forEach(([term, weight], i) => {
    view.setUint32(vector.byteLength + i * SPARSE_PAIR_BYTES, term, true);
    view.setFloat32(vector.byteLength + i * SPARSE_PAIR_BYTES + 4, weight, true);
  });
  const tokensAt = vector.byteLength + pairsBytes;
  tokens?.data.forEach((value, i) => view.setFloat32(tokensAt + 4 * i, value, true));
  return bytes;
}

const isCount = (n: number) => Number.isInteger(n) && n >= 0;

/** The inverse of {@link encodeValue}, or null for a value of the wrong size (older format, partial write). */
function decodeValue(
  value: ArrayBuffer,
  metadata: CacheMetadata,
): { vector: Float32Array; sparse?: [number, number][]; tokens?: TokenMatrix } | null {
  const pairs = metadata.sparseTerms ?? 0;
  const hasTokens = metadata.tokenCount !== undefined || metadata.tokenDims !== undefined;
  const tokenCount = metadata.tokenCount ?? 0;
  const tokenDims = metadata.tokenDims ?? 0;
  if (!isCount(pairs) || !isCount(tokenCount) || !isCount(tokenDims) || (hasTokens && tokenDims === 0)) return null;
  const tokenBytes = tokenCount * tokenDims * 4;
  const vectorBytes = value.byteLength - pairs * SPARSE_PAIR_BYTES - tokenBytes;
  if (vectorBytes <= 0 || vectorBytes % 4 !== 0) return null;
  const view = new DataView(value);
  const vector = new Float32Array(vectorBytes / 4);
  for (let i = 0; i < vector.length; i++) vector[i] = view.getFloat32(4 * i, true);
  const decoded: { vector: Float32Array; sparse?: [number, number][]; tokens?: TokenMatrix } = { vector };
  if (metadata.sparseTerms !== undefined) {
    const sparse: [number, number][] = [];
    for (let i = 0; i < pairs; i++) {
      sparse.push([view.getUint32(vectorBytes + i * SPARSE_PAIR_BYTES, true), view.getFloat32(vectorBytes + i * SPARSE_PAIR_BYTES + 4, true)]);
    }
    decoded.sparse = sparse;
  }
  if (hasTokens) {
    const at = vectorBytes + pairs * SPARSE_PAIR_BYTES;
    const data = new Float32Array(tokenCount * tokenDims);
    for (let i = 0; i < data.length; i++) data[i] = view.getFloat32(at + 4 * i, true);
    decoded.tokens = { count: tokenCount, dims: tokenDims, data };
  }
  return decoded;
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
      if (!value || !isCacheMetadata(metadata)) return null;
      const decoded = decodeValue(value, metadata);
      if (!decoded) return null;
      return {
        vector: decoded.vector,
        depth: metadata.depth,
        route: metadata.route,
        earlyExit: metadata.earlyExit,
        servedBy: metadata.servedBy === "origin" ? "origin" : "edge",
        ...(decoded.sparse ? { sparse: decoded.sparse } : {}),
        ...(decoded.tokens ? { tokens: decoded.tokens } : {}),
      };
    } catch (error) {
      console.warn(`embedding cache read failed for ${key}: ${(error as Error).message}`);
      return null;
    }
  }

  async put(key: string, entry: CachedEmbedding): Promise<void> {
    const bytes = encodeValue(entry.vector, entry.sparse, entry.tokens);
    const metadata: CacheMetadata = {
      depth: entry.depth,
      route: entry.route,
      earlyExit: entry.earlyExit,
      servedBy: entry.servedBy ?? "edge",
      ...(entry.sparse ? { sparseTerms: entry.sparse.length } : {}),
      ...(entry.tokens ? { tokenCount: entry.tokens.count, tokenDims: entry.tokens.dims } : {}),
    };
    try {
      await this.kv.put(key, bytes, { expirationTtl: this.ttlSeconds, metadata });
    } catch (error) {
      console.warn(`embedding cache write failed for ${key}: ${(error as Error).message}`);
    }
  }
}
