/**
 * Ranking metrics with trec_eval's conventions: graded gains straight from the qrels (gain = relevance level),
 * DCG discount log2(rank + 1), the ideal DCG built from the qrels (not from the retrieved list), queries without any
 * relevant document skipped by the caller, and a ranking ordered by score descending with ties broken by document id.
 */

/** docId → graded relevance (> 0 means relevant). */
export type Judgements = ReadonlyMap<string, number>;

export interface ScoredDocument {
  id: string;
  score: number;
}

/** Orders a run the way trec_eval reads it: score descending, then document id, so ties never depend on input order. */
export function orderRun(run: readonly ScoredDocument[]): ScoredDocument[] {
  return [...run].sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

export function ndcgAt(k: number, ranked: readonly string[], judgements: Judgements): number {
  let dcg = 0;
  for (let rank = 0; rank < Math.min(k, ranked.length); rank++) {
    const gain = judgements.get(ranked[rank]!) ?? 0;
    if (gain > 0) dcg += gain / Math.log2(rank + 2);
  }
  const ideal = [...judgements.values()].filter((gain) => gain > 0).sort((a, b) => b - a);
  let idcg = 0;
  for (let rank = 0; rank < Math.min(k, ideal.length); rank++) idcg += ideal[rank]! / Math.log2(rank + 2);
  return idcg === 0 ? 0 : dcg / idcg;
}

export function mrrAt(k: number, ranked: readonly string[], judgements: Judgements): number {
  for (let rank = 0; rank < Math.min(k, ranked.length); rank++) {
    if ((judgements.get(ranked[rank]!) ?? 0) > 0) return 1 / (rank + 1);
  }
  return 0;
}

export function recallAt(k: number, ranked: readonly string[], judgements: Judgements): number {
  const relevant = [...judgements.values()].filter((gain) => gain > 0).length;
  if (relevant === 0) return 0;
  let found = 0;
  for (let rank = 0; rank < Math.min(k, ranked.length); rank++) if ((judgements.get(ranked[rank]!) ?? 0) > 0) found++;
  return found / relevant;
}

/** Average precision over the top k, normalised by all relevant documents (trec_eval's map_cut). */
export function averagePrecisionAt(k: number, ranked: readonly string[], judgements: Judgements): number {
  const relevant = [...judgements.values()].filter((gain) => gain > 0).length;
  if (relevant === 0) return 0;
  let found = 0;
  let sum = 0;
  for (let rank = 0; rank < Math.min(k, ranked.length); rank++) {
    if ((judgements.get(ranked[rank]!) ?? 0) > 0) {
      found++;
      sum += found / (rank + 1);
    }
  }
  return sum / relevant;
}

export function mean(values: readonly number[]): number {
  return values.length === 0 ? 0 : values.reduce((total, value) => total + value, 0) / values.length;
}

/** Nearest-rank percentile of a sample (p in [0, 100]). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}
