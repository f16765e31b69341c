/**
 * The dense ranker for hard-negative mining (data/hard-negatives.ts): the documents a trained artifact itself ranks
 * closest to a query, embedded as that artifact is served (model/served-dense.ts) but with its fp32 graphs — mining
 * wants the model's own view, not a quantised one. A run that starts from an artifact (`initFrom`) mines with it: its
 * confusions are the ones training should fix, and they are the same in every data-parallel process (same graphs, same
 * inputs, on one machine; the data fingerprint checks it).
 *
 * @module
 */
import { openServedDense } from "../model/served-dense.js";
import type { NegativeRanker } from "./hard-negatives.js";

/** Documents per encoder call. Fixed: a run's negatives, hence its data fingerprint and its resumability, depend on it. */
const MINING_DOCUMENT_BATCH = 32;

export interface DenseRanker extends NegativeRanker {
  /** Frees the ONNX sessions. */
  release(): Promise<void>;
}

/**
 * A ranker over the artifact in `artifactDir`.
 * @throws Error when the directory is not a readable artifact.
 */
export async function openDenseRanker(artifactDir: string): Promise<DenseRanker> {
  const served = await openServedDense(artifactDir, "fp32", MINING_DOCUMENT_BATCH);
  return {
    name: `dense ${served.manifest.name}@${served.manifest.version}`,
    async rank(docs, queries, ks) {
      if (queries.length !== ks.length) throw new Error(`rank: ${queries.length} queries but ${ks.length} result sizes`);
      return served.search(await served.embedDocuments(docs), queries, ks);
    },
    release: () => served.release(),
  };
}
