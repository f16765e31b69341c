/**
 * The embedded index (the default backend): documents spread over several `IndexShard` Durable Objects by a hash of
 * their id, every search fanned out to all shards in parallel. One shard's in-memory views bound what one object can
 * hold; N shards hold N times that, and each scans only its own share.
 *
 * A search runs in up to three round trips, each to every shard at once:
 *  1. (lexical list, several shards) each shard's document count, total length and the query terms' document
 *     frequencies, summed into corpus-wide BM25 statistics — so a document's BM25 does not depend on its shard. The
 *     isolate keeps these per index, with each shard's write generation: when every query term is cached, this round
 *     is skipped, and the shards' answers in round 2 carry their generations — if any moved (a write in between), the
 *     statistics are fetched afresh and round 2 is repeated, so a ranking never rests on stale statistics;
 *  2. each shard's best `depth` candidates per list (dense: Hamming scan + int8 rescoring; lexical: BM25 with the
 *     corpus statistics; sparse: the dot product of learned term weights, which needs no corpus statistics), the
 *     metadata filter applied inside the shard before ranking;
 *  3. (rerank asked for) the token matrices of the fused ranking's top k, from the shards that hold them;
 *  4. the display fields of the page's documents only — fetched with 3 when the page lies within the top k (or
 *     fetching the whole top k's fields costs at most twice the page's), so a reranked page of the default size takes
 *     as many round trips as an unreranked one; a page past the top k needs no matrix at all.
 * Between 2 and 3 the lists are merged across shards (exact: a global top-`depth` is within the union of per-shard
 * tops) and fused with `combineRankings` — the same code and defaults as the single-shard index had. Between 3 and 4
 * the top k are rescored by MaxSim fused with their first-stage score (src/retrieval/late.ts `fuseLateInteraction`).
 * k does not depend on the page: the first-stage ranking is read at a fixed depth, so its top k, and their rerank,
 * are the same for every page, and pages past k continue in first-stage order.
 *
 * `scan` walks the shards in order (0, 1, …), each in id order, so its opaque cursor is just (shard, last id) — plus
 * the shard count, so that a cursor of another index layout is refused rather than misread. A page reads one document
 * past its end, which tells whether anything follows: a scan never hands out a cursor to an empty page (short of a
 * delete in between).
 *
 * The shard count is part of the index's identity: shard names encode it (`<prefix>/<i>-of-<n>`), so changing
 * INDEX_SHARDS starts a new, empty index rather than silently losing the documents whose hash moved. A count of 1
 * keeps the bare prefix as the name, which is where single-shard indexes have always lived.
 *
 * @module
 */
import {
  MAX_LATE_RERANK_DEPTH,
  combineRankings,
  fuseLateInteraction,
  listsFor,
  prefixMaxSims,
  type QuantizedTokenMatrix,
  type RankedHit,
} from "../../../src/retrieval/index.js";
import { scoringTerms } from "./scoring-terms.js";
import {
  PAGE_DEPTH,
  checkScanLimit,
  type IndexHit,
  type IndexSearchRequest,
  type IndexSearchResult,
  type IndexStats,
  type SearchIndex,
} from "./search-index.js";
import type {
  CorpusTermStats,
  DisplayFields,
  DocumentRef,
  PreparedDocument,
  ScannedDocument,
  ShardApi,
  StoredDocument,
  UpsertOutcome,
} from "./shard-api.js";

export const MAX_SHARDS = 64;

/** The Durable Object names of an index of `count` shards. */
export function shardNames(prefix: string, count: number): string[] {
  if (!Number.isInteger(count) || count < 1 || count > MAX_SHARDS) {
    throw new RangeError(`the shard count must be a whole number from 1 to ${MAX_SHARDS}, got ${count}`);
  }
  return count === 1 ? [prefix] : Array.from({ length: count }, (_, i) => `${prefix}/${i + 1}-of-${count}`);
}

/** FNV-1a over the id's UTF-16 code units: stable across runtimes, cheap, and spreads similar ids evenly. */
export function shardOf(id: string, count: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    hash ^= id.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % count;
}

