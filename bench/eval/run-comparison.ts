/**
 * Two rankings of the same queries compared query by query: the mean difference of each metric and its paired
 * standard error (the same queries on both sides, so the spread between easy and hard queries cancels), and how many
 * queries got better or worse. This is what says whether a new model or setting beats the old one by more than the
 * noise of a few hundred queries — the figure behind every "paired SE" in the README.
 *
 * Runs are TREC run files (`qid Q0 docid rank score tag`, as `npm run eval -- --run-file` writes them), ordered as
 * trec_eval reads them: by score, then document id (src/eval/metrics.ts orderRun), whatever their rank column says.
 */
import { mean, mrrAt, ndcgAt, orderRun, recallAt, type Judgements, type ScoredDocument } from "../../src/eval/metrics.js";
import { round4 } from "./evaluate.js";
import { pairedStandardError } from "./fusion-tuning.js";

/** query id → its ranked documents, best first. */
export type Run = ReadonlyMap<string, readonly string[]>;

/**
 * Parses a TREC run file. Every non-blank line must have six fields with a finite score, and a (query, document) pair
 * may appear once: a file that breaks either is not a run this tool can score faithfully, so it throws naming the line.
 */
export function parseRunFile(source: string, name: string): Run {
  const byQuery = new Map<string, ScoredDocument[]>();
  const seen = new Set<string>();
  source.split("\n").forEach((line, index) => {
    if (!line.trim()) return;
    const fields = line.trim().split(/\s+/);
    const where = `${name}: line ${index + 1}`;
    if (fields.length !== 6) throw new Error(`${where} has ${fields.length} fields; a TREC run line is "qid Q0 docid rank score tag"`);
    const [queryId, , docId, , scoreText] = fields as [string, string, string, string, string, string];
    const score = Number(scoreText);
    if (!Number.isFinite(score)) throw new Error(`${where} has a non-numeric score "${scoreText}"`);
    const key = `${queryId}\u0000${docId}`;
    if (seen.has(key)) throw new Error(`${where} ranks document ${docId} for query ${queryId} a second time`);
    seen.add(key);
    let docs = byQuery.get(queryId);
    if (!docs) byQuery.set(queryId, (docs = []));
    docs.push({ id: docId, score });
  });
  if (byQuery.size === 0) throw new Error(`${name} holds no ranking`);
  return new Map([...byQuery].map(([queryId, docs]) => [queryId, orderRun(docs).map((doc) => doc.id)]));
}

export const COMPARED_METRICS = ["ndcg@10", "mrr@10", "recall@100"] as const;
export type ComparedMetric = (typeof COMPARED_METRICS)[number];

const METRIC: Record<ComparedMetric, (ranked: readonly string[], judgements: Judgements) => number> = {
  "ndcg@10": (ranked, judgements) => ndcgAt(10, ranked, judgements),
  "mrr@10": (ranked, judgements) => mrrAt(10, ranked, judgements),
  "recall@100": (ranked, judgements) => recallAt(100, ranked, judgements),
};

export interface MetricComparison {
  a: number;
  b: number;
  /** Mean of B − A over the queries. */
  diff: number;
  paired_se: number;
}

export interface RunComparison {
  queries: number;
  /** Judged queries a run has no ranking for; they score 0 there (trec_eval -c). */
  missing: { a: number; b: number };
  metrics: Record<ComparedMetric, MetricComparison>;
  /** Queries whose NDCG@10 is higher / lower in B than in A (the rest are equal). */
  better: number;
  worse: number;
}

/**
 * Compares run B against run A over `queryIds` (each judged in `qrels`). A run that ranks none of the queries is
 * refused (a run of another split or dataset would otherwise read as a model that found nothing).
 */
export function compareRuns(a: Run, b: Run, queryIds: readonly string[], qrels: ReadonlyMap<string, Judgements>, names: { a: string; b: string }): RunComparison {
  if (queryIds.length < 2) throw new Error(`a paired comparison needs at least 2 judged queries, got ${queryIds.length}`);
  for (const [run, name] of [[a, names.a], [b, names.b]] as const) {
    if (!queryIds.some((id) => run.has(id))) throw new Error(`${name} ranks none of the ${queryIds.length} judged queries compared (a run of another split or dataset?)`);
  }
  const perQuery = (run: Run, metric: ComparedMetric) => queryIds.map((id) => METRIC[metric](run.get(id) ?? [], qrels.get(id) ?? new Map()));
  const metrics = {} as Record<ComparedMetric, MetricComparison>;
  let better = 0;
  let worse = 0;
  for (const metric of COMPARED_METRICS) {
    const scoresA = perQuery(a, metric);
    const scoresB = perQuery(b, metric);
    metrics[metric] = {
      a: round4(mean(scoresA)),
      b: round4(mean(scoresB)),
      diff: round4(mean(scoresB) - mean(scoresA)),
      paired_se: round4(pairedStandardError(scoresB, scoresA)),
    };
    if (metric === "ndcg@10") {
      better = scoresB.filter((score, i) => score > scoresA[i]! + 1e-9).length;
      worse = scoresB.filter((score, i) => score < scoresA[i]! - 1e-9).length;
    }
  }
  const missing = (run: Run) => queryIds.filter((id) => !run.has(id)).length;
  return { queries: queryIds.length, missing: { a: missing(a), b: missing(b) }, metrics, better, worse };
}
