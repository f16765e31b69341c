/**
 * `IndexShard`: one shard of the embedded search index as a SQLite-backed Durable Object, called over DO RPC by
 * `ShardedIndex` (sharded-index.ts), which fans a search out to every shard in parallel and fuses their lists.
 *
 * It serves the `ShardApi` contract (shard-api.ts; `shardClient` in wiring.ts checks the stub against it): it stores
 * prepared documents and produces each list's best candidates of this shard — dense by a Hamming scan over sign bits
 * of the Matryoshka prefix, then int8 rescoring of the best candidates; BM25 over the SQLite inverted index with the
 * corpus-wide statistics the caller sends, so scores compare across shards; the sparse list (a model with the sparse
 * head) by Σ q_v·d_v over the sparse postings of the query's terms — a dot product of the two texts' own weights, so it
 * needs no corpus statistics to compare across shards. A metadata filter becomes a mask over the shard's documents
 * before any list ranks, so it never shortens a list while matching documents remain.
 *
 * SQLite is the source of truth; searches run on in-memory views of it, built on the first search after a write and
 * kept for the object's lifetime: the catalog (ids in order, BM25 lengths; metadata once a filter needs it), the
 * compressed dense codes per (model version, width) — 16 + 132 bytes per 128-d document instead of 512 — and each
 * query term's postings as typed arrays (BM25's, and the sparse list's per model version), loaded the first time a
 * query uses the term. Reading a common word piece's postings through SQL on every query cost seconds per query at
 * 100k documents; in memory BM25 is a few milliseconds. Any write drops every view, and the shard stats. Every method
 * is synchronous (SQLite calls are), so calls never interleave and a view can never be read half-rebuilt.
 *
 * Upserts are idempotent by (id, content hash, model version): an identical document is skipped and reported
 * unchanged; a changed one replaces every trace (row, vector, postings, token matrix, sparse postings) in one
 * transaction.
 *
 * Token matrices (the late head's, for the rerank stage) are read straight from SQLite for the few ids of a rerank
 * prefix — at most 100 rows of a few kB — so they get no in-memory view.
 *
 * Timing note: workerd's clock does not advance during synchronous compute (a Spectre mitigation; locally it moves in
 * 1 ms steps), so the per-stage timings here are coarse and often 0 for small shards.
 *
 * @module
 */
import { DurableObject } from "cloudflare:workers";
import {
  DEFAULT_RESCORE_FACTOR,
  PackedBm25,
  binaryRescoreSearch,
  matchesFilter,
  packMatrix,
  packedSparseSearch,
  packSignBits,
  quantizeInt8Rows,
  type Int8Rows,
  type MetadataFilter,
  type PackedPostings,
  type PackedSparsePostings,
  type QuantizedTokenMatrix,
} from "../../../src/retrieval/index.js";
import type { Env } from "./env.js";
import { MAX_SCAN_LIMIT } from "./search-index.js";
import type {
  DisplayFields,
  DocumentRef,
  PreparedDocument,
  ScannedDocument,
  ShardCandidatesRequest,
  ShardCandidatesResult,
  ShardStats,
  ShardTermStats,
  SparseTermPairs,
  StoredDocument,
  UpsertOutcome,
} from "./shard-api.js";
import { ShardStore } from "./shard-store.js";

/** Query terms beyond this many distinct pieces add cost but barely change BM25's ranking. */
export const MAX_QUERY_TERMS = 64;

/**
 * The Hamming stage keeps at least this many rows for int8 rescoring (or `DEFAULT_RESCORE_FACTOR` × depth when more):
 * sign bits of a 64-d prefix order neighbours coarsely, and rescoring 1,000 int8 rows costs well under a millisecond.
 */
const MIN_RESCORED_ROWS = 1_000;

/** A shard scan may read one row past the largest index scan page: `ShardedIndex.scan` looks one ahead to end a scan. */
const MAX_SHARD_SCAN_ROWS = MAX_SCAN_LIMIT + 1;

/** Every document of the shard in id order: the row space of the filter mask and of BM25. */
interface Catalog {
  ids: string[];
  indexOf: Map<string, number>;
  lengths: Uint32Array;
  /** Parsed metadata by row, loaded the first time a filter needs it. */
  metadata?: unknown[];
}

