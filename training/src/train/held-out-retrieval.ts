/**
 * The figure an adaptation is for: how the exported artifact ranks the whole corpus for the train queries the run held
 * out (`holdoutQueries`: it never trained on them). The trainer's own validation ranks each pair's document among a
 * few hundred others in the batch, which says little about finding it among every document; this ranks the way the
 * edge serves — the exported ONNX graphs in the edge's variant, documents as the indexer embeds them (title + text, at
 * the artifact's document depth), each query alone at its router's depth, cosine on the 128-d prefix — beside BM25 over
 * the same word pieces, on the same queries, so the user sees what the adaptation bought on their own corpus.
 *
 * @module
 */
import { ndcgAt, recallAt, type Judgements } from "../../../src/eval/metrics.js";
import type { ModelVariant } from "../../../src/model/index.js";
import { bm25Search, buildBm25Postings } from "../../../src/retrieval/bm25.js";
import { documentText } from "../../../src/retrieval/documents.js";
import { lexicalTerms } from "../../../src/retrieval/lexical.js";
import type { AdaptRecord } from "../data/pairs.js";
import { openServedDense } from "../model/served-dense.js";

export interface RankingFigures {
  ndcg10: number;
  recall100: number;
}

export interface HeldOutRetrieval {
  queries: number;
  documents: number;
  dims: number;
  variant: ModelVariant;
  documentDepth: number | "auto";
  dense: RankingFigures;
  bm25: RankingFigures;
}

const round4 = (x: number) => Math.round(x * 1e4) / 1e4;

function figures(rankings: readonly string[][], judgements: readonly Judgements[]): RankingFigures {
  const mean = (f: (ranked: string[], j: Judgements) => number) => round4(rankings.reduce((sum, ranked, i) => sum + f(ranked, judgements[i]!), 0) / rankings.length);
  return { ndcg10: mean((r, j) => ndcgAt(10, r, j)), recall100: mean((r, j) => recallAt(100, r, j)) };
}

/**
 * Ranks `records` (the adaptation corpus) for each held-out query id that judges at least one of them relevant.
 * @returns undefined when no held-out query has a judged document (nothing to measure).
 */
export async function heldOutRetrieval(artifactDir: string, records: readonly AdaptRecord[], heldOutIds: readonly string[]): Promise<HeldOutRetrieval | undefined> {
  const held = new Set(heldOutIds);
  const queries = new Map<string, { text: string; judgements: Map<string, number> }>();
  for (const record of records) {
    for (const query of record.queries) {
      if (!held.has(query.id)) continue;
      const entry = queries.get(query.id) ?? { text: query.text, judgements: new Map<string, number>() };
      entry.judgements.set(record.id, 1);
      queries.set(query.id, entry);
    }
  }
  if (queries.size === 0) return undefined;

  const served = await openServedDense(artifactDir, "edge");
  const texts = records.map((r) => documentText(r));
  const ids = records.map((r) => r.id);
  const asked = [...queries.values()];
  let denseRankings: string[][];
  try {
    const matrix = await served.embedDocuments(texts);
    denseRankings = (await served.search(matrix, asked.map((q) => q.text), 100)).map((rows) => rows.map((row) => ids[row]!));
  } finally {
    await served.release();
  }
  const terms = (text: string) => lexicalTerms(served.tokenizer.tokenize(text));
  const { postings, stats } = buildBm25Postings(texts.map(terms));
  const bm25Rankings = asked.map(({ text }) => bm25Search(terms(text), stats, postings, 100).map((hit) => ids[hit.id]!));
  const judgements = asked.map((q) => q.judgements);
  return {
    queries: asked.length,
    documents: records.length,
    dims: served.dims,
    variant: served.variant,
    documentDepth: served.documentDepth,
    dense: figures(denseRankings, judgements),
    bm25: figures(bm25Rankings, judgements),
  };
}
