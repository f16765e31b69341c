/**
 * The search index on Upstash Vector (a hybrid index: dense + sparse), through `@upstash/vector` — the production
 * alternative to the embedded Durable Object shards, behind the same {@link SearchIndex} contract.
 *
 * One document is one Upstash vector with the document id as its id:
 *   vector        the 128-d embedding (the index must be created with that dimension and COSINE similarity)
 *   sparseVector  its lexical terms as BM25 document weights (upstash-sparse.ts)
 *   data          the text (Upstash holds up to 1 MB here; metadata only 48 KB, too little for 100k characters)
 *   metadata      { meta: the document's own metadata, _taesr: our fields (title, content hash, model version, …) } —
 *                 nested apart so no user key can collide with ours; filters address `meta.<path>`.
 *
 * Ranking matches the embedded index: dense and lexical candidates come from two single-component queries (a vector
 * alone, a sparse vector alone — Upstash's documented way to rerank hybrid results yourself), and `combineRankings`
 * fuses them exactly as the shards do, with the same weights and tuned default. Upstash's own fusion (RRF, DBSF) is
 * not used. Dense scores come back as Upstash's (1 + cos)/2 and are turned back into cosines; only documents of the
 * query's model version take part in the dense list, as in the shards. Candidate queries ask for ids and scores only;
 * the page's documents are then fetched in one call, so a 500-candidate hybrid search does not move 500 texts.
 *
 * Learned sparse terms (a model with the sparse head) are not stored here: the index's one sparse slot per vector
 * already holds BM25's weights, which the lexical list needs. So this backend leaves `learnedSparse` unset — the
 * indexer does not compute the terms for it, hybrid fuses dense and BM25 only, and mode "sparse" or a sparse weight
 * is refused with a 400 (by the search service, and here too, for any other caller).
 *
 * Limits of this backend (besides upstash-filter.ts's filter caveats): Upstash indexes writes asynchronously, so a
 * document is searchable shortly after `upsert` returns (fetch-based calls — pending, get, delete — see it at once);
 * a very selective filter can return fewer than topK candidates (Upstash falls back to post-filtering when its filter
 * budget runs out), which the embedded index never does; `stats` cannot count documents per model version (Upstash has
 * no grouped count), so `modelVersions` is empty; `delete` learns which ids exist by a fetch just before deleting, so a
 * concurrent writer can make its deleted/missing split stale.
 *
 * @module
 */
import { Index, WeightingStrategy } from "@upstash/vector/cloudflare";
import type { MetadataFilter } from "../../../src/retrieval/metadata-filter.js";
import { combineRankings, listsFor, type RankedHit } from "../../../src/retrieval/index.js";
import { ApiError } from "./errors.js";
import {
  PAGE_DEPTH,
  checkScanLimit,
  type IndexHit,
  type IndexSearchRequest,
  type IndexSearchResult,
  type IndexStats,
  type SearchIndex,
} from "./search-index.js";
import type { DocumentRef, MetadataJson, PreparedDocument, ScannedDocument, StoredDocument, UpsertOutcome } from "./shard-api.js";
import { UnsupportedFilterError, allOf, quoteString, toUpstashFilter, type UpstashFilter } from "./upstash-filter.js";
import {
  DEFAULT_LEXICAL_WEIGHTING,
  documentSparseVector,
  querySparseVector,
  weightingTag,
  type LexicalWeighting,
  type SparseVector,
} from "./upstash-sparse.js";

/** Upstash's per-vector limits (pricing & limits page): metadata up to 48 KB, data up to 1 MB; we stay under both. */
export const MAX_METADATA_BYTES = 48_000;
export const MAX_DATA_BYTES = 1_000_000;
/** Where user metadata and our own fields live inside an Upstash vector's metadata. */
export const USER_METADATA_KEY = "meta";
export const RESERVED_KEY = "_taesr";
/** Vectors per upsert request (Upstash suggests at most 1,000) and per fetch; requests also stay under ~4 MB of JSON. */
const WRITE_BATCH = 100;
const WRITE_BATCH_BYTES = 4_000_000;
const FETCH_BATCH = 1_000;

/** Our fields, stored under {@link RESERVED_KEY}. */
interface ReservedFields {
  title: string;
  contentHash: string;
  modelVersion: string;
  dims: number;
  length: number;
  updatedAt: number;
  /** {@link weightingTag}: how the sparse vector was made. */
  lexical: string;
}