/** Compressed vectors of one model version at one width; `docRows[row]` is the row's index in the catalog. */
interface DenseIndex {
  ids: string[];
  docRows: Uint32Array;
  dims: number;
  bits: Uint32Array;
  codes: Int8Rows;
}

/** The distinct query terms that score (at most MAX_QUERY_TERMS, first occurrences first) and the query with only those. */
export function scoringTerms(terms: readonly string[]): { distinct: string[]; query: string[] } {
  const head = terms.slice(0, 4 * MAX_QUERY_TERMS);
  const distinct = [...new Set(head)].slice(0, MAX_QUERY_TERMS);
  const kept = new Set(distinct);
  return { distinct, query: head.filter((term) => kept.has(term)) };
}

/** Why `pairs` is not a sparse vector the store can hold (distinct non-negative integer ids, finite weights > 0), or null. */
export function sparseTermsProblem(pairs: SparseTermPairs): string | null {
  const seen = new Set<number>();
  for (const pair of pairs) {
    if (!Array.isArray(pair) || pair.length !== 2) return "every entry must be a [term, weight] pair";
    const [term, weight] = pair;
    if (!Number.isInteger(term) || term < 0) return `term ids must be non-negative integers, got ${String(term)}`;
    if (!(Number.isFinite(weight) && weight > 0)) return `term ${term} has weight ${String(weight)} (weights must be finite and > 0)`;
    if (seen.has(term)) return `term ${term} appears twice`;
    seen.add(term);
  }
  return null;
}

