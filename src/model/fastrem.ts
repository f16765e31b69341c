/**
 * FastREM: the trained depth router. Before any forward pass, a handful of cheap features of the encoded input (its word
 * pieces) go through a softmax regression with three classes — easy, medium, hard, i.e. the architecture's depths
 * 1, 3, 6 — and a cost-biased decision picks the route. It replaces the length rule of router.ts when an artifact's
 * manifest carries one (`router.kind: "fastrem"`); training/src/router fits it (`npm run train:router`).
 *
 * What a class means: the label of a training query is the SMALLEST depth whose retrieval of its relevant documents is
 * at least as good as at the deepest depth (ties go to the smaller depth). So the classes are ordered, and "depth d is
 * enough for this input" is the event label ≤ d. That is what the decision rule uses:
 *
 *   route = the cheapest r ∈ (easy, medium, hard) with P(label ≤ r) = Σ_{c ≤ r} p_c ≥ confidence.
 *
 * `confidence` (τ) is the cost bias: τ → 1 routes everything deep (never loses quality, saves nothing), small τ routes
 * cheaply. We chose this cumulative rule over "argmax of p minus λ·depth" because its knob is a probability with a
 * meaning (the chance that the cheaper depth loses nothing, which is exactly what the ≤ 1 % NDCG loss goal is about),
 * not a trade between probabilities and steps in mixed units, and because it respects the order of the classes: mass
 * on "medium" also argues against "easy". The trainer picks τ on out-of-fold predictions (training/src/router).
 *
 * Guard: inputs longer than `maxTokens` (the longest training input) go to "hard" without consulting the classifier. It
 * was fitted on queries; documents (hundreds of pieces) are far outside that range, where a linear model extrapolates
 * without evidence. Long inputs are where the length rule also sends them, so the indexer's depth for real documents
 * does not change when an artifact gains a FastREM router.
 *
 * Features (all from the word-piece ids the model reads, after truncation to maxLength; fractions are over n = the
 * number of ids, and are 0 for an empty input):
 *   tokens               n. The rule router's only input; longer inputs compose more.
 *   logTokens            ln(1 + n). Length effects are multiplicative (3 → 6 pieces matters more than 63 → 66), which a
 *                        linear model can only express on a log scale.
 *   words                words: pieces that start a word (not "##", not an isolated punctuation/symbol piece); an
 *                        [UNK] counts as one word (the tokenizer maps a whole uncoverable word to it).
 *   piecesPerWord        mean pieces per word (word pieces / words; 0 without words). 1 = every word is in the
 *                        vocabulary; more = rare or technical words split into fragments the model has to compose.
 *   maxPiecesPerWord     pieces of the most fragmented word: one heavily split term (a gene, a drug) is often what
 *                        the whole query is about.
 *   continuationFraction "##" pieces / n.
 *   meanMergeRank        mean, over merged pieces, of the piece's position in the merge order scaled to [0, 1) (0
 *                        without merged pieces). The vocabulary is frequency-ordered: ids are [PAD], [UNK], the
 *                        alphabet, then merged pieces in merge order, and the trainer merges the most frequent pair
 *                        first (training/src/tokenizer/train-vocab.ts), so a later id is a rarer piece.
 *   rareFraction         pieces in the later half of the merge order / n.
 *   singleCharFraction   single-letter/digit alphabet pieces / n: a word spelt out character by character is one no
 *                        merge covers, rarer than any merged piece.
 *   unkFraction          [UNK] / n: content the model cannot see at any depth.
 *   digitFraction        pieces containing a digit / n (doses, years, gene and protein names).
 *   punctFraction        isolated punctuation/symbol pieces / n: hyphens, parentheses, slashes mark technical or
 *                        compositional text.
 *
 * Platform-neutral, no dependencies beyond zod (for the validation the manifest shares): features and probabilities
 * are a few dozen arithmetic operations per input, negligible beside one recursion step.
 *
 * @module
 */
import { z } from "zod";
import type { Route } from "./router.js";
import { MODEL_VARIANTS, type FastRemRouterSpec, type RouterRule } from "./spec.js";

/** Every feature the runtime can compute, in the order the trainer uses by default (see the module doc). */
export const FASTREM_FEATURES = [
  "tokens",
  "logTokens",
  "words",
  "piecesPerWord",
  "maxPiecesPerWord",
  "continuationFraction",
  "meanMergeRank",
  "rareFraction",
  "singleCharFraction",
  "unkFraction",
  "digitFraction",
  "punctFraction",
] as const;
export type FastRemFeatureName = (typeof FASTREM_FEATURES)[number];

/** Class order of the weights' rows and of the probabilities: cheapest first (router.ts ROUTES, not imported to keep the module graph acyclic). */
export const FASTREM_CLASSES: readonly Route[] = ["easy", "medium", "hard"];