type VectorMetadata = { [RESERVED_KEY]: ReservedFields; [USER_METADATA_KEY]?: Record<string, unknown> };

/** A failure of Upstash itself (unreachable, refused credentials, server error), naming the operation. */
export class UpstashIndexError extends Error {
  constructor(
    readonly operation: string,
    cause: unknown,
  ) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    super(`Upstash Vector ${operation} failed: ${detail}`, { cause });
    this.name = "UpstashIndexError";
  }
}

export interface UpstashIndexOptions {
  /** UPSTASH_VECTOR_REST_URL. */
  url: string;
  /** UPSTASH_VECTOR_REST_TOKEN. */
  token: string;
  /** Upstash namespace holding this index's vectors (default: the index's default namespace). */
  namespace?: string;
  /** BM25 document weighting; see upstash-sparse.ts. */
  lexical?: LexicalWeighting;
  /** Retries of a request that failed to reach Upstash (HTTP errors are not retried); default 2. */
  retries?: number;
  /** The clock for `updatedAt` (tests). */
  now?: () => number;
}

/** The Upstash index named by the environment, null when it names none (the embedded index is then used). */
export function upstashIndexFromEnv(env: {
  UPSTASH_VECTOR_REST_URL?: string;
  UPSTASH_VECTOR_REST_TOKEN?: string;
  UPSTASH_VECTOR_NAMESPACE?: string;
}): SearchIndex | null {
  const url = env.UPSTASH_VECTOR_REST_URL?.trim();
  const token = env.UPSTASH_VECTOR_REST_TOKEN?.trim();
  if (!url && !token) return null;
  if (!url || !token) {
    const missing = url ? "UPSTASH_VECTOR_REST_TOKEN" : "UPSTASH_VECTOR_REST_URL";
    throw new Error(
      `Upstash Vector is half configured: ${missing} is not set ` +
        "(set both UPSTASH_VECTOR_REST_URL and UPSTASH_VECTOR_REST_TOKEN, or neither for the embedded index)",
    );
  }
  try {
    new URL(url);
  } catch {
    throw new Error(`UPSTASH_VECTOR_REST_URL is not a URL: "${url}"`);
  }
  return new UpstashSearchIndex({ url, token, namespace: env.UPSTASH_VECTOR_NAMESPACE?.trim() || undefined });
}

const encoder = new TextEncoder();
const bytes = (text: string): number => encoder.encode(text).byteLength;

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Our fields of a fetched vector, or undefined for a vector this adapter did not write. */
function reservedOf(metadata: unknown): ReservedFields | undefined {
  const reserved = (metadata as Partial<VectorMetadata> | undefined)?.[RESERVED_KEY];
  if (!reserved || typeof reserved.contentHash !== "string" || typeof reserved.modelVersion !== "string") return undefined;
  return reserved;
}

function userMetadataJson(metadata: unknown): MetadataJson {
  const user = (metadata as Partial<VectorMetadata> | undefined)?.[USER_METADATA_KEY];
  return user === undefined ? null : JSON.stringify(user);
}

/** A fetched vector as a stored document, or null for a vector this adapter did not write. */
function storedDocument(id: string, vector: { metadata?: unknown; data?: string } | null | undefined): StoredDocument | null {
  const reserved = reservedOf(vector?.metadata);
  if (!vector || !reserved) return null;
  return {
    id,
    title: reserved.title,
    text: vector.data ?? "",
    metadataJson: userMetadataJson(vector.metadata),
    contentHash: reserved.contentHash,
    modelVersion: reserved.modelVersion,
    dims: reserved.dims,
    length: reserved.length,
    updatedAt: reserved.updatedAt,
  };
}

function cannotStore(id: string, why: string): ApiError {
  return new ApiError(400, "invalid_request", `document "${id}" cannot be stored in Upstash Vector: ${why}`);
}

interface UpstashRecord {
  id: string;
  vector: number[];
  sparseVector: SparseVector;
  data: string;
  metadata: VectorMetadata;
}

export class UpstashSearchIndex implements SearchIndex {
  private readonly index: Index<VectorMetadata>;
  private readonly namespace: string | undefined;
  private readonly weighting: LexicalWeighting;
  private readonly lexicalTag: string;
  private readonly now: () => number;

