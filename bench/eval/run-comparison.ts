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
import type { WordPieceTokenizer } from "../../src/tokenizer/index.js";
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

/** Words shorter than this are function words and abbreviations, whose splitting says nothing about the vocabulary. */
const CONTENT_WORD_CHARS = 4;
/** A word the tokenizer cuts into at least this many pieces is fragmented: its meaning is not in any one row. */
const FRAGMENTED_PIECES = 3;

/**
 * The share of a text's content words (≥ 4 characters, with a letter) that `tokenizer` cuts into ≥ 3 word pieces —
 * the words a model must assemble from fragments ("thrombo ##cyto ##penia"), where a small model's embedding is
 * weakest and BM25, which matches the fragments exactly, is strongest. 0 for a text without content words.
 */
export function fragmentedShare(text: string, tokenizer: WordPieceTokenizer): number {
  const words: string[][] = [];
  for (const piece of tokenizer.tokenize(text)) {
    if (piece.startsWith("##") && words.length > 0) words[words.length - 1]!.push(piece);
    else words.push([piece]);
  }
  const content = words.filter((pieces) => {
    const word = pieces.map((p) => p.replace(/^##/, "")).join("");
    return word.length >= CONTENT_WORD_CHARS && /\p{L}/u.test(word);
  });
  return content.length === 0 ? 0 : content.filter((pieces) => pieces.length >= FRAGMENTED_PIECES).length / content.length;
}

export interface QueryGroup {
  /** The group's range of the grouping value, e.g. "0.000–0.083". */
  range: string;
  ids: string[];
}

/**
 * Queries split into `count` groups of (nearly) equal size by a per-query value, lowest first; equal values may fall
 * on both sides of a boundary (the order is by value, then query id, so the split is deterministic).
 */
export function groupByQuantile(values: ReadonlyMap<string, number>, count: number): QueryGroup[] {
  if (!Number.isInteger(count) || count < 1) throw new Error(`groups must be a whole number ≥ 1, got ${count}`);
  const ordered = [...values].sort((x, y) => x[1] - y[1] || (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  if (ordered.length < 2 * count) throw new Error(`${ordered.length} queries cannot make ${count} groups of at least 2`);
  return Array.from({ length: count }, (_, g) => {
    const slice = ordered.slice(Math.round((g * ordered.length) / count), Math.round(((g + 1) * ordered.length) / count));
    return { range: `${slice[0]![1].toFixed(3)}–${slice[slice.length - 1]![1].toFixed(3)}`, ids: slice.map(([id]) => id) };
  });
}