/** Merge ranks at or above this (the later half of the merge order) count as rare pieces. */
export const RARE_MERGE_RANK = 0.5;

const CONTINUATION_PREFIX = "##";
const FLAG_CONTINUATION = 1;
const FLAG_DIGIT = 2;
const FLAG_PUNCT = 4;
const FLAG_UNK = 8;
const FLAG_SINGLE_CHAR = 16;

/**
 * Per-id properties of a vocabulary, precomputed once so a feature vector is one pass over the ids with table lookups
 * (no string work per request).
 */
export interface FastRemVocab {
  readonly size: number;
  /** Bit flags per id (continuation, digit, punctuation, unknown/special, single character). */
  readonly flags: Uint8Array;
  /** Position in the merge order scaled to [0, 1), or −1 for specials and alphabet pieces. */
  readonly mergeRank: Float32Array;
}

/** What {@link fastRemVocab} reads: a token list, or a tokenizer (`WordPieceTokenizer` has both members). */
export type VocabSource = readonly string[] | { readonly vocabSize: number; idToToken(id: number): string | undefined };

/**
 * Builds the per-id tables from the tokenizer's vocabulary (`vocab[id]`; ids 0 and 1 are [PAD] and [UNK] as in
 * src/tokenizer). Merged pieces are those whose text (without "##") is longer than one code point; the first such id
 * starts the merge order.
 */
export function fastRemVocab(source: VocabSource): FastRemVocab {
  const tokens: string[] = [];
  if (Array.isArray(source)) {
    tokens.push(...(source as readonly string[]));
  } else {
    const tokenizer = source as Exclude<VocabSource, readonly string[]>;
    for (let id = 0; id < tokenizer.vocabSize; id++) {
      const token = tokenizer.idToToken(id);
      if (token === undefined) throw new Error(`FastREM: the tokenizer has no token for id ${id} (vocabSize ${tokenizer.vocabSize})`);
      tokens.push(token);
    }
  }
  if (tokens.length < 2) throw new Error("FastREM: the vocabulary needs at least [PAD] and [UNK]");
  const size = tokens.length;
  const flags = new Uint8Array(size);
  const mergeRank = new Float32Array(size).fill(-1);
  let firstMerge = size;
  for (let id = 0; id < size; id++) {
    const token = tokens[id]!;
    if (id < 2) {
      flags[id] = FLAG_UNK; // [PAD], [UNK]: never a piece of text
      continue;
    }
    const f = pieceFlags(token);
    // Every piece longer than one code point is a merge; the single ones are punctuation or alphabet.
    if (!(f & (FLAG_PUNCT | FLAG_SINGLE_CHAR)) && firstMerge === size) firstMerge = id;
    flags[id] = f;
  }
  const merges = size - firstMerge;
  for (let id = firstMerge; id < size; id++) mergeRank[id] = (id - firstMerge) / merges;
  return { size, flags, mergeRank };
}

/** Flags of one vocabulary piece other than [PAD]/[UNK]: continuation, digit, and punctuation or single character. */
function pieceFlags(token: string): number {
  const continuation = token.startsWith(CONTINUATION_PREFIX) && token.length > CONTINUATION_PREFIX.length;
  const piece = continuation ? token.slice(CONTINUATION_PREFIX.length) : token;
  let f = 0;
  if (continuation) f |= FLAG_CONTINUATION;
  if (/\p{N}/u.test(piece)) f |= FLAG_DIGIT;
  if ([...piece].length === 1) f |= !continuation && /^[^\p{L}\p{N}]$/u.test(piece) ? FLAG_PUNCT : FLAG_SINGLE_CHAR;
  return f;
}

/**
 * True for a single letter or digit piece ("x", "##7"): what the tokenizer falls back to when no merge covers part of a
 * word (singleCharFraction counts these). Isolated punctuation is not one; pass [UNK]/[PAD] apart, they are not pieces.
 */
export function isSingleCharPiece(token: string): boolean {
  return (pieceFlags(token) & FLAG_SINGLE_CHAR) !== 0;
}

