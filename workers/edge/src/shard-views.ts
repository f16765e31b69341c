/**
 * The in-memory side of one index shard: every search reads these, every write updates them, SQLite (shard-store.ts)
 * stays the source of truth they are built from.
 *
 * Rows are catalog positions: the documents present when the views were built, in id order, then each document
 * written since, appended. A replaced or deleted document's row is marked dead in `alive` — every list skips it
 * through that mask — and leaves the lexical statistics at once, so BM25 never counts it. The views are built once per
 * object lifetime (the lexical index with the catalog, since they come from the same rows; each dense width and each
 * model version's sparse postings on first use) and dropped for a rebuild only when dead rows reach a quarter of the
 * catalog, where they start to cost scan time and memory.
 *
 * Before this, any write dropped every view and the next search reloaded what it needed; a query term's postings came
 * from SQLite on first use, which cost tens of milliseconds per new term at 100k documents and made a search after a
 * write pay for a full reload.
 *
 * @module
 */
import {
  LiveDenseIndex,
  LiveLexicalIndex,
  LiveSparseIndex,
  ensureCapacity,
  matchesFilter,
  type MetadataFilter,
} from "../../../src/retrieval/index.js";
import type { MetadataJson, PreparedDocument } from "./shard-api.js";
import type { PreviousPostings, ShardStore } from "./shard-store.js";

/** Dead rows are tolerated up to this share of the catalog (and at least REBUILD_MIN_DEAD of them) before a rebuild. */
const REBUILD_DEAD_SHARE = 0.25;
const REBUILD_MIN_DEAD = 1024;

export class ShardViews {
  readonly ids: string[] = [];
  private readonly rowOf = new Map<string, number>();
  private alive = new Uint8Array(0);
  private deadRows = 0;
  readonly lexical = new LiveLexicalIndex();
  /** By model version, then width. */
  private readonly dense = new Map<string, Map<number, LiveDenseIndex>>();
  /** By model version. */
  private readonly sparse = new Map<string, LiveSparseIndex>();
  /** Parsed metadata by row, loaded the first time a filter needs it, then kept up with writes. */
  private metadata: unknown[] | null = null;

  private constructor(private readonly store: ShardStore) {}

  /** The catalog and lexical index from every stored document (one pass over the documents table). */
  static build(store: ShardStore): ShardViews {
    const views = new ShardViews(store);
    for (const row of store.postingsRows()) views.append(row.id, row.terms, row.length);
    return views;
  }

  get rowCount(): number {
    return this.ids.length;
  }

  /** True once dead rows cost enough that the owner should build afresh. */
  get stale(): boolean {
    return this.deadRows >= REBUILD_MIN_DEAD && this.deadRows >= REBUILD_DEAD_SHARE * this.ids.length;
  }

  /** 1 for each live row: the base of every list's mask. */
  liveMask(): Uint8Array {
    return this.alive.subarray(0, this.ids.length);
  }

  /** True when some row is dead, so a list over all rows needs the mask. */
  get hasDeadRows(): boolean {
    return this.deadRows > 0;
  }

  /** 1 for each live row whose metadata matches. */
  filterMask(filter: MetadataFilter): Uint8Array {
    if (!this.metadata) {
      const metadata = new Array<unknown>(this.ids.length).fill(null);
      for (const { id, metadataJson } of this.store.metadata()) {
        const row = this.rowOf.get(id);
        if (row !== undefined) metadata[row] = parseMetadata(metadataJson);
      }
      this.metadata = metadata;
    }
    const mask = new Uint8Array(this.ids.length);
    const alive = this.alive;
    this.metadata.forEach((metadata, row) => {
      if (alive[row] === 1 && matchesFilter(metadata, filter)) mask[row] = 1;
    });
    return mask;
  }

  /** Sign bits and int8 codes of `modelVersion`'s vectors at width `dims`, loaded from SQLite on first use. */
  denseIndex(modelVersion: string, dims: number): LiveDenseIndex {
    let byDims = this.dense.get(modelVersion);
    if (!byDims) this.dense.set(modelVersion, (byDims = new Map()));
    let index = byDims.get(dims);
    if (!index) {
      index = new LiveDenseIndex(dims);
      const { ids, vectors } = this.store.vectors(modelVersion, dims);
      ids.forEach((id, i) => {
        const row = this.rowOf.get(id);
        // Documents and the catalog come from the same table within one synchronous call: a miss is a damaged store.
        if (row !== undefined) index!.add(row, vectors[i]!);
      });
      byDims.set(dims, index);
    }
    return index;
  }

  /** The sparse postings of `modelVersion`'s documents, loaded from SQLite on first use. */
  sparseIndex(modelVersion: string): LiveSparseIndex {
    let index = this.sparse.get(modelVersion);
    if (!index) {
      index = new LiveSparseIndex();
      // Rows must be appended in increasing order; SQLite returns this version's documents in no particular one.
      const rows = [...this.store.sparseRows(modelVersion)]
        .map(({ id, sparse }) => ({ row: this.rowOf.get(id), sparse }))
        .filter((entry): entry is { row: number; sparse: [number, number][] } => entry.row !== undefined)
        .sort((a, b) => a.row - b.row);
      for (const { row, sparse } of rows) index.add(row, sparse);
      this.sparse.set(modelVersion, index);
    }
    return index;
  }

  /** Follows one committed upsert: the previous version (if any) dies, the new one is appended to every loaded view. */
  upserted(document: PreparedDocument, previous: PreviousPostings | null): void {
    if (previous) this.removed(document.id, previous);
    const row = this.append(document.id, document.terms, document.length);
    for (const index of this.dense.get(document.modelVersion)?.values() ?? []) {
      if (document.vector.length >= index.dims) index.add(row, document.vector);
    }
    if (document.sparse && document.sparse.length > 0) this.sparse.get(document.modelVersion)?.add(row, document.sparse);
    if (this.metadata) this.metadata[row] = parseMetadata(document.metadataJson);
  }

  /** Follows one committed delete (or the replacement of `id`). */
  removed(id: string, previous: PreviousPostings): void {
    const row = this.rowOf.get(id);
    if (row === undefined) return;
    this.rowOf.delete(id);
    this.alive[row] = 0;
    this.deadRows += 1;
    this.lexical.remove(JSON.parse(previous.termsJson) as [string, number][], previous.length);
    const sparse = previous.sparseJson === null ? undefined : this.sparse.get(previous.modelVersion);
    if (sparse) sparse.remove(JSON.parse(previous.sparseJson!) as [number, number][]);
  }

  private append(id: string, terms: readonly (readonly [string, number])[], length: number): number {
    const row = this.ids.length;
    this.ids.push(id);
    this.rowOf.set(id, row);
    this.alive = ensureCapacity(this.alive, row + 1);
    this.alive[row] = 1;
    this.lexical.add(row, terms, length);
    return row;
  }
}

function parseMetadata(json: MetadataJson): unknown {
  return json === null ? null : JSON.parse(json);
}
