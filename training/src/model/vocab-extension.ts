/**
 * First values for the rows a vocabulary extension appends (tokenizer/extend-vocab.ts) to a trained model's token
 * table, so continued training starts from rows that already mean something in the model's own embedding space.
 *
 * A trained table has drifted far from the GloVe rows it may have started from, so a new word's GloVe vector mapped
 * the way the first initialisation did (glove-init.ts) would land in the old space, not the trained one. Instead the map
 * is fitted: ridge regression from [GloVe vector, 1] to the trained row over every base piece that is a whole GloVe word
 * (thousands of them), y = [g, 1]·W. A new word that GloVe has gets its fitted row; one GloVe lacks (a gene name such as
 * "apoe4") gets the mean of the trained rows of the pieces the base vocabulary split it into — what the model knew of it.
 * Fitted rows are rescaled to the mean norm of the trained whole-word rows: ridge predictions shrink towards the mean
 * row, and the block (LayerNorm after adding the position embedding) is tuned to the trained rows' scale.
 * The sparse head's per-term bias, when the model has one, gets the mean bias of the word's base pieces.
 * The fit's R² (share of the trained rows' variance the map explains) is reported, so a user sees how much of the
 * new rows is GloVe's knowledge and how much the mean row.
 *
 * @module
 */
import { CONTINUATION_PREFIX, PAD_ID, UNK_ID, WordPieceTokenizer, type TokenizerJSON } from "../../../src/tokenizer/index.js";
import { GLOVE_DIMS, type GloveVectors } from "./glove-init.js";

/** Ridge strength relative to the mean diagonal of XᵀX: enough to keep the 101×101 solve well conditioned. */
const RIDGE = 1e-3;
const SPECIAL = /^\[[A-Za-z_]+\]$/;

export interface ExtendedRowsInput {
  base: TokenizerJSON;
  /** The extended vocabulary: `base.vocab` followed by the added words. */
  extended: readonly string[];
  hidden: number;
  /** The trained table [base.vocab.length, hidden]. */
  table: Float32Array;
  glove: GloveVectors;
  /** The trained sparse bias [base.vocab.length], when the model has a sparse head. */
  sparseBias?: Float32Array;
}

export interface ExtendedRows {
  /** [extended.length, hidden]: the trained rows unchanged, then the new ones. */
  table: Float32Array;
  sparseBias?: Float32Array;
  fromGlove: number;
  fromPieces: number;
  /** Whole-word base pieces the map was fitted on, and the share of their variance it explains. */
  fit: { words: number; r2: number };
}

/** Solves the symmetric positive definite system A x = b (A n×n row-major) for each column of B [n, m], by Cholesky. */
function solveSpd(a: Float64Array, b: Float64Array, n: number, m: number): Float64Array {
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let sum = a[i * n + j]!;
      for (let k = 0; k < j; k++) sum -= l[i * n + k]! * l[j * n + k]!;
      if (i === j) {
        if (sum <= 0) throw new Error("the GloVe fit is singular: too few whole-word pieces to fit a map");
        l[i * n + i] = Math.sqrt(sum);
      } else {
        l[i * n + j] = sum / l[j * n + j]!;
      }
    }
  }
  const x = new Float64Array(n * m);
  const y = new Float64Array(n);
  for (let c = 0; c < m; c++) {
    for (let i = 0; i < n; i++) {
      let sum = b[i * m + c]!;
      for (let k = 0; k < i; k++) sum -= l[i * n + k]! * y[k]!;
      y[i] = sum / l[i * n + i]!;
    }
    for (let i = n - 1; i >= 0; i--) {
      let sum = y[i]!;
      for (let k = i + 1; k < n; k++) sum -= l[k * n + i]! * x[k * m + c]!;
      x[i * m + c] = sum / l[i * n + i]!;
    }
  }
  return x;
}

/** The base pieces that are whole GloVe words: the fit's samples. */
function wholeWordPieces(vocab: readonly string[], glove: GloveVectors): { id: number; word: number }[] {
  const out: { id: number; word: number }[] = [];
  for (let id = 0; id < vocab.length; id++) {
    const piece = vocab[id]!;
    if (id === PAD_ID || id === UNK_ID || SPECIAL.test(piece) || piece.startsWith(CONTINUATION_PREFIX)) continue;
    const word = glove.index.get(piece);
    if (word !== undefined) out.push({ id, word });
  }
  return out;
}

