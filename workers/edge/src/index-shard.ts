/**
 * `IndexShard`: one shard of the search index as a SQLite-backed Durable Object, called over DO RPC.
 *
 * It serves the `ShardApi` contract (shard-api.ts; `shardClient` in wiring.ts checks the stub against it): it stores
 * prepared documents and ranks them — dense cosine top-k over an in-memory matrix, BM25 over the SQLite inverted
 * index, and their fusion (convex combination of normalised scores, or weighted RRF on request), all three from
 * `src/retrieval`. SQLite is the source of truth; searches run on in-memory views of it, built on the first search
 * after a write and kept for the object's lifetime: the packed dense matrix (rebuilding it reads every vector), and for
 * BM25 the documents' lengths plus each query term's postings as typed arrays, loaded the first time a query uses the
 * term. Reading a common word piece's postings through SQL on every query cost seconds per query at 100k documents;
 * in memory the whole BM25 scoring is a few milliseconds. Any write drops every view, and the shard stats. Every
 * method is synchronous (SQLite calls are), so calls never interleave and a view can never be read half-rebuilt.
 *
 * Upserts are idempotent by (id, content hash, model version): an identical document is skipped and reported
 * unchanged; a changed one replaces every trace (row, vector, postings) in one transaction.
 *
 * Timing note: workerd's clock does not advance during synchronous compute (a Spectre mitigation; locally it moves in
 * 1 ms steps), so the per-stage timings here are coarse and often 0 for small shards.
 *
 * @module
 */
import { DurableObject } from "cloudflare:workers";
import {
  PackedBm25,
  candidateDepth,
  combineRankings,
  denseSearch,
  listsFor,
  packMatrix,
  type PackedPostings,
  type RankedHit,
} from "../../../src/retrieval/index.js";
import type { Env } from "./env.js";
import type {
  DocumentRef,
  PreparedDocument,
  ShardHit,
  ShardSearchRequest,
  ShardSearchResult,
  ShardStats,
  StoredDocument,
  UpsertOutcome,
} from "./shard-api.js";
import { ShardStore } from "./shard-store.js";

/** Query terms beyond this many distinct pieces add cost but barely change BM25's ranking. */
const MAX_QUERY_TERMS = 64;

interface DenseIndex {
  ids: string[];
  matrix: Float32Array;
  dims: number;
}

/** BM25's in-memory view: documents by index (id order), and the postings of every term a query has used so far. */
interface LexicalIndex {
  ids: string[];
  indexOf: Map<string, number>;
  scorer: PackedBm25;
  postings: Map<string, PackedPostings>;
}

export class IndexShard extends DurableObject<Env> {
  private readonly store: ShardStore;
  /** Packed matrices by `${modelVersion}:${dims}`; cleared on every write. */
  private denseIndexes = new Map<string, DenseIndex>();
  private lexical: LexicalIndex | null = null;
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

  delete(id: string): { deleted: boolean } {
    const deleted = this.ctx.storage.transactionSync(() => this.store.remove(id));
    if (deleted) this.invalidate();
    return { deleted };
  }

  get(id: string): StoredDocument | null {
    return this.store.get(id);
  }

  stats(): ShardStats {
    this.statistics ??= this.store.stats();
    return this.statistics;
  }

  search(request: ShardSearchRequest): ShardSearchResult {
    const started = Date.now();
    const { mode, topK } = request;
    const use = listsFor(mode);
    const depth = candidateDepth(mode, topK, request.candidates);
    const timings = { matrixMs: 0, denseMs: 0, lexicalMs: 0, fuseMs: 0, totalMs: 0 };

    let dense: RankedHit[] | undefined;
    if (use.dense) {
      const { vector, modelVersion } = request;
      if (!vector || !modelVersion) throw new Error(`${mode} search needs the query vector and its model version`);
      let mark = Date.now();
      const index = this.denseIndex(modelVersion, vector.length);
      timings.matrixMs = Date.now() - mark;
      mark = Date.now();
      dense = denseSearch(index.matrix, index.dims, vector, depth).map((hit) => ({ ...hit, id: index.ids[hit.id]! }));
      timings.denseMs = Date.now() - mark;
    }

    let lexical: RankedHit[] | undefined;
    if (use.lexical) {
      if (!request.terms) throw new Error(`${mode} search needs the query terms`);
      const mark = Date.now();
      const distinct = new Set([...new Set(request.terms.slice(0, 4 * MAX_QUERY_TERMS))].slice(0, MAX_QUERY_TERMS));
      // Only the kept terms score: the view may hold postings of other terms, loaded for earlier queries.
      const terms = request.terms.slice(0, 4 * MAX_QUERY_TERMS).filter((term) => distinct.has(term));
      const index = this.lexicalIndex([...distinct]);
      lexical = index.scorer.search(terms, index.postings, depth).map((hit) => ({ ...hit, id: index.ids[hit.id]! }));
      timings.lexicalMs = Date.now() - mark;
    }

    const mark = Date.now();
    const ranked = combineRankings(mode, { dense, lexical }, {
      topK,
      fusion: request.fusion,
      weights: request.weights,
      defaults: request.fusionDefault,
      candidates: depth,
    });
    const fields = this.store.fields(ranked.map((hit) => hit.id));
    const hits: ShardHit[] = ranked.flatMap((hit) => {
      const stored = fields.get(hit.id);
      return stored ? [{ id: hit.id, score: hit.score, ranks: hit.ranks, scores: hit.scores, ...stored }] : [];
    });
    timings.fuseMs = Date.now() - mark;
    timings.totalMs = Date.now() - started;
    return { hits, timings, candidates: { dense: dense?.length ?? 0, lexical: lexical?.length ?? 0 } };
  }

  /** The packed, prefix-normalised matrix of one model version at one width, built on first use after a write. */
  private denseIndex(modelVersion: string, dims: number): DenseIndex {
    const key = `${modelVersion}:${dims}`;
    let index = this.denseIndexes.get(key);
    if (!index) {
      const { ids, vectors } = this.store.vectors(modelVersion, dims);
      index = { ids, matrix: packMatrix(vectors, dims), dims };
      this.denseIndexes.set(key, index);
    }
    return index;
  }

  /** BM25's view with the postings of `terms` loaded (each term read from SQLite once per view). */
  private lexicalIndex(terms: readonly string[]): LexicalIndex {
    if (!this.lexical) {
      const { ids, lengths } = this.store.documentLengths();
      this.lexical = { ids, indexOf: new Map(ids.map((id, index) => [id, index])), scorer: new PackedBm25(lengths), postings: new Map() };
    }
    const index = this.lexical;
    for (const term of terms) {
      if (index.postings.has(term)) continue;
      const { docIds, tfs } = this.store.termPostings(term);
      const docs = new Uint32Array(docIds.length);
      const counts = new Uint16Array(docIds.length);
      let kept = 0;
      docIds.forEach((id, i) => {
        const doc = index.indexOf.get(id);
        // Postings and documents are written in one transaction, so a miss would mean a damaged store: skip, not crash.
        if (doc === undefined) return;
        docs[kept] = doc;
        counts[kept++] = Math.min(tfs[i]!, 0xffff);
      });
      index.postings.set(term, { docs: docs.subarray(0, kept), tfs: counts.subarray(0, kept) });
    }
    return index;
  }

  private invalidate(): void {
    this.denseIndexes.clear();
    this.lexical = null;
    this.statistics = null;
  }
}
