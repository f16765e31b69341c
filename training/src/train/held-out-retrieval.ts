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
import { readFile } from "node:fs/promises";
import path from "node:path";
import { ndcgAt, recallAt, type Judgements } from "../../../src/eval/metrics.js";
import { TaesrEncoder, edgeVariantFor, parseManifest, type ModelVariant } from "../../../src/model/index.js";
import { bm25Search, buildBm25Postings } from "../../../src/retrieval/bm25.js";
import { denseSearch, packMatrix } from "../../../src/retrieval/dense.js";
import { documentText } from "../../../src/retrieval/documents.js";
import { lexicalTerms } from "../../../src/retrieval/lexical.js";
import { WordPieceTokenizer } from "../../../src/tokenizer/index.js";
import { readArtifactDir } from "../../../workers/origin/src/artifact-files.js";
import { ortNode } from "../../../workers/origin/src/ort-node.js";
import type { AdaptRecord } from "../data/pairs.js";

/** The width the edge searches (or the artifact's widest when it has no 128-d prefix). */
const SERVED_DIMS = 128;
/** Documents per encoder call, as the indexer batches them. */
const DOCUMENT_BATCH = 16;

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

  const manifest = parseManifest(await readFile(path.join(artifactDir, "manifest.json"), "utf8"));
  const variant = edgeVariantFor(manifest);
  const artifact = await readArtifactDir(artifactDir, [variant]);
  const tokenizer = WordPieceTokenizer.fromJSON(artifact.tokenizerJson);
  const encoder = await TaesrEncoder.create({ ort: ortNode, manifest: artifact.manifest, files: artifact.files, variant, tokenizer });
  const widths = manifest.architecture.matryoshkaDims;
  const dims = widths.includes(SERVED_DIMS) ? SERVED_DIMS : Math.max(...widths);
  const documentDepth = manifest.retrieval?.documentDepth?.depth ?? "auto";
  const texts = records.map((r) => documentText(r));
  const ids = records.map((r) => r.id);
  const asked = [...queries.values()];
  let denseRankings: string[][];
  try {
    const vectors: Float32Array[] = [];
    for (let start = 0; start < texts.length; start += DOCUMENT_BATCH) {
      vectors.push(...(await encoder.embed(texts.slice(start, start + DOCUMENT_BATCH), { dims, depth: documentDepth })).embeddings);
    }
    const matrix = packMatrix(vectors, dims);
    denseRankings = [];
    // One query per call: a batch runs at its hardest input's depth, and a search embeds its query alone.
    for (const { text } of asked) {
      const [vector] = (await encoder.embed([text], { dims })).embeddings;
      denseRankings.push(denseSearch(matrix, dims, vector!, 100).map((hit) => ids[hit.id]!));
    }
  } finally {
    await encoder.release();
  }
  const terms = (text: string) => lexicalTerms(tokenizer.tokenize(text));
  const { postings, stats } = buildBm25Postings(texts.map(terms));
  const bm25Rankings = asked.map(({ text }) => bm25Search(terms(text), stats, postings, 100).map((hit) => ids[hit.id]!));
  const judgements = asked.map((q) => q.judgements);
  return {
    queries: asked.length,
    documents: records.length,
    dims,
    variant,
    documentDepth,
    dense: figures(denseRankings, judgements),
    bm25: figures(bm25Rankings, judgements),
  };
}
