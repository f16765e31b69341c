/**
 * The corpus side of the evaluation, built once and shared by every setting that can use it.
 *
 * - {@link LexicalIndex}: BM25 postings over the tokenizer's word pieces; depends on the tokenizer only, so one serves
 *   every model variant and depth.
 * - {@link DenseIndex}: the corpus embedded ONCE per (model variant, depth, early exit) at the full 384 dimensions;
 *   narrower Matryoshka widths are prefixes of it, renormalised — exactly what the encoder returns when asked for fewer
 *   dims (`prefixNormalizeRows`: a prefix of any positive rescaling normalises to the same vector), so a 64-d setting
 *   costs a slice, not another pass over the corpus. Documents are embedded as the Worker indexes them:
 *   title + "\n" + text ({@link documentText}), batches of 16. Optionally it also keeps every document's token vectors,
 *   int8-quantised, for late interaction, and every document's learned sparse terms (a model with the sparse head) in
 *   an inverted index, for the sparse list hybrid fuses.
 * - {@link DenseViews}: what a setting derives from the 384-d vectors, cached per (projection, width): the
 *   Matryoshka-prefix or PCA-projected float matrix, its int8 codes and its sign bits.
 *
 * Index sizes are reported per document, as stored (no container overhead): float32 4·d bytes, int8 d + 4, sign bits
 * d/8; BM25 as uncompressed postings (u32 doc id + u16 tf each), a u32 length per document and the term dictionary
 * (UTF-8 term + u32 df + u32 offset); token matrices as quantizedTokenMatrixBytes.
 */
import { progressBar } from "../progress.js";
import type { BeirDocument } from "../../src/eval/beir.js";
import { DEFAULT_SPARSE, type ArtifactManifest, type ModelVariant, type PassageOptions, type TaesrEncoder } from "../../src/model/index.js";
import {
  buildBm25Postings,
  documentText,
  fitPca,
  SparseIndex,
  lexicalTerms,
  packSignBits,
  pcaProject,
  pcaProjectRows,
  prefixNormalize,
  quantizeInt8Rows,
  quantizeTokenMatrix,
  quantizedTokenMatrixBytes,
  type Bm25CorpusStats,
  type Int8Rows,
  type PcaModel,
  type QuantizedTokenMatrix,
  type TermPostings,
} from "../../src/retrieval/index.js";
import type { WordPieceTokenizer } from "../../src/tokenizer/index.js";

/** Documents per encoder call, as the Worker's indexer batches them. */
export const DOCUMENT_BATCH = 16;

export interface LexicalIndex {
  postings: Map<string, TermPostings<number>>;
  stats: Bm25CorpusStats;
  /** Estimated stored bytes per document (see the module doc). */
  bytesPerDoc: number;
}

export function buildLexicalIndex(tokenizer: WordPieceTokenizer, corpus: readonly BeirDocument[]): LexicalIndex {
  const { postings, stats, postingCount } = buildBm25Postings(corpus.map((document) => lexicalTerms(tokenizer.tokenize(documentText(document)))));
  const encoder = new TextEncoder();
  let dictionaryBytes = 0;
  for (const term of postings.keys()) dictionaryBytes += encoder.encode(term).length + 8;
  const bytes = postingCount * 6 + corpus.length * 4 + dictionaryBytes;
  return { postings, stats, bytesPerDoc: bytes / Math.max(1, corpus.length) };
}

/** One corpus pass of the TAESR encoder: which graphs, how deep, and whether documents are embedded as passages. */
export interface CorpusPass {
  variant: ModelVariant;
  depth: 1 | 3 | 6 | "auto";
  earlyExit: boolean;
  /** Documents as passages (encoder.ts `passages`; eval --passages); absent = each document's first maxLength
   * pieces, as the Worker indexes them. */
  passages?: PassageOptions;
  /** With `passages`: a document is its pooled vector ("mean", the default), or one row per passage and its best
   * passage's score ("max": DenseIndex.owners; eval --passage-scoring). */
  passageScoring?: PassageScoring;
}

export type PassageScoring = "mean" | "max";

