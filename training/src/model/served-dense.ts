/**
 * Dense ranking with an exported artifact, the way the edge serves it, for the training side's own uses (mining hard
 * negatives with the start model, measuring an adaptation on its held-out queries): the ONNX graphs through
 * src/model/encoder.ts, documents in batches at the depth the index embeds them (the manifest's
 * `retrieval.documentDepth`, else the router's) and as its passages when it chose them (`retrieval.documentPassages`), each query alone at its router's depth (a batch runs at the depth of
 * its hardest input, and a search embeds its query alone), cosine on the 128-d Matryoshka prefix the edge searches.
 *
 * @module
 */
import { TaesrEncoder, edgeVariantFor, type ArtifactManifest, type ModelVariant } from "../../../src/model/index.js";
import { denseSearch, packMatrix } from "../../../src/retrieval/dense.js";
import { WordPieceTokenizer } from "../../../src/tokenizer/index.js";
import { readArtifactDir } from "../../../workers/origin/src/artifact-files.js";
import { ortNode } from "../../../workers/origin/src/ort-node.js";
import { readArtifactManifest } from "./artifact-weights.js";

/** The width the edge searches; an artifact without it is ranked at its widest prefix. */
const SERVED_DIMS = 128;
/** Documents per encoder call by default, as the indexer batches them. */
const DOCUMENT_BATCH = 16;

export interface ServedDense {
  manifest: ArtifactManifest;
  tokenizer: WordPieceTokenizer;
  variant: ModelVariant;
  dims: number;
  documentDepth: number | "auto";
  /** The documents' unit vectors, packed row by row (row i = docs[i]). */
  embedDocuments(docs: readonly string[]): Promise<Float32Array>;
  /** Row indexes of `matrix`, best first, at most k, for each query (embedded one at a time). */
  search(matrix: Float32Array, queries: readonly string[], k: number | readonly number[]): Promise<number[][]>;
  /** Frees the ONNX sessions. */
  release(): Promise<void>;
}

/**
 * Opens the artifact in `artifactDir` with `variant`'s graphs ("edge": the ones the Worker runs it in, int8w or int8).
 * `documentBatch` is the documents per encoder call (batching moves a vector in its last bits, so a caller whose
 * results must stay bit-identical across versions fixes it).
 * @throws Error when the directory is not a readable artifact.
 */
export async function openServedDense(artifactDir: string, variant: ModelVariant | "edge", documentBatch = DOCUMENT_BATCH): Promise<ServedDense> {
  const chosen = variant === "edge" ? edgeVariantFor(await readArtifactManifest(artifactDir)) : variant;
  const artifact = await readArtifactDir(artifactDir, [chosen]);
  const { manifest } = artifact;
  const tokenizer = WordPieceTokenizer.fromJSON(artifact.tokenizerJson);
  const encoder = await TaesrEncoder.create({ ort: ortNode, manifest, files: artifact.files, variant: chosen, tokenizer });
  const widths = manifest.architecture.matryoshkaDims;
  const dims = widths.includes(SERVED_DIMS) ? SERVED_DIMS : Math.max(...widths);
  const documentDepth = manifest.retrieval?.documentDepth?.depth ?? "auto";
  const chosenPassages = manifest.retrieval?.documentPassages;
  const passages = chosenPassages ? { maxPieces: chosenPassages.maxPieces, maxPassages: chosenPassages.maxPassages } : undefined;
  return {
    manifest,
    tokenizer,
    variant: chosen,
    dims,
    documentDepth,
    async embedDocuments(docs) {
      const vectors: Float32Array[] = [];
      for (let start = 0; start < docs.length; start += documentBatch) {
        vectors.push(...(await encoder.embed(docs.slice(start, start + documentBatch), { dims, depth: documentDepth, ...(passages ? { passages } : {}) })).embeddings);
      }
      return packMatrix(vectors, dims);
    },
    async search(matrix, queries, k) {
      if (typeof k !== "number" && k.length !== queries.length) throw new Error(`search: ${queries.length} queries but ${k.length} result sizes`);
      // Pairs of one query share its text (a query judged relevant to several documents): embed each text once.
      const vectorOf = new Map<string, Float32Array>();
      for (const text of queries) {
        if (!vectorOf.has(text)) vectorOf.set(text, (await encoder.embed([text], { dims })).embeddings[0]!);
      }
      return queries.map((text, i) => denseSearch(matrix, dims, vectorOf.get(text)!, typeof k === "number" ? k : k[i]!).map((hit) => hit.id));
    },
    release: () => encoder.release(),
  };
}
