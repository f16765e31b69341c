/**
 * The dense ranker for hard-negative mining (data/hard-negatives.ts): the documents a trained artifact itself ranks
 * closest to a query, embedded exactly as that artifact is served — ONNX graphs through src/model/encoder.ts, documents
 * at the depth the index embeds them (the manifest's `retrieval.documentDepth`, else the router's), queries at the
 * router's depth, cosine on the 128-d Matryoshka prefix the edge searches. A run that starts from an artifact
 * (`initFrom`) mines with that artifact: its confusions are the ones training should fix, and they are the same in
 * every data-parallel process (same graphs, same inputs, fp32 on one machine).
 *
 * @module
 */
import { TaesrEncoder } from "../../../src/model/index.js";
import { denseSearch, packMatrix } from "../../../src/retrieval/dense.js";
import { WordPieceTokenizer } from "../../../src/tokenizer/index.js";
import { readArtifactDir } from "../../../workers/origin/src/artifact-files.js";
import { ortNode } from "../../../workers/origin/src/ort-node.js";
import type { NegativeRanker } from "./hard-negatives.js";

/** The width the edge searches; an artifact without it is ranked at its widest prefix. */
const SERVED_DIMS = 128;
/** Documents per encoder call: large enough to keep the graphs busy, small enough that a batch of abstracts stays light. */
const DOCUMENT_BATCH = 32;

export interface DenseRanker extends NegativeRanker {
  /** Frees the ONNX sessions. */
  release(): Promise<void>;
}

/**
 * A ranker over the artifact in `artifactDir` (fp32 graphs: mining wants the model's own view, not a quantised one).
 * @throws Error when the directory is not a readable artifact.
 */
export async function openDenseRanker(artifactDir: string): Promise<DenseRanker> {
  const artifact = await readArtifactDir(artifactDir, ["fp32"]);
  const { manifest } = artifact;
  const tokenizer = WordPieceTokenizer.fromJSON(artifact.tokenizerJson);
  const encoder = await TaesrEncoder.create({ ort: ortNode, manifest, files: artifact.files, variant: "fp32", tokenizer });
  const widths = manifest.architecture.matryoshkaDims;
  const dims = widths.includes(SERVED_DIMS) ? SERVED_DIMS : Math.max(...widths);
  const documentDepth = manifest.retrieval?.documentDepth?.depth ?? "auto";

  const embedAll = async (texts: readonly string[], depth: number | "auto", batch: number): Promise<Float32Array[]> => {
    const out: Float32Array[] = [];
    for (let start = 0; start < texts.length; start += batch) {
      const { embeddings } = await encoder.embed(texts.slice(start, start + batch), { dims, depth });
      out.push(...embeddings);
    }
    return out;
  };

  return {
    name: `dense ${manifest.name}@${manifest.version}`,
    async rank(docs, queries, ks) {
      if (queries.length !== ks.length) throw new Error(`rank: ${queries.length} queries but ${ks.length} result sizes`);
      // Documents in batches, as the indexer embeds them; queries one at a time, as searches come: a batch runs at the
      // depth of its hardest input, and each query must get its own route.
      const matrix = packMatrix(await embedAll(docs, documentDepth, DOCUMENT_BATCH), dims);
      // Pairs of one query share its text (a query judged relevant to several documents): embed each text once.
      const distinct = [...new Set(queries)];
      const vectors = await embedAll(distinct, "auto", 1);
      const vectorOf = new Map(distinct.map((text, i) => [text, vectors[i]!]));
      return queries.map((query, i) => denseSearch(matrix, dims, vectorOf.get(query)!, ks[i]!).map((hit) => hit.id));
    },
    release: () => encoder.release(),
  };
}