/** The trained table with the extension's rows appended (module comment); the inputs are not modified. */
export function extendedTokenRows({ base, extended, hidden, table, glove, sparseBias }: ExtendedRowsInput): ExtendedRows {
  const baseSize = base.vocab.length;
  if (table.length !== baseSize * hidden) throw new Error(`token table has ${table.length} values, expected ${baseSize} × ${hidden}`);
  for (let id = 0; id < baseSize; id++) {
    if (extended[id] !== base.vocab[id]) {
      throw new Error(`the extended vocabulary changes entry ${id} (${JSON.stringify(base.vocab[id])} → ${JSON.stringify(extended[id])}): only appended words can be given rows`);
    }
  }
  const n = GLOVE_DIMS + 1;
  const samples = wholeWordPieces(base.vocab, glove);
  if (samples.length < 4 * n) throw new Error(`only ${samples.length} base pieces are GloVe words: too few to fit the ${GLOVE_DIMS}→${hidden} map`);

  // Normal equations of the ridge fit over [g, 1] → row.
  const xtx = new Float64Array(n * n);
  const xty = new Float64Array(n * hidden);
  const x = new Float64Array(n);
  const rowMean = new Float64Array(hidden);
  let meanNorm = 0;
  for (const { id, word } of samples) {
    for (let d = 0; d < GLOVE_DIMS; d++) x[d] = glove.vectors[word * GLOVE_DIMS + d]!;
    x[GLOVE_DIMS] = 1;
    for (let i = 0; i < n; i++) {
      const xi = x[i]!;
      for (let j = 0; j < n; j++) xtx[i * n + j]! += xi * x[j]!;
      for (let c = 0; c < hidden; c++) xty[i * hidden + c]! += xi * table[id * hidden + c]!;
    }
    let norm = 0;
    for (let c = 0; c < hidden; c++) {
      const v = table[id * hidden + c]!;
      rowMean[c]! += v / samples.length;
      norm += v * v;
    }
    meanNorm += Math.sqrt(norm) / samples.length;
  }
  let trace = 0;
  for (let i = 0; i < n; i++) trace += xtx[i * n + i]!;
  for (let i = 0; i < GLOVE_DIMS; i++) xtx[i * n + i]! += (RIDGE * trace) / n;
  const w = solveSpd(xtx, xty, n, hidden);

  const fitted = (word: number, out: Float64Array): void => {
    out.fill(0);
    for (let i = 0; i < n; i++) {
      const xi = i < GLOVE_DIMS ? glove.vectors[word * GLOVE_DIMS + i]! : 1;
      for (let c = 0; c < hidden; c++) out[c]! += xi * w[i * hidden + c]!;
    }
  };
  let residual = 0;
  let total = 0;
  const prediction = new Float64Array(hidden);
  for (const { id, word } of samples) {
    fitted(word, prediction);
    for (let c = 0; c < hidden; c++) {
      const v = table[id * hidden + c]!;
      residual += (v - prediction[c]!) ** 2;
      total += (v - rowMean[c]!) ** 2;
    }
  }

  const baseTokenizer = WordPieceTokenizer.fromJSON(base);
  const out = new Float32Array(extended.length * hidden);
  out.set(table);
  const bias = sparseBias ? new Float32Array(extended.length) : undefined;
  if (bias && sparseBias) bias.set(sparseBias);
  let fromGlove = 0;
  let fromPieces = 0;
  for (let id = baseSize; id < extended.length; id++) {
    const word = extended[id]!;
    const pieceIds = baseTokenizer.tokenize(word).map((p) => baseTokenizer.tokenToId(p) ?? UNK_ID);
    const gloveWord = glove.index.get(word);
    if (gloveWord !== undefined) {
      fitted(gloveWord, prediction);
      let norm = 0;
      for (let c = 0; c < hidden; c++) norm += prediction[c]! ** 2;
      const scale = norm > 0 ? meanNorm / Math.sqrt(norm) : 0;
      for (let c = 0; c < hidden; c++) out[id * hidden + c] = prediction[c]! * scale;
      fromGlove += 1;
    } else {
      for (const p of pieceIds) for (let c = 0; c < hidden; c++) out[id * hidden + c]! += table[p * hidden + c]! / pieceIds.length;
      fromPieces += 1;
    }
    if (bias && sparseBias) bias[id] = pieceIds.reduce((sum, p) => sum + sparseBias[p]!, 0) / pieceIds.length;
  }
  return {
    table: out,
    ...(bias ? { sparseBias: bias } : {}),
    fromGlove,
    fromPieces,
    fit: { words: samples.length, r2: total > 0 ? 1 - residual / total : 0 },
  };
}