/**
 * The depth the Worker indexes documents at for a pass at `depth`: the manifest's chosen document depth
 * (`retrieval.documentDepth`, bench/document-depth.ts) when the pass runs at depth auto; undefined → the pass's own.
 */
export function indexedDocumentDepth(depth: CorpusPass["depth"], manifest: Pick<ArtifactManifest, "retrieval">): 1 | 3 | 6 | undefined {
  return (depth === "auto" ? manifest.retrieval?.documentDepth?.depth : undefined) as 1 | 3 | 6 | undefined;
}

/**
 * The passages the Worker embeds documents as: the manifest's chosen ones (`retrieval.documentPassages`,
 * bench/document-passages.ts), pooled into one vector; undefined → each document's first maxLength pieces.
 */
export function indexedDocumentPassages(manifest: Pick<ArtifactManifest, "retrieval">): PassageOptions | undefined {
  const chosen = manifest.retrieval?.documentPassages;
  return chosen ? { maxPieces: chosen.maxPieces, maxPassages: chosen.maxPassages } : undefined;
}

/**
 * The pass documents are embedded with, as the Worker indexes them ({@link indexedDocumentDepth},
 * {@link indexedDocumentPassages}); passages the pass already names are kept.
 */
export function indexedDocumentPass(pass: CorpusPass, manifest: Pick<ArtifactManifest, "retrieval">): CorpusPass {
  const depth = indexedDocumentDepth(pass.depth, manifest);
  const passages = pass.passages === undefined ? indexedDocumentPassages(manifest) : undefined;
  if (depth === undefined && passages === undefined) return pass;
  return { ...pass, ...(depth !== undefined ? { depth } : {}), ...(passages !== undefined ? { passages, passageScoring: "mean" as const } : {}) };
}

export function passLabel(pass: CorpusPass): string {
  const depth = pass.depth === "auto" ? "auto (router)" : `depth ${pass.depth}`;
  const passages = pass.passages
    ? `, passages of ≤ ${pass.passages.maxPieces} pieces (≤ ${pass.passages.maxPassages}, ${pass.passageScoring === "max" ? "best passage" : "pooled"})`
    : "";
  return `${pass.variant}, ${depth}, early exit ${pass.earlyExit ? "on" : "off"}${passages}`;
}

export interface DenseIndex {
  /** Width of the stored vectors (384 for TAESR, the peer's width for a peer). */
  fullDims: number;
  /** rows × fullDims, row-major, unit-length rows. */
  vectors: Float32Array;
  rows: number;
  /** When documents are stored as several rows (one per passage, CorpusPass.passageScoring "max"): each row's corpus
   * index, rows of a document contiguous; absent = row i is document i. */
  owners?: Int32Array;
  /** The most rows any document has (1 without owners): a dense search takes this many times the rows it needs. */
  maxRowsPerDoc: number;
  /** Mean recursion steps run per document (batch depth, TAESR only). */
  meanDocDepth: number | null;
  /** Mean passages per document when documents were embedded as passages (CorpusPass.passages). */
  meanPassages?: number;
  /** int8 token matrices per document (late interaction), when asked for. */
  tokens?: QuantizedTokenMatrix[];
  /** Mean stored bytes of a document's token matrix. */
  tokenBytesPerDoc?: number;
  /** The documents' learned sparse terms (slot = corpus row), when asked for. */
  sparse?: SparseIndex<number>;
  /** Mean stored bytes of a document's sparse postings: 8 per (term, document) pair, a u32 term id and a float32. */
  sparseBytesPerDoc?: number;
  embedSeconds: number;
}

/** How sparse terms are cut per text: every weight above `threshold`, at most `maxTerms` (the Worker's defaults). */
export interface SparseCut {
  threshold: number;
  maxTerms: number;
}

/** The Worker's cut (workers/edge/src/model-loader.ts DEFAULT_SPARSE, the encoder's default): documents and queries alike. */
export const SERVED_SPARSE_CUT: Readonly<SparseCut> = DEFAULT_SPARSE;

/**
 * Embeds the corpus at 384 dims with the pass's depth (and keeps int8 token matrices if `tokenVectors`, and the sparse
 * terms cut by `sparse` in an inverted index if given: the same call, as the Worker's indexer makes it).
 */