/** Orders by score, then id, so equal scores rank the same whatever order the shards answered in. */
function byScoreThenId(a: { id: string; score: number }, b: { id: string; score: number }): number {
  return b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** The best `depth` of several shards' lists, re-ranked 1…n. */
function mergeLists(lists: readonly (readonly { id: string; score: number }[] | undefined)[], depth: number): RankedHit[] {
  return lists
    .flatMap((list) => list ?? [])
    .sort(byScoreThenId)
    .slice(0, depth)
    .map((hit, index) => ({ id: hit.id, score: hit.score, rank: index + 1 }));
}

/** Where a scan resumes: after `afterId` in shard `shard` (from its first document when null). */
interface ScanPosition {
  shard: number;
  afterId: string | null;
}

/** base64url of the UTF-8 JSON `[shard count, shard, last id]`: opaque to callers, safe in a URL or a queue message. */
function encodeScanCursor(shards: number, position: ScanPosition): string {
  let binary = "";
  for (const byte of new TextEncoder().encode(JSON.stringify([shards, position.shard, position.afterId]))) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function decodeScanCursor(cursor: string, shards: number): ScanPosition {
  const shown = cursor.length > 80 ? `${cursor.slice(0, 80)}…` : cursor;
  const malformed = (why: string): Error => new Error(`malformed scan cursor "${shown}": ${why} (pass null to start a scan)`);
  let decoded: unknown;
  try {
    if (!/^[A-Za-z0-9_-]+$/.test(cursor)) throw new Error("not base64url");
    const binary = atob(cursor.replace(/-/g, "+").replace(/_/g, "/"));
    decoded = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(Uint8Array.from(binary, (c) => c.charCodeAt(0))));
  } catch {
    throw malformed("not a cursor this index made");
  }
  if (!Array.isArray(decoded) || decoded.length !== 3) throw malformed("not a cursor this index made");
  const [count, shard, afterId] = decoded as unknown[];
  if (count !== shards) throw malformed(`it belongs to an index of ${String(count)} shards, this one has ${shards}`);
  if (typeof shard !== "number" || !Number.isInteger(shard) || shard < 0 || shard >= shards) throw malformed(`no shard ${String(shard)}`);
  if (afterId !== null && typeof afterId !== "string") throw malformed("its position is not a document id");
  return { shard, afterId };
}

/** Corpus-wide BM25 statistics as of each shard's write generation (shard order), with the terms seen so far. */
interface CachedCorpusStats {
  generations: string[];
  docCount: number;
  totalLength: number;
  df: Map<string, number>;
}

/** Cached statistics by index (its shard names); bounded, since query terms come from users. */
const corpusStatsCache = new Map<string, CachedCorpusStats>();
const MAX_CACHED_INDEXES = 64;
const MAX_CACHED_TERMS = 100_000;

/** A ranked document before its display fields are attached. */
type IndexRankedHit = Pick<IndexHit, "id" | "score" | "ranks" | "scores">;

function elapsed(start: number): number {
  return Math.round((performance.now() - start) * 100) / 100;
}

export class ShardedIndex implements SearchIndex {
  /** Shards store the late head's token matrices (shard-store.ts), so searches can rerank by them. */
  readonly lateRerank = true;
  /** Shards store the sparse head's postings (shard-store.ts), so searches can read the sparse list. */
  readonly learnedSparse = true;

  /**
   * `connect` gives the client of a shard by name; it is called afresh for every operation, because a Durable Object
   * stub belongs to the request that made it (Workers refuse I/O through another request's stub).
   */
  constructor(
    private readonly names: readonly string[],
    private readonly connect: (name: string) => ShardApi,
  ) {
    if (names.length < 1) throw new RangeError("a sharded index needs at least one shard");
  }

  /** This operation's clients of every shard, in name order. */
  private get shards(): ShardApi[] {
    return this.names.map((name) => this.connect(name));
  }

  /** Items grouped by the shard that owns their id, as [shard index, items] pairs. */
  private byShard<T>(items: readonly T[], idOf: (item: T) => string): [ShardApi, T[]][] {
    const groups = new Map<number, T[]>();
    for (const item of items) {
      const shard = shardOf(idOf(item), this.names.length);
      let group = groups.get(shard);
      if (!group) groups.set(shard, (group = []));
      group.push(item);
    }
    return [...groups].map(([shard, group]) => [this.connect(this.names[shard]!), group]);
  }

  async pending(refs: DocumentRef[]): Promise<string[]> {
    const answers = await Promise.all(this.byShard(refs, (ref) => ref.id).map(([shard, group]) => shard.pending(group)));
    const pending = new Set(answers.flat());
    return refs.filter((ref) => pending.has(ref.id)).map((ref) => ref.id);
  }

  async upsert(documents: PreparedDocument[]): Promise<UpsertOutcome> {
    const outcomes = await Promise.all(this.byShard(documents, (d) => d.id).map(([shard, group]) => shard.upsert(group)));
    const upserted = new Set(outcomes.flatMap((outcome) => outcome.upserted));
    const ids = documents.map((d) => d.id);
    return { upserted: ids.filter((id) => upserted.has(id)), unchanged: ids.filter((id) => !upserted.has(id)) };
  }

  async delete(ids: string[]): Promise<{ deleted: string[]; missing: string[] }> {
    const unique = [...new Set(ids)];
    const outcomes = await Promise.all(this.byShard(unique, (id) => id).map(([shard, group]) => shard.deleteMany(group)));
    const deleted = new Set(outcomes.flatMap((outcome) => outcome.deleted));
    return { deleted: unique.filter((id) => deleted.has(id)), missing: unique.filter((id) => !deleted.has(id)) };
  }

  get(id: string): Promise<StoredDocument | null> {
    return this.connect(this.names[shardOf(id, this.names.length)]!).get(id);
  }

  async documents(ids: string[]): Promise<StoredDocument[]> {
    const answers = await Promise.all(this.byShard([...new Set(ids)], (id) => id).map(([shard, group]) => shard.documents(group)));
    return answers.flat();
  }

  async scan(cursor: string | null, limit: number): Promise<{ documents: ScannedDocument[]; cursor: string | null }> {
    checkScanLimit(limit);
    let { shard, afterId } = cursor === null ? { shard: 0, afterId: null } : decodeScanCursor(cursor, this.names.length);
    const documents: ScannedDocument[] = [];
    let last: ScanPosition = { shard, afterId };
    // Shards are read one after another, not in parallel: a page usually lies within one shard, and reading ahead in
    // the others would fetch rows the page has no room for.
    for (; shard < this.names.length; shard++, afterId = null) {
      // One row more than the page still has room for: if it arrives, the scan continues after this page.
      const wanted = limit + 1 - documents.length;
      const rows = await this.connect(this.names[shard]!).scan(afterId, wanted);
      for (const row of rows) {
        if (documents.length === limit) return { documents, cursor: encodeScanCursor(this.names.length, last) };
        documents.push(row);
        last = { shard, afterId: row.id };
      }
    }
    return { documents, cursor: null };
  }

  async stats(): Promise<IndexStats> {
    const all = await Promise.all(this.shards.map((shard) => shard.stats()));
    const modelVersions: Record<string, number> = {};
    for (const stats of all) {
      for (const [version, count] of Object.entries(stats.modelVersions)) modelVersions[version] = (modelVersions[version] ?? 0) + count;
    }
    return {
      backend: "durable-objects",
      documents: all.reduce((sum, stats) => sum + stats.documents, 0),
      shards: this.names.length,
      modelVersions,
    };
  }

  async search(request: IndexSearchRequest): Promise<IndexSearchResult> {
    const { mode, topK, offset } = request;
    const use = listsFor(mode, { sparse: request.sparseTerms !== undefined });
    const window = offset + topK;
    const rerank = request.rerank;
    if (use.sparse && (!request.sparseTerms || !request.modelVersion)) throw new Error(`${mode} search needs the query's sparse terms and their model version`);
    if (rerank) {
      if (!Number.isInteger(rerank.k) || rerank.k < 1 || rerank.k > MAX_LATE_RERANK_DEPTH) {
        throw new RangeError(`the rerank depth must be a whole number from 1 to ${MAX_LATE_RERANK_DEPTH}, got ${rerank.k}`);
      }
      if (!request.modelVersion) throw new Error("a reranked search needs the query's model version");
    }
    const depth = Math.max(request.candidates ?? PAGE_DEPTH, window + 1);
    const timings: Record<string, number> = {};

    let corpus: CorpusTermStats | undefined;
    let assumed: readonly string[] | undefined;
    const shards = this.shards;
    const needsCorpus = use.lexical && shards.length > 1;
    if (needsCorpus) {
      if (!request.terms) throw new Error(`${mode} search needs the query terms`);
      const cached = this.cachedCorpusStats(request.terms);
      if (cached) {
        ({ corpus, generations: assumed } = cached);
        timings.statsMs = 0; // no round trip: the statistics came from this isolate's cache
      } else {
        const started = performance.now();
        corpus = await this.corpusStats(shards, request.terms);
        timings.statsMs = elapsed(started);
      }
    }

    let started = performance.now();
    const ask = () =>
      Promise.all(
        shards.map((shard) =>
          shard.candidates({
            lists: use,
            depth,
            vector: use.dense ? request.vector : undefined,
            modelVersion: request.modelVersion,
            terms: use.lexical ? request.terms : undefined,
            sparseTerms: use.sparse ? request.sparseTerms : undefined,
            corpus,
            filterJson: request.filter === undefined ? undefined : JSON.stringify(request.filter),
          }),
        ),
      );
    let answers = await ask();
    if (assumed && answers.some((answer, i) => answer.generation !== assumed[i])) {
      // A write reached some shard since the cached statistics: exact ones, then the lists again.
      const restarted = performance.now();
      corpus = await this.corpusStats(shards, request.terms!);
      timings.statsMs = elapsed(restarted);
      answers = await ask();
    }
    timings.shardsMs = elapsed(started);
    // The slowest shard's own figures: the fan-out waits for it.
    for (const stage of ["viewMs", "filterMs", "denseMs", "lexicalMs", ...(use.sparse ? (["sparseMs"] as const) : [])] as const) {
      timings[`shard.${stage}`] = Math.max(...answers.map((answer) => answer.timings[stage]));
    }

    started = performance.now();
    const dense = use.dense ? mergeLists(answers.map((a) => a.dense), depth) : undefined;
    const lexical = use.lexical ? mergeLists(answers.map((a) => a.lexical), depth) : undefined;
    // Sparse scores are dot products of the query's and each document's own weights: comparable across shards as they are.
    const sparse = use.sparse ? mergeLists(answers.map((a) => a.sparse), depth) : undefined;
    // One result past the page tells whether another page exists; a rerank needs its whole prefix, whatever the page.
    const firstStage = combineRankings(mode, { dense, lexical, sparse }, {
      topK: Math.max(window + 1, rerank?.k ?? 0),
      fusion: request.fusion,
      weights: request.weights,
      defaults: request.fusionDefault,
      candidates: depth,
    });
    timings.fuseMs = elapsed(started);

    let ranked: IndexRankedHit[] = firstStage;
    let fields: Map<string, DisplayFields> | undefined;
    if (rerank) {
      const prefix = Math.min(rerank.k, firstStage.length);
      const lateOptions = { k: rerank.k, weights: rerank.weights };
      started = performance.now();
      if (offset >= prefix) {
        // The page lies past the reranked prefix, which the rerank only reorders; the rest keep first-stage order and
        // scores that depend on the first stage alone. No token matrix can change this page: none is fetched.
        ranked = fuseLateInteraction(firstStage, new Array<undefined>(prefix), rerank.queryTokens.count, lateOptions);
        timings.rerankMs = elapsed(started);
      } else {
        // The page holds documents of the prefix the rerank has not ordered yet, plus any first-stage ones past it: their
        // fields come in the same round trip as the matrices when that fetches at most twice the page's fields.
        const tokenIds = firstStage.slice(0, prefix).map((hit) => hit.id);
        const pageIds = [...new Set([...tokenIds, ...firstStage.slice(offset, window).map((hit) => hit.id)])];
        const pageSize = Math.min(window, firstStage.length) - offset;
        const together = pageIds.length <= 2 * pageSize;
        const fetched = together ? await this.rerankInputs(tokenIds, pageIds, request.modelVersion!) : { tokens: await this.tokenMatrices(tokenIds, request.modelVersion!) };
        timings.rerankFetchMs = elapsed(started);
        if ("fields" in fetched) fields = fetched.fields;
        started = performance.now();
        const late = prefixMaxSims(firstStage, rerank.queryTokens, (id) => fetched.tokens.get(id), rerank.k);
        ranked = fuseLateInteraction(firstStage, late, rerank.queryTokens.count, lateOptions);
        timings.rerankMs = elapsed(started);
      }
    }
    const page = ranked.slice(offset, window);

    if (!fields) {
      started = performance.now();
      fields = await this.fields(page.map((hit) => hit.id));
      timings.fieldsMs = elapsed(started);
    }

    const hits: IndexHit[] = page.flatMap((hit) => {
      const stored = fields.get(hit.id);
      // A document deleted between the candidate and field round trips is dropped rather than shown without text.
      return stored ? [{ id: hit.id, score: hit.score, ranks: hit.ranks, scores: hit.scores, ...stored }] : [];
    });
    return {
      hits,
      hasMore: ranked.length > window,
      candidates: { dense: dense?.length ?? 0, lexical: lexical?.length ?? 0, ...(sparse ? { sparse: sparse.length } : {}) },
      timings,
    };
  }

  /** Every shard's statistics for `terms`, summed; remembered with the shards' generations for later queries. */
  private async corpusStats(shards: readonly ShardApi[], terms: string[]): Promise<CorpusTermStats> {
    const all = await Promise.all(shards.map((shard) => shard.termStats(terms)));
    let docCount = 0;
    let totalLength = 0;
    const df: Record<string, number> = {};
    for (const stats of all) {
      docCount += stats.docCount;
      totalLength += stats.totalLength;
      for (const [term, count] of Object.entries(stats.df)) df[term] = (df[term] ?? 0) + count;
    }
    this.remember(all.map((stats) => stats.generation), docCount, totalLength, df);
    return { docCount, avgDocLength: docCount > 0 ? totalLength / docCount : 0, df };
  }

  private get cacheKey(): string {
    return this.names.join("\n");
  }

  /** The cached statistics of every scoring term of `terms`, with the generations they hold at; none if one is missing. */
  private cachedCorpusStats(terms: readonly string[]): { corpus: CorpusTermStats; generations: readonly string[] } | undefined {
    const cached = corpusStatsCache.get(this.cacheKey);
    if (!cached) return undefined;
    const df: Record<string, number> = {};
    for (const term of scoringTerms(terms).distinct) {
      const count = cached.df.get(term);
      if (count === undefined) return undefined;
      df[term] = count;
    }
    const { docCount, totalLength, generations } = cached;
    return { corpus: { docCount, avgDocLength: docCount > 0 ? totalLength / docCount : 0, df }, generations };
  }

  private remember(generations: string[], docCount: number, totalLength: number, df: Record<string, number>): void {
    const key = this.cacheKey;
    let cached = corpusStatsCache.get(key);
    const same = cached !== undefined && cached.generations.every((generation, i) => generation === generations[i]);
    if (!cached || !same || cached.df.size > MAX_CACHED_TERMS) {
      if (!corpusStatsCache.has(key) && corpusStatsCache.size >= MAX_CACHED_INDEXES) corpusStatsCache.clear();
      corpusStatsCache.set(key, (cached = { generations, docCount, totalLength, df: new Map() }));
    }
    for (const [term, count] of Object.entries(df)) cached.df.set(term, count);
  }

  /** Token matrices of `ids` made by `modelVersion`, one round trip to each shard holding some of them, in parallel. */
  private async tokenMatrices(ids: string[], modelVersion: string): Promise<Map<string, QuantizedTokenMatrix>> {
    const answers = await Promise.all(this.byShard(ids, (id) => id).map(([shard, group]) => shard.tokenMatrices(group, modelVersion)));
    return new Map(answers.flatMap((answer) => Object.entries(answer)));
  }

  /** {@link tokenMatrices} and {@link fields} in one round trip to each shard holding some of the ids. */
  private async rerankInputs(tokenIds: string[], fieldIds: string[], modelVersion: string): Promise<{ tokens: Map<string, QuantizedTokenMatrix>; fields: Map<string, DisplayFields> }> {
    const wanted = new Set(tokenIds);
    const answers = await Promise.all(
      this.byShard(fieldIds, (id) => id).map(([shard, group]) => shard.rerankInputs(group.filter((id) => wanted.has(id)), group, modelVersion)),
    );
    return {
      tokens: new Map(answers.flatMap((answer) => Object.entries(answer.tokens))),
      fields: new Map(answers.flatMap((answer) => Object.entries(answer.fields))),
    };
  }

  private async fields(ids: string[]): Promise<Map<string, DisplayFields>> {
    const answers = await Promise.all(this.byShard(ids, (id) => id).map(([shard, group]) => shard.fields(group)));
    return new Map(answers.flatMap((answer) => Object.entries(answer)));
  }
}