export class IndexShard extends DurableObject<Env> {
  private readonly store: ShardStore;
  private catalogView: Catalog | null = null;
  /** Compressed dense views by `${modelVersion}:${dims}`; cleared on every write. */
  private denseIndexes = new Map<string, DenseIndex>();
  /** BM25 over the catalog's rows, with the postings of every term a query has used since the last write. */
  private lexical: { scorer: PackedBm25; postings: Map<string, PackedPostings> } | null = null;
  /** Sparse postings over the catalog's rows by model version, each term loaded the first time a query uses it. */
  private sparseViews = new Map<string, Map<number, PackedSparsePostings>>();
  /** stats() scans the postings table; health checks call it often, writes are rarer. Cleared on every write. */
  private statistics: ShardStats | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.store = new ShardStore(ctx.storage.sql);
  }

  /** Ids among `refs` whose stored copy is missing or differs — the only documents worth embedding. */
  pending(refs: DocumentRef[]): string[] {
    const states = this.store.states(refs.map((ref) => ref.id));
    return refs
      .filter((ref) => {
        const state = states.get(ref.id);
        return !state || state.contentHash !== ref.contentHash || state.modelVersion !== ref.modelVersion;
      })
      .map((ref) => ref.id);
  }

  upsert(documents: PreparedDocument[]): UpsertOutcome {
    for (const document of documents) {
      if (document.vector.length === 0) throw new Error(`document "${document.id}" has an empty vector`);
      const tokens = document.tokens;
      if (tokens && !(tokens.data instanceof Int8Array && tokens.scales instanceof Float32Array && tokens.dims > 0 &&
        tokens.data.length === tokens.count * tokens.dims && tokens.scales.length === tokens.count)) {
        throw new Error(`document "${document.id}" has a malformed token matrix (expected int8 codes [count·dims] and float32 scales [count])`);
      }
      const problem = document.sparse && sparseTermsProblem(document.sparse);
      if (problem) throw new Error(`document "${document.id}" has malformed sparse terms: ${problem}`);
    }
    const outcome: UpsertOutcome = { upserted: [], unchanged: [] };
    const now = Date.now();
    this.ctx.storage.transactionSync(() => {
      for (const document of documents) {
        if (this.store.isCurrent(document)) {
          outcome.unchanged.push(document.id);
        } else {
          this.store.write(document, now);
          outcome.upserted.push(document.id);
        }
      }
    });
    if (outcome.upserted.length > 0) this.invalidate();
    return outcome;
  }

  deleteMany(ids: string[]): { deleted: string[]; missing: string[] } {
    const outcome = { deleted: [] as string[], missing: [] as string[] };
    this.ctx.storage.transactionSync(() => {
      for (const id of new Set(ids)) (this.store.remove(id) ? outcome.deleted : outcome.missing).push(id);
    });
    if (outcome.deleted.length > 0) this.invalidate();
    return outcome;
  }

  get(id: string): StoredDocument | null {
    return this.store.get(id);
  }

  documents(ids: string[]): StoredDocument[] {
    return this.store.documents(ids);
  }

  scan(afterId: string | null, limit: number): ScannedDocument[] {
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_SHARD_SCAN_ROWS) {
      throw new RangeError(`a shard scan reads a whole number from 1 to ${MAX_SHARD_SCAN_ROWS} of documents, got ${limit}`);
    }
    return this.store.scan(afterId, limit);
  }

  stats(): ShardStats {
    this.statistics ??= this.store.stats();
    return this.statistics;
  }

  /** Corpus size, total BM25 length and each term's document frequency in this shard. */
  termStats(terms: string[]): ShardTermStats {
    const { distinct } = scoringTerms(terms);
    const catalog = this.catalog();
    const lexical = this.lexicalIndex(distinct);
    let totalLength = 0;
    for (const length of catalog.lengths) totalLength += length;
    const df: Record<string, number> = {};
    for (const term of distinct) df[term] = lexical.postings.get(term)?.docs.length ?? 0;
    return { docCount: catalog.ids.length, totalLength, df };
  }

  candidates(request: ShardCandidatesRequest): ShardCandidatesResult {
    const timings = { viewMs: 0, filterMs: 0, denseMs: 0, lexicalMs: 0, sparseMs: 0 };
    let mark = Date.now();
    const catalog = this.catalog();
    timings.viewMs += Date.now() - mark;

    mark = Date.now();
    const allowed = request.filterJson === undefined ? undefined : this.filterMask(JSON.parse(request.filterJson) as MetadataFilter);
    timings.filterMs = Date.now() - mark;

    const result: ShardCandidatesResult = { timings };
    if (request.lists.dense) {
      const { vector, modelVersion } = request;
      if (!vector || !modelVersion) throw new Error("the dense list needs the query vector and its model version");
      mark = Date.now();
      const index = this.denseIndex(modelVersion, vector.length);
      timings.viewMs += Date.now() - mark;
      mark = Date.now();
      let rowsAllowed: Uint8Array | undefined;
      if (allowed) {
        rowsAllowed = new Uint8Array(index.ids.length);
        for (let row = 0; row < rowsAllowed.length; row++) rowsAllowed[row] = allowed[index.docRows[row]!]!;
      }
      const factor = Math.max(DEFAULT_RESCORE_FACTOR, Math.ceil(MIN_RESCORED_ROWS / Math.max(request.depth, 1)));
      result.dense = binaryRescoreSearch(index.bits, index.codes, vector, request.depth, factor, rowsAllowed).map((hit) => ({
        id: index.ids[hit.id]!,
        score: hit.score,
      }));
      timings.denseMs = Date.now() - mark;
    }
    if (request.lists.lexical) {
      if (!request.terms) throw new Error("the lexical list needs the query terms");
      mark = Date.now();
      const { distinct, query } = scoringTerms(request.terms);
      const lexical = this.lexicalIndex(distinct);
      const corpus = request.corpus && {
        docCount: request.corpus.docCount,
        avgDocLength: request.corpus.avgDocLength,
        df: new Map(Object.entries(request.corpus.df)),
      };
      result.lexical = lexical.scorer.search(query, lexical.postings, request.depth, { corpus, allowed }).map((hit) => ({
        id: catalog.ids[hit.id]!,
        score: hit.score,
      }));
      timings.lexicalMs = Date.now() - mark;
    }
    if (request.lists.sparse) {
      const { sparseTerms, modelVersion } = request;
      if (!sparseTerms || !modelVersion) throw new Error("the sparse list needs the query's sparse terms and their model version");
      const problem = sparseTermsProblem(sparseTerms);
      if (problem) throw new Error(`malformed query sparse terms: ${problem}`);
      mark = Date.now();
      const postings = this.sparseIndex(modelVersion, sparseTerms.map(([term]) => term));
      result.sparse = packedSparseSearch(sparseTerms, postings, catalog.ids.length, request.depth, allowed).map((hit) => ({
        id: catalog.ids[hit.id]!,
        score: hit.score,
      }));
      timings.sparseMs = Date.now() - mark;
    }
    return result;
  }

  tokenMatrices(ids: string[], modelVersion: string): Record<string, QuantizedTokenMatrix> {
    return Object.fromEntries(this.store.tokenMatrices(ids, modelVersion));
  }

  fields(ids: string[]): Record<string, DisplayFields> {
    return Object.fromEntries(this.store.fields(ids));
  }

  private catalog(): Catalog {
    if (!this.catalogView) {
      const { ids, lengths } = this.store.documentLengths();
      this.catalogView = { ids, indexOf: new Map(ids.map((id, index) => [id, index])), lengths };
    }
    return this.catalogView;
  }

  /** 1 for every catalog row whose metadata matches. */
  private filterMask(filter: MetadataFilter): Uint8Array {
    const catalog = this.catalog();
    if (!catalog.metadata) {
      const metadata = new Array<unknown>(catalog.ids.length).fill(null);
      for (const { id, metadataJson } of this.store.metadata()) {
        const row = catalog.indexOf.get(id);
        if (row !== undefined && metadataJson !== null) metadata[row] = JSON.parse(metadataJson);
      }
      catalog.metadata = metadata;
    }
    const mask = new Uint8Array(catalog.ids.length);
    catalog.metadata.forEach((metadata, row) => {
      if (matchesFilter(metadata, filter)) mask[row] = 1;
    });
    return mask;
  }

  /** Sign bits and int8 codes of the normalised `dims`-prefix of one model version's vectors, built on first use after a write. */
  private denseIndex(modelVersion: string, dims: number): DenseIndex {
    const key = `${modelVersion}:${dims}`;
    let index = this.denseIndexes.get(key);
    if (!index) {
      const catalog = this.catalog();
      const { ids, vectors } = this.store.vectors(modelVersion, dims);
      // The float matrix only lives while the codes are made: the view keeps 16 + 132 bytes per 128-d row, not 512.
      const matrix = packMatrix(vectors, dims);
      index = {
        ids,
        docRows: Uint32Array.from(ids, (id) => catalog.indexOf.get(id)!),
        dims,
        bits: packSignBits(matrix, dims),
        codes: quantizeInt8Rows(matrix, dims),
      };
      this.denseIndexes.set(key, index);
    }
    return index;
  }

  /** BM25's view with the postings of `terms` loaded (each term read from SQLite once per view). */
  private lexicalIndex(terms: readonly string[]): { scorer: PackedBm25; postings: Map<string, PackedPostings> } {
    const catalog = this.catalog();
    this.lexical ??= { scorer: new PackedBm25(catalog.lengths), postings: new Map() };
    const index = this.lexical;
    for (const term of terms) {
      if (index.postings.has(term)) continue;
      const { docIds, tfs } = this.store.termPostings(term);
      const docs = new Uint32Array(docIds.length);
      const counts = new Uint16Array(docIds.length);
      let kept = 0;
      docIds.forEach((id, i) => {
        const doc = catalog.indexOf.get(id);
        // Postings and documents are written in one transaction, so a miss would mean a damaged store: skip, not crash.
        if (doc === undefined) return;
        docs[kept] = doc;
        counts[kept++] = Math.min(tfs[i]!, 0xffff);
      });
      index.postings.set(term, { docs: docs.subarray(0, kept), tfs: counts.subarray(0, kept) });
    }
    return index;
  }

  /** The sparse postings of `terms` among `modelVersion`'s documents, over catalog rows (each term read once per view). */
  private sparseIndex(modelVersion: string, terms: readonly number[]): Map<number, PackedSparsePostings> {
    const catalog = this.catalog();
    let view = this.sparseViews.get(modelVersion);
    if (!view) this.sparseViews.set(modelVersion, (view = new Map()));
    for (const term of terms) {
      if (view.has(term)) continue;
      const { docIds, weights } = this.store.sparsePostings(term, modelVersion);
      const docs = new Uint32Array(docIds.length);
      const values = new Float64Array(docIds.length);
      let kept = 0;
      docIds.forEach((id, i) => {
        const row = catalog.indexOf.get(id);
        // Written in one transaction with the document, as BM25's postings are: a miss would mean a damaged store.
        if (row === undefined) return;
        docs[kept] = row;
        values[kept++] = weights[i]!;
      });
      view.set(term, { docs: docs.subarray(0, kept), weights: values.subarray(0, kept) });
    }
    return view;
  }

  private invalidate(): void {
    this.catalogView = null;
    this.denseIndexes.clear();
    this.lexical = null;
    this.sparseViews.clear();
    this.statistics = null;
  }
}