export async function embedCorpus(
  encoder: TaesrEncoder,
  corpus: readonly BeirDocument[],
  pass: CorpusPass,
  options: { tokenVectors?: boolean; sparse?: SparseCut } = {},
): Promise<DenseIndex> {
  const fullDims = encoder.architecture.outputDim;
  const byPassage = pass.passages !== undefined && pass.passageScoring === "max";
  // One row per document, or per passage (grown as passages arrive: their count is known only after the split).
  let vectors = new Float32Array(corpus.length * fullDims);
  let rows = 0;
  const owners: number[] = [];
  let maxRowsPerDoc = 1;
  const addRow = (vector: Float32Array, owner: number) => {
    if ((rows + 1) * fullDims > vectors.length) {
      const grown = new Float32Array(Math.max(vectors.length * 2, (rows + 1) * fullDims));
      grown.set(vectors);
      vectors = grown;
    }
    vectors.set(vector, rows * fullDims);
    owners.push(owner);
    rows++;
  };
  const tokens: QuantizedTokenMatrix[] | undefined = options.tokenVectors ? [] : undefined;
  const sparse = options.sparse ? new SparseIndex<number>() : undefined;
  let tokenBytes = 0;
  let depthSum = 0;
  let passageSum = 0;
  const started = performance.now();
  const extras = [tokens ? "token vectors" : "", sparse ? "sparse terms" : ""].filter(Boolean).map((extra) => `, ${extra}`).join("");
  const bar = progressBar(`embedding corpus (${passLabel(pass)}${extras})`, corpus.length, "docs");
  for (let start = 0; start < corpus.length; start += DOCUMENT_BATCH) {
    const batch = corpus.slice(start, start + DOCUMENT_BATCH).map(documentText);
    const result = await encoder.embed(batch, {
      dims: fullDims,
      depth: pass.depth,
      earlyExit: pass.earlyExit,
      tokenVectors: Boolean(tokens),
      ...(pass.passages ? { passages: pass.passages, passageVectors: byPassage } : {}),
      ...(options.sparse ? { sparse: { ...options.sparse } } : {}),
    });
    if (byPassage) {
      if (result.passageVectors?.length !== batch.length) throw new Error("the encoder returned no passage vectors (src/model/encoder.ts passageVectors)");
      result.passageVectors.forEach((passageRows, i) => {
        for (const vector of passageRows) addRow(vector, start + i);
        maxRowsPerDoc = Math.max(maxRowsPerDoc, passageRows.length);
      });
    } else {
      result.embeddings.forEach((vector, i) => addRow(vector, start + i));
    }
    depthSum += result.depth * batch.length;
    for (const p of result.passages ?? []) passageSum += p.count;
    if (sparse) {
      if (result.sparse?.length !== batch.length) throw new Error("the encoder returned no sparse terms (src/model/encoder.ts sparse; does the artifact have the sparse head?)");
      result.sparse.forEach((terms, i) => sparse.add(start + i, terms));
    }
    if (tokens) {
      if (!result.tokenVectors) throw new Error("the encoder returned no token vectors (src/model/encoder.ts tokenVectors)");
      for (const matrix of result.tokenVectors) {
        const quantized = quantizeTokenMatrix(matrix);
        tokenBytes += quantizedTokenMatrixBytes(quantized);
        tokens.push(quantized);
      }
    }
    bar.update(Math.min(start + DOCUMENT_BATCH, corpus.length));
  }
  bar.stop();
  return {
    fullDims,
    vectors: vectors.subarray(0, rows * fullDims),
    rows,
    ...(byPassage ? { owners: Int32Array.from(owners) } : {}),
    maxRowsPerDoc,
    meanDocDepth: depthSum / corpus.length,
    ...(pass.passages ? { meanPassages: passageSum / corpus.length } : {}),
    ...(tokens ? { tokens, tokenBytesPerDoc: tokenBytes / corpus.length } : {}),
    ...(sparse ? { sparse, sparseBytesPerDoc: (8 * sparse.postingCount) / Math.max(1, corpus.length) } : {}),
    embedSeconds: (performance.now() - started) / 1000,
  };
}