/** The features of one encoded input (see the module doc), by name. */
export function fastRemFeatures(ids: readonly number[], vocab: FastRemVocab): Record<FastRemFeatureName, number> {
  const n = ids.length;
  let words = 0;
  let wordPieces = 0;
  let current = 0;
  let maxPieces = 0;
  let continuation = 0;
  let merged = 0;
  let rankSum = 0;
  let rare = 0;
  let single = 0;
  let unk = 0;
  let digit = 0;
  let punct = 0;
  const closeWord = () => {
    if (current > maxPieces) maxPieces = current;
    current = 0;
  };
  for (const id of ids) {
    if (!Number.isInteger(id) || id < 0 || id >= vocab.size) {
      throw new RangeError(`FastREM: token id ${id} is outside the vocabulary (size ${vocab.size})`);
    }
    const f = vocab.flags[id]!;
    if (f & FLAG_DIGIT) digit++;
    if (f & FLAG_SINGLE_CHAR) single++;
    const rank = vocab.mergeRank[id]!;
    if (rank >= 0) {
      merged++;
      rankSum += rank;
      if (rank >= RARE_MERGE_RANK) rare++;
    }
    if (f & FLAG_PUNCT) {
      punct++;
      closeWord();
    } else if (f & FLAG_CONTINUATION) {
      continuation++;
      wordPieces++;
      // A continuation with no open word (truncation never splits that way, but ids may come from elsewhere) opens one.
      if (current === 0) words++;
      current++;
    } else {
      // A word-initial piece or [UNK] (one whole word) starts a new word.
      if (f & FLAG_UNK) unk++;
      closeWord();
      words++;
      wordPieces++;
      current = 1;
    }
  }
  closeWord();
  const per = (count: number) => (n === 0 ? 0 : count / n);
  return {
    tokens: n,
    logTokens: Math.log1p(n),
    words,
    piecesPerWord: words === 0 ? 0 : wordPieces / words,
    maxPiecesPerWord: maxPieces,
    continuationFraction: per(continuation),
    meanMergeRank: merged === 0 ? 0 : rankSum / merged,
    rareFraction: per(rare),
    singleCharFraction: per(single),
    unkFraction: per(unk),
    digitFraction: per(digit),
    punctFraction: per(punct),
  };
}

/** The features of `ids` as a vector in the order of `names`. */
export function fastRemFeatureVector(ids: readonly number[], vocab: FastRemVocab, names: readonly string[]): Float64Array {
  const all = fastRemFeatures(ids, vocab);
  const out = new Float64Array(names.length);
  names.forEach((name, j) => {
    const value = all[name as FastRemFeatureName];
    if (value === undefined) throw new Error(`FastREM: unknown feature "${name}" (known: ${FASTREM_FEATURES.join(", ")})`);
    out[j] = value;
  });
  return out;
}