  constructor(options: UpstashIndexOptions) {
    this.index = new Index<VectorMetadata>({
      url: options.url,
      token: options.token,
      enableTelemetry: false,
      retry: { retries: options.retries ?? 2 },
    });
    this.namespace = options.namespace;
    this.weighting = options.lexical ?? DEFAULT_LEXICAL_WEIGHTING;
    this.lexicalTag = weightingTag(this.weighting);
    this.now = options.now ?? Date.now;
  }

  async pending(refs: DocumentRef[]): Promise<string[]> {
    const stored = await this.states(refs.map((ref) => ref.id));
    return refs.filter((ref) => !this.isCurrent(stored.get(ref.id), ref)).map((ref) => ref.id);
  }

  async upsert(documents: PreparedDocument[]): Promise<UpsertOutcome> {
    // Every document is checked before anything is written, so a batch Upstash cannot hold fails whole.
    const updatedAt = this.now();
    const records = new Map(documents.map((document) => [document.id, this.toRecord(document, updatedAt)]));
    const states = await this.states([...records.keys()]);
    const outcome: UpsertOutcome = { upserted: [], unchanged: [] };
    const writes = new Map<string, UpstashRecord>();
    for (const document of documents) {
      if (this.isCurrent(states.get(document.id), document)) {
        outcome.unchanged.push(document.id);
      } else {
        const record = records.get(document.id)!;
        writes.set(document.id, record);
        states.set(document.id, record.metadata[RESERVED_KEY]);
        outcome.upserted.push(document.id);
      }
    }
    let batch: UpstashRecord[] = [];
    let batchBytes = 0;
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return;
      const pending = batch;
      batch = [];
      batchBytes = 0;
      await this.call("upsert", () => this.index.upsert(pending, { namespace: this.namespace }));
    };
    for (const record of writes.values()) {
      const size = bytes(record.data) + 16 * (record.vector.length + 2 * record.sparseVector.indices.length) + 1_000;
      if (batch.length >= WRITE_BATCH || (batch.length > 0 && batchBytes + size > WRITE_BATCH_BYTES)) await flush();
      batch.push(record);
      batchBytes += size;
    }
    await flush();
    return outcome;
  }

  async delete(ids: string[]): Promise<{ deleted: string[]; missing: string[] }> {
    const unique = [...new Set(ids)];
    const stored = await this.fetchAll(unique, false);
    const deleted = unique.filter((id) => stored.has(id));
    for (const batch of chunks(deleted, FETCH_BATCH)) {
      await this.call("delete", () => this.index.delete(batch, { namespace: this.namespace }));
    }
    return { deleted, missing: unique.filter((id) => !stored.has(id)) };
  }

  async get(id: string): Promise<StoredDocument | null> {
    const [found] = await this.call("fetch", () =>
      this.index.fetch([id], { includeMetadata: true, includeData: true, namespace: this.namespace }),
    );
    return storedDocument(id, found);
  }

  async documents(ids: string[]): Promise<StoredDocument[]> {
    const out: StoredDocument[] = [];
    for (const batch of chunks([...new Set(ids)], FETCH_BATCH)) {
      const found = await this.call("fetch", () =>
        this.index.fetch(batch, { includeMetadata: true, includeData: true, namespace: this.namespace }),
      );
      found.forEach((vector, i) => {
        const document = storedDocument(batch[i]!, vector);
        if (document) out.push(document);
      });
    }
    return out;
  }

  /**
   * Upstash's own range order, its cursor passed through as ours. Vectors this adapter did not write are skipped, and
   * Upstash is asked again until the page is full or the namespace ends, so foreign vectors never shorten a page (or
   * empty one) before the end.
   */
  async scan(cursor: string | null, limit: number): Promise<{ documents: ScannedDocument[]; cursor: string | null }> {
    checkScanLimit(limit);
    // "" is how Upstash says a range has ended, so it can never be a cursor to resume from.
    if (cursor === "") throw new Error('malformed scan cursor "": an ended scan has a null cursor (pass null to start a scan)');
    let next = cursor ?? "0";
    const documents: ScannedDocument[] = [];
    while (documents.length < limit) {
      const from = next;
      const page = await this.call("range", () =>
        this.index.range({ cursor: from, limit: limit - documents.length, includeMetadata: true }, { namespace: this.namespace }),
      );
      for (const vector of page.vectors) {
        const reserved = reservedOf(vector.metadata);
        if (reserved) documents.push({ id: String(vector.id), contentHash: reserved.contentHash, modelVersion: reserved.modelVersion });
      }
      // An empty page with a cursor is not something Upstash documents; ending there beats asking again forever.
      if (page.nextCursor === "" || page.vectors.length === 0) return { documents, cursor: null };
      next = page.nextCursor;
    }
    return { documents, cursor: next };
  }

  async stats(): Promise<IndexStats> {
    const info = await this.call("info", () => this.index.info());
    const counts = info.namespaces?.[this.namespace ?? ""] ?? (this.namespace ? { vectorCount: 0, pendingVectorCount: 0 } : info);
    return {
      backend: "upstash",
      documents: counts.vectorCount + counts.pendingVectorCount,
      shards: 1,
      // Upstash keeps no grouped counts, and counting by scanning every vector is not worth a health check.
      modelVersions: {},
    };
  }

  async search(request: IndexSearchRequest): Promise<IndexSearchResult> {
    const { mode, topK, offset } = request;
    if (mode === "sparse" || request.sparseTerms !== undefined || (request.weights?.sparse ?? 0) > 0) {
      const path = mode === "sparse" ? "mode" : (request.weights?.sparse ?? 0) > 0 ? "weights.sparse" : undefined;
      const message = "Upstash Vector's sparse slot holds BM25 weights: this index backend has no learned sparse list (the Durable Object index has)";
      throw new ApiError(400, "invalid_request", message, path ? [{ path, message }] : undefined);
    }
    const use = listsFor(mode);
    const window = offset + topK;
    // One ranked document past the page tells whether there is a next page.
    const depth = Math.max(request.candidates ?? PAGE_DEPTH, window + 1);
    const timings: Record<string, number> = { denseMs: 0, lexicalMs: 0, fuseMs: 0, fetchMs: 0 };
    const userFilter = this.translateFilter(request.filter);

    const timed = async <T>(stage: string, run: () => Promise<T>): Promise<T> => {
      const started = Date.now();
      try {
        return await run();
      } finally {
        timings[stage] = Date.now() - started;
      }
    };

    let denseQuery: Promise<RankedHit[]> | undefined;
    let lexicalQuery: Promise<RankedHit[]> | undefined;
    if (use.dense) {
      const { vector, modelVersion } = request;
      if (!vector || !modelVersion) throw new Error(`${mode} search needs the query vector and its model version`);
      const filter = allOf([userFilter, `${RESERVED_KEY}.modelVersion = ${quoteString(modelVersion)}`]);
      // Upstash scores cosine as (1 + cos) / 2; the fusion (and every reader) expects the cosine itself.
      denseQuery = timed("denseMs", () => this.query("dense query", filter, depth, { vector: Array.from(vector) }, (s) => 2 * s - 1));
    }
    if (use.lexical) {
      if (!request.terms) throw new Error(`${mode} search needs the query terms`);
      const sparseVector = querySparseVector(request.terms);
      // BM25 is never negative; Upstash's IDF is, for terms in over half the documents (see upstash-sparse.ts).
      lexicalQuery =
        sparseVector.indices.length === 0
          ? Promise.resolve([])
          : timed("lexicalMs", () =>
              this.query("sparse query", userFilter, depth, { sparseVector, weightingStrategy: WeightingStrategy.IDF }, (s) => Math.max(s, 0)),
            );
    }
    const [dense, lexical] = await Promise.all([denseQuery, lexicalQuery]);

    let mark = Date.now();
    const ranked = combineRankings(mode, { dense, lexical }, {
      topK: window + 1,
      fusion: request.fusion,
      weights: request.weights,
      defaults: request.fusionDefault,
      candidates: depth,
    });
    const page = ranked.slice(offset, window);
    timings.fuseMs = Date.now() - mark;

    mark = Date.now();
    const ids = page.map((hit) => hit.id);
    const found =
      ids.length === 0
        ? []
        : await this.call("fetch", () => this.index.fetch(ids, { includeMetadata: true, includeData: true, namespace: this.namespace }));
    timings.fetchMs = Date.now() - mark;
    const hits: IndexHit[] = page.flatMap((hit, i) => {
      const stored = found[i];
      const reserved = reservedOf(stored?.metadata);
      // Deleted between the query and the fetch, or not written by us: not a result.
      if (!stored || !reserved) return [];
      return [{ ...hit, title: reserved.title, text: stored.data ?? "", metadataJson: userMetadataJson(stored.metadata) }];
    });
    return {
      hits,
      hasMore: ranked.length > window,
      candidates: { dense: dense?.length ?? 0, lexical: lexical?.length ?? 0 },
      timings,
    };
  }

  /** One single-component query: ids and scores only, best first, ranked 1…n. Nothing to match → no request. */
  private async query(
    operation: string,
    filter: UpstashFilter,
    topK: number,
    component: { vector: number[] } | { sparseVector: SparseVector; weightingStrategy: WeightingStrategy },
    score: (upstashScore: number) => number,
  ): Promise<RankedHit[]> {
    if (filter === false) return [];
    const results = await this.call(operation, () =>
      this.index.query({ ...component, topK, ...(filter === true ? {} : { filter }) }, { namespace: this.namespace }),
    );
    return results.map((result, i) => ({ id: String(result.id), score: score(result.score), rank: i + 1 }));
  }

  private translateFilter(filter: MetadataFilter | undefined): UpstashFilter {
    try {
      return toUpstashFilter(filter, `${USER_METADATA_KEY}.`);
    } catch (error) {
      if (error instanceof UnsupportedFilterError) throw new ApiError(400, "invalid_request", `filter: ${error.message}`);
      throw error;
    }
  }

  private isCurrent(stored: ReservedFields | undefined, ref: DocumentRef): boolean {
    return stored?.contentHash === ref.contentHash && stored.modelVersion === ref.modelVersion && stored.lexical === this.lexicalTag;
  }

  /** Our stored fields by id, for those of `ids` that exist and were written by this adapter. */
  private async states(ids: readonly string[]): Promise<Map<string, ReservedFields>> {
    const states = new Map<string, ReservedFields>();
    for (const [id, vector] of await this.fetchAll(ids, true)) {
      const reserved = reservedOf(vector.metadata);
      if (reserved) states.set(id, reserved);
    }
    return states;
  }

  /** The vectors of those of `ids` that exist, by id (metadata only when asked for). */
  private async fetchAll(ids: readonly string[], includeMetadata: boolean): Promise<Map<string, { metadata?: VectorMetadata }>> {
    const found = new Map<string, { metadata?: VectorMetadata }>();
    for (const batch of chunks([...new Set(ids)], FETCH_BATCH)) {
      const vectors = await this.call("fetch", () => this.index.fetch(batch, { includeMetadata, namespace: this.namespace }));
      vectors.forEach((vector, i) => {
        if (vector) found.set(batch[i]!, vector);
      });
    }
    return found;
  }

  private toRecord(document: PreparedDocument, updatedAt: number): UpstashRecord {
    const { id, vector } = document;
    if (vector.length === 0 || !vector.every(Number.isFinite)) throw cannotStore(id, "its vector is empty or not finite");
    const sparseVector = documentSparseVector(document.terms, document.length, this.weighting);
    if ("error" in sparseVector) throw cannotStore(id, sparseVector.error);
    const metadata: VectorMetadata = {
      [RESERVED_KEY]: {
        title: document.title,
        contentHash: document.contentHash,
        modelVersion: document.modelVersion,
        dims: vector.length,
        length: document.length,
        updatedAt,
        lexical: this.lexicalTag,
      },
    };
    if (document.metadataJson !== null) {
      const user: unknown = JSON.parse(document.metadataJson);
      if (user === null || typeof user !== "object" || Array.isArray(user)) throw cannotStore(id, "its metadata is not a JSON object");
      metadata[USER_METADATA_KEY] = user as Record<string, unknown>;
    }
    const metadataBytes = bytes(JSON.stringify(metadata));
    if (metadataBytes > MAX_METADATA_BYTES) {
      throw cannotStore(id, `title and metadata take ${metadataBytes} bytes, over Upstash's ${MAX_METADATA_BYTES}-byte metadata limit`);
    }
    const dataBytes = bytes(document.text);
    if (dataBytes > MAX_DATA_BYTES) throw cannotStore(id, `its text takes ${dataBytes} bytes, over Upstash's ${MAX_DATA_BYTES}-byte data limit`);
    return { id, vector: Array.from(vector), sparseVector, data: document.text, metadata };
  }

  /** Runs one SDK call, turning any failure into an {@link UpstashIndexError} that names the operation. */
  private async call<T>(operation: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      throw new UpstashIndexError(operation, error);
    }
  }
}