/** A dense index from vectors computed elsewhere (a peer encoder, a cache). */
export function denseIndexFromVectors(vectors: readonly Float32Array[], fullDims: number, embedSeconds: number): DenseIndex {
  const matrix = new Float32Array(vectors.length * fullDims);
  vectors.forEach((vector, row) => {
    if (vector.length !== fullDims) throw new Error(`vector ${row} has ${vector.length} dimensions, expected ${fullDims}`);
    matrix.set(vector, row * fullDims);
  });
  return { fullDims, vectors: matrix, rows: vectors.length, maxRowsPerDoc: 1, meanDocDepth: null, embedSeconds };
}

/** How 384 dimensions become fewer: the trained Matryoshka prefix, or a PCA fitted on this corpus. */
export type Projection = "matryoshka" | "pca";

/** Representations derived from a {@link DenseIndex}, computed on first use and cached. */
export class DenseViews {
  private readonly floats = new Map<string, Float32Array>();
  private readonly int8s = new Map<string, Int8Rows>();
  private readonly bitRows = new Map<string, Uint32Array>();
  /** Every principal component of the corpus, fitted on first use; narrower PCAs slice it. */
  private fullPca: PcaModel | undefined;
  private readonly pcas = new Map<number, PcaModel>();

  constructor(readonly index: DenseIndex) {}

  private checkDims(dims: number): void {
    if (!Number.isInteger(dims) || dims <= 0 || dims > this.index.fullDims) {
      throw new RangeError(`dims must be an integer from 1 to ${this.index.fullDims}, got ${dims}`);
    }
  }

  /**
   * The PCA of the full-width corpus vectors keeping `dims` components. The eigen-decomposition is the cost and yields
   * every component at once, sorted by variance, so it runs once and each width takes the leading rows.
   */
  pca(dims: number): PcaModel {
    this.checkDims(dims);
    let model = this.pcas.get(dims);
    if (!model) {
      this.fullPca ??= fitPca(this.index.vectors, this.index.fullDims, this.index.fullDims);
      this.pcas.set(dims, (model = slicePca(this.fullPca, dims)));
    }
    return model;
  }

  /** rows × dims unit-length float vectors. */
  matrix(projection: Projection, dims: number): Float32Array {
    this.checkDims(dims);
    const key = `${projection}:${dims}`;
    let matrix = this.floats.get(key);
    if (!matrix) {
      if (projection === "pca") {
        matrix = pcaProjectRows(this.pca(dims), this.index.vectors);
      } else {
        const { vectors, rows, fullDims } = this.index;
        matrix = new Float32Array(rows * dims);
        for (let row = 0; row < rows; row++) matrix.set(prefixNormalize(vectors.subarray(row * fullDims, (row + 1) * fullDims), dims), row * dims);
      }
      this.floats.set(key, matrix);
    }
    return matrix;
  }

  int8(projection: Projection, dims: number): Int8Rows {
    const key = `${projection}:${dims}`;
    let rows = this.int8s.get(key);
    if (!rows) this.int8s.set(key, (rows = quantizeInt8Rows(this.matrix(projection, dims), dims)));
    return rows;
  }

  bits(projection: Projection, dims: number): Uint32Array {
    const key = `${projection}:${dims}`;
    let bits = this.bitRows.get(key);
    if (!bits) this.bitRows.set(key, (bits = packSignBits(this.matrix(projection, dims), dims)));
    return bits;
  }

  /** A full-width query vector in the same space as {@link matrix}(projection, dims): unit length, `dims` wide. */
  query(projection: Projection, dims: number, vector: Float32Array): Float32Array {
    return projection === "pca" ? pcaProject(this.pca(dims), vector) : prefixNormalize(vector, dims);
  }
}

/** The first `dims` components of a wider PCA: the same directions, since the eigenvectors come sorted by variance. */
function slicePca(model: PcaModel, dims: number): PcaModel {
  return {
    inputDims: model.inputDims,
    outputDims: dims,
    mean: model.mean,
    components: model.components.slice(0, dims * model.inputDims),
    variances: model.variances.slice(0, dims),
    totalVariance: model.totalVariance,
  };
}
