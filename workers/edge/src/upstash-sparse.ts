/**
 * Lexical terms as Upstash sparse vectors, so that Upstash's IDF-weighted sparse query scores BM25.
 *
 * Dimension of a term: 32-bit FNV-1a of its UTF-8 bytes, masked to 31 bits (Upstash takes signed 32-bit indices, and
 * negative ones are not documented). A stable hash rather than a vocabulary id keeps the index independent of any one
 * tokenizer and needs no table in the Worker. Collision odds: two of V distinct terms share a dimension with
 * probability ≈ V²/2³²; for the 8,192-piece vocabularies we ship that is 1.6 % — and a test checks that none of the
 * bundled vocabularies has a collision at all. A collision would merge two pieces' postings (a spurious partial match),
 * never lose one.
 *
 * Values: a document stores, per term, BM25's saturated term frequency tf·(k1 + 1) / (tf + k1·(1 − b + b·|d|/avgdl));
 * a query sends its term counts; Upstash multiplies matching dimensions and, with `weightingStrategy: "IDF"`, each by
 * the term's IDF over the namespace. The sum is BM25 with two differences from the embedded index, both forced by a
 * store that computes nothing at write time: avgdl is a constant fixed when the document is written (Upstash's own BM25
 * does the same with 32), and the IDF is Upstash's ln((N − n + 0.5)/(n + 0.5)), which unlike our Lucene form goes
 * negative for a term in more than half the documents — the adapter clamps such scores at 0, BM25's floor.
 *
 * @module
 */
import { BM25_DEFAULTS } from "../../../src/retrieval/bm25.js";

/** Upstash refuses sparse vectors with more non-zero dimensions than this. */
export const MAX_SPARSE_DIMENSIONS = 1_000;

/** Distinct query terms beyond this add cost but barely change BM25's ranking (the embedded shard keeps as many). */
export const MAX_QUERY_TERMS = 64;

export interface SparseVector {
  indices: number[];
  values: number[];
}

/** BM25's document-side parameters, baked into the stored values (changing them means re-writing every document). */
export interface LexicalWeighting {
  k1: number;
  b: number;
  /** The average document length (in lexical terms) assumed for length normalisation. */
  avgDocLength: number;
}

/** Our BM25 defaults, and an average length typical of the abstracts and passages we index. */
export const DEFAULT_LEXICAL_WEIGHTING: Readonly<LexicalWeighting> = Object.freeze({ ...BM25_DEFAULTS, avgDocLength: 256 });

/** Names the term hash and the weighting, stored with each document so a change of either re-writes it. */
export function weightingTag(weighting: LexicalWeighting): string {
  return `fnv1a31;bm25 k1=${weighting.k1} b=${weighting.b} avgdl=${weighting.avgDocLength}`;
}

const encoder = new TextEncoder();

/** The sparse dimension of a term. */
export function termIndex(term: string): number {
  let hash = 0x811c9dc5;
  for (const byte of encoder.encode(term)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193);
  }
  return hash & 0x7fffffff;
}

/** Sorted by dimension; terms that share one (a hash collision) add up. */
function toSparse(weights: Iterable<[string, number]>): SparseVector {
  const byIndex = new Map<number, number>();
  for (const [term, weight] of weights) {
    const index = termIndex(term);
    byIndex.set(index, (byIndex.get(index) ?? 0) + weight);
  }
  const indices = [...byIndex.keys()].sort((a, b) => a - b);
  return { indices, values: indices.map((index) => byIndex.get(index)!) };
}

/** A document's sparse vector, or a reason it cannot be stored. */
export function documentSparseVector(
  terms: readonly [string, number][],
  length: number,
  weighting: LexicalWeighting,
): SparseVector | { error: string } {
  const { k1, b, avgDocLength } = weighting;
  const norm = k1 * (1 - b + (b * length) / avgDocLength);
  const sparse = toSparse(terms.filter(([, tf]) => tf > 0).map(([term, tf]) => [term, (tf * (k1 + 1)) / (tf + norm)]));
  if (sparse.indices.length === 0) return { error: "it has no lexical terms, and an Upstash hybrid index needs a sparse vector" };
  if (sparse.indices.length > MAX_SPARSE_DIMENSIONS) {
    return {
      error: `it has ${sparse.indices.length} distinct lexical terms and an Upstash sparse vector holds at most ${MAX_SPARSE_DIMENSIONS}; split it into smaller documents`,
    };
  }
  return sparse;
}

/** A query's sparse vector: each of its first {@link MAX_QUERY_TERMS} distinct terms with its count in the query. */
export function querySparseVector(terms: readonly string[]): SparseVector {
  const counts = new Map<string, number>();
  for (const term of terms) {
    if (!counts.has(term) && counts.size === MAX_QUERY_TERMS) continue;
    counts.set(term, (counts.get(term) ?? 0) + 1);
  }
  return toSparse(counts);
}