/** Softmax of logits, stable (the max is subtracted first). */
export function softmax(logits: ArrayLike<number>): number[] {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]!);
  const exps = Array.from({ length: logits.length }, (_, i) => Math.exp(logits[i]! - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

/** What {@link classProbabilities} needs of a router: its standardisation and its linear layer. */
export type SoftmaxModel = Pick<FastRemRouterSpec, "mean" | "std" | "weights" | "bias">;

/** P(easy), P(medium), P(hard) for a raw (unstandardised) feature vector. */
export function classProbabilities(model: SoftmaxModel, x: ArrayLike<number>): number[] {
  const logits = model.bias.map((b, c) => {
    const w = model.weights[c]!;
    let sum = b;
    for (let j = 0; j < w.length; j++) sum += w[j]! * ((x[j]! - model.mean[j]!) / model.std[j]!);
    return sum;
  });
  return softmax(logits);
}

/**
 * The decision rule (see the module doc): the cheapest route whose cumulative probability reaches `confidence`.
 * "hard" always qualifies (its cumulative probability is 1), so there is always an answer.
 */
export function cumulativeRoute(probabilities: readonly number[], confidence: number): Route {
  let cumulative = 0;
  for (let c = 0; c < FASTREM_CLASSES.length - 1; c++) {
    cumulative += probabilities[c] ?? 0;
    // A hair of slack so that confidence 1 still routes cheaply when float sums of probabilities land at 0.9999999…
    if (cumulative >= confidence - 1e-12) return FASTREM_CLASSES[c]!;
  }
  return "hard";
}

/** A validated FastREM router bound to its vocabulary: what the encoder calls per input. */
export class FastRemRouter {
  readonly spec: FastRemRouterSpec;
  private readonly vocab: FastRemVocab;

  constructor(spec: unknown, vocab: FastRemVocab) {
    this.spec = parseFastRemRouter(spec);
    this.vocab = vocab;
  }

  features(ids: readonly number[]): Float64Array {
    return fastRemFeatureVector(ids, this.vocab, this.spec.features);
  }

  probabilities(ids: readonly number[]): number[] {
    return classProbabilities(this.spec, this.features(ids));
  }

  route(ids: readonly number[]): Route {
    if (ids.length > this.spec.maxTokens) return "hard";
    return cumulativeRoute(this.probabilities(ids), this.spec.decision.confidence);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Validation. The manifest schema (manifest.ts) embeds these, so a malformed router fails the artifact's load with the
// path of the bad field, instead of routing every request by NaN.

const finite = z.number().finite();
const unit = z.number().min(0).max(1);

export const routerRuleSchema = z
  .object({ kind: z.literal("rule"), easyMaxTokens: z.number().int().nonnegative(), mediumMaxTokens: z.number().int().nonnegative() })
  .refine((r) => r.easyMaxTokens <= r.mediumMaxTokens, "easyMaxTokens must be ≤ mediumMaxTokens");

const notTest = (what: string) =>
  z
    .string()
    .min(1)
    .refine((split) => split !== "test", `${what} must not use the test split (the figures reported are test figures)`);

export const fastRemRouterSchema = z
  .object({
    kind: z.literal("fastrem"),
    features: z
      .array(z.string())
      .min(1)
      .superRefine((names, ctx) => {
        const known = new Set<string>(FASTREM_FEATURES);
        names.forEach((name, i) => {
          if (!known.has(name)) ctx.addIssue({ code: "custom", path: [i], message: `unknown feature "${name}" (known: ${FASTREM_FEATURES.join(", ")})` });
          if (names.indexOf(name) !== i) ctx.addIssue({ code: "custom", path: [i], message: `feature "${name}" appears twice` });
        });
      }),
    mean: z.array(finite),
    std: z.array(finite.positive()),
    weights: z.array(z.array(finite)).length(3, "must have 3 rows (easy, medium, hard)"),
    bias: z.array(finite).length(3, "must have 3 entries (easy, medium, hard)"),
    decision: z.object({ rule: z.literal("cumulative"), confidence: z.number().gt(0).max(1) }),
    maxTokens: z.number().int().nonnegative(),
    rule: routerRuleSchema,
    labelledBy: z.object({
      metric: z.enum(["ndcg@10", "rr"]),
      depths: z.array(z.number().int().positive()).min(1),
      documentDepth: z.union([z.literal("auto"), z.number().int().positive()]),
      documentPassages: z.object({ maxPieces: z.number().int().positive(), maxPassages: z.number().int().positive() }).strict().optional(),
      dims: z.number().int().positive(),
      variant: z.enum(MODEL_VARIANTS),
      earlyExit: z.boolean(),
      retrieval: z
        .object({
          mode: z.literal("hybrid"),
          fusion: z.object({
            method: z.enum(["convex", "rrf"]),
            weights: z.object({ dense: z.number().nonnegative(), lexical: z.number().nonnegative() }).strict(),
          }).strict(),
        })
        .strict()
        .optional(),
      rule: z.string().min(1),
    }),
    trainedOn: z.object({
      sources: z.array(z.object({ dataset: z.string().min(1), split: notTest("a router"), queries: z.number().int().nonnegative() })).min(1),
      examples: z.number().int().positive(),
      classCounts: z.object({ easy: z.number().int().nonnegative(), medium: z.number().int().nonnegative(), hard: z.number().int().nonnegative() }),
      model: z.string().min(1),
      seed: z.number().int(),
      l2: z.number().nonnegative(),
      epochs: z.number().int().positive(),
      learningRate: z.number().positive(),
      folds: z.number().int().nonnegative(),
      date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, "must be an ISO date (YYYY-MM-DD)"),
      estimate: z.object({ meanDepth: z.number().nonnegative(), metric: unit, metricAlwaysHard: unit }).optional(),
    }),
    accuracy: z.object({ train: unit, heldOut: unit }),
  })
  .superRefine((r, ctx) => {
    const F = r.features.length;
    if (r.mean.length !== F) ctx.addIssue({ code: "custom", path: ["mean"], message: `has ${r.mean.length} entries, features has ${F}` });
    if (r.std.length !== F) ctx.addIssue({ code: "custom", path: ["std"], message: `has ${r.std.length} entries, features has ${F}` });
    r.weights.forEach((row, c) => {
      if (row.length !== F) ctx.addIssue({ code: "custom", path: ["weights", c], message: `has ${row.length} entries, features has ${F}` });
    });
  });

// The schema and spec.ts must describe the same object (as manifest.ts checks for the whole manifest).
type ParsedRouter = z.infer<typeof fastRemRouterSchema>;
type ParsedRule = z.infer<typeof routerRuleSchema>;
const _sameShape: [
  ParsedRouter extends FastRemRouterSpec ? true : false,
  FastRemRouterSpec extends ParsedRouter ? true : false,
  ParsedRule extends RouterRule ? true : false,
  RouterRule extends ParsedRule ? true : false,
] = [true, true, true, true];
void _sameShape;

/**
 * Validates a FastREM router (the manifest's `router`, or a router JSON file written by the trainer).
 * @throws Error listing every problem with its path.
 */
export function parseFastRemRouter(value: unknown): FastRemRouterSpec {
  const result = fastRemRouterSchema.safeParse(value);
  if (!result.success) throw new Error(`invalid FastREM router:\n${z.prettifyError(result.error)}`);
  return result.data;
}
