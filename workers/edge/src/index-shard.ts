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
 * SQLite is the source of truth; searches run on in-memory views of it (shard-views.ts): the catalog of rows with
 * BM25 lengths and every term's postings, built on the first search of the object's lifetime; the compressed dense codes
 * per (model version, width) — 16 + 132 bytes per 128-d document instead of 512 — and each model version's sparse
 * postings, loaded on first use. Writes update the views after they commit instead of dropping them, so a search after
 * a write costs what any other search does. Every method is synchronous (SQLite calls are), so calls never interleave
 * and a view is never read half-updated.
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
import { DEFAULT_RESCORE_FACTOR, type MetadataFilter, type QuantizedTokenMatrix } from "../../../src/retrieval/index.js";
import type { Env } from "./env.js";
import { MAX_SCAN_LIMIT } from "./search-index.js";
import type {
  DisplayFields,
  DocumentRef,
  PreparedDocument,
  RerankInputs,
  ScannedDocument,
  ShardCandidatesRequest,
  ShardCandidatesResult,
  ShardStats,
  ShardTermStats,
  SparseTermPairs,
  StoredDocument,
  UpsertOutcome,
} from "./shard-api.js";
import { ShardStore, type PreviousPostings } from "./shard-store.js";
import { scoringTerms } from "./scoring-terms.js";
import { ShardViews } from "./shard-views.js";


/**
 * The Hamming stage keeps at least this many rows for int8 rescoring (or `DEFAULT_RESCORE_FACTOR` × depth when more):
 * sign bits of a 64-d prefix order neighbours coarsely, and rescoring 1,000 int8 rows costs well under a millisecond.
 */
const MIN_RESCORED_ROWS = 1_000;

/** A shard scan may read one row past the largest index scan page: `ShardedIndex.scan` looks one ahead to end a scan. */
const MAX_SHARD_SCAN_ROWS = MAX_SCAN_LIMIT + 1;

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
  private viewsBuilt: ShardViews | null = null;
  /**
   * Changes with every committed write, and differs between two lives of the object: a coordinator that cached
   * corpus statistics checks it to know they still hold (sharded-index.ts).
   */
  private readonly epoch = crypto.randomUUID();
  private writes = 0;
  /** stats() counts by SQL and from the views; health checks call it often, writes are rarer. Cleared on every write. */
  private statistics: ShardStats | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.store = new ShardStore(ctx.storage.sql, (closure) => ctx.storage.transactionSync(closure));
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
    const written: { document: PreparedDocument; previous: PreviousPostings | null }[] = [];
    const now = Date.now();
    this.ctx.storage.transactionSync(() => {
      for (const document of documents) {
        if (this.store.isCurrent(document)) {
          outcome.unchanged.push(document.id);
        } else {
          written.push({ document, previous: this.store.write(document, now) });
          outcome.upserted.push(document.id);
        }
      }
    });
    // Only after the commit: a transaction that threw left SQLite, and so the views, unchanged.
    for (const { document, previous } of written) this.viewsBuilt?.upserted(document, previous);
    if (written.length > 0) this.wrote();
    return outcome;
  }

  deleteMany(ids: string[]): { deleted: string[]; missing: string[] } {
    const outcome = { deleted: [] as string[], missing: [] as string[] };
    const removed: { id: string; previous: PreviousPostings }[] = [];
    this.ctx.storage.transactionSync(() => {
      for (const id of new Set(ids)) {
        const previous = this.store.remove(id);
        if (previous) removed.push({ id, previous });
        (previous ? outcome.deleted : outcome.missing).push(id);
      }
    });
    for (const { id, previous } of removed) this.viewsBuilt?.removed(id, previous);
    if (removed.length > 0) this.wrote();
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
    if (!this.statistics) {
      const { documents, avgDocLength, modelVersions } = this.store.documentStats();
      const lexical = this.views().lexical;
      const sparsePostings = this.store.sparsePostingCount();
      this.statistics = {
        documents,
        terms: lexical.termCount,
        postings: lexical.postingCount,
        avgDocLength,
        modelVersions,
        ...(sparsePostings > 0 ? { sparsePostings } : {}),
      };
    }
    return this.statistics;
  }

  /** Corpus size, total BM25 length and each term's document frequency in this shard, as of `generation`. */
  termStats(terms: string[]): ShardTermStats {
    return { ...this.views().lexical.stats(scoringTerms(terms).distinct), generation: this.generation };
  }

  private get generation(): string {
    return `${this.epoch}:${this.writes}`;
  }

  private wrote(): void {
    this.writes += 1;
    this.statistics = null;
  }

  candidates(request: ShardCandidatesRequest): ShardCandidatesResult {
    const timings = { viewMs: 0, filterMs: 0, denseMs: 0, lexicalMs: 0, sparseMs: 0 };
    let mark = Date.now();
    const views = this.views();
    timings.viewMs += Date.now() - mark;

    mark = Date.now();
    const filtered = request.filterJson === undefined ? undefined : views.filterMask(JSON.parse(request.filterJson) as MetadataFilter);
    // Every list skips dead rows (replaced or deleted documents); without a filter or dead rows no mask is needed.
    const allowed = filtered ?? (views.hasDeadRows ? views.liveMask() : undefined);
    timings.filterMs = Date.now() - mark;

    const result: ShardCandidatesResult = { timings, generation: this.generation };
    if (request.lists.dense) {
      const { vector, modelVersion } = request;
      if (!vector || !modelVersion) throw new Error("the dense list needs the query vector and its model version");
      mark = Date.now();
      const index = views.denseIndex(modelVersion, vector.length);
      timings.viewMs += Date.now() - mark;
      mark = Date.now();
      const factor = Math.max(DEFAULT_RESCORE_FACTOR, Math.ceil(MIN_RESCORED_ROWS / Math.max(request.depth, 1)));
      result.dense = index.search(vector, request.depth, factor, allowed).map((hit) => ({
        id: views.ids[hit.id]!,
        score: hit.score,
      }));
      timings.denseMs = Date.now() - mark;
    }
    if (request.lists.lexical) {
      if (!request.terms) throw new Error("the lexical list needs the query terms");
      mark = Date.now();
      const { query } = scoringTerms(request.terms);
      const corpus = request.corpus && {
        docCount: request.corpus.docCount,
        avgDocLength: request.corpus.avgDocLength,
        df: new Map(Object.entries(request.corpus.df)),
      };
      result.lexical = views.lexical.search(query, request.depth, allowed ?? views.liveMask(), corpus).map((hit) => ({
        id: views.ids[hit.id]!,
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
      const index = views.sparseIndex(modelVersion);
      result.sparse = index.search(sparseTerms, request.depth, allowed ?? views.liveMask()).map((hit) => ({
        id: views.ids[hit.id]!,
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

  rerankInputs(tokenIds: string[], fieldIds: string[], modelVersion: string): RerankInputs {
    return { tokens: this.tokenMatrices(tokenIds, modelVersion), fields: this.fields(fieldIds) };
  }

  /** The in-memory views, built on first use and rebuilt when dead rows have piled up (see shard-views.ts). */
  private views(): ShardViews {
    if (!this.viewsBuilt || this.viewsBuilt.stale) this.viewsBuilt = ShardViews.build(this.store);
    return this.viewsBuilt;
  }
}
