/**
 * The TAESR architecture contract shared by training (TensorFlow.js), export (ONNX) and the runtime.
 * Every producer and consumer of weights or graphs agrees through this file; change it and all three together.
 *
 * Forward pass (one shared-weight block f, TRM-style recursion with the input injected each step):
 *   x   = tokenEmbedding[ids] + positionEmbedding[0..T)                              [B,T,H]
 *   h0  = 0
 *   for t = 1..k:
 *     u   = h + x
 *     (block, below)                             → a (the mixing branches' sum) and m (the FFN branch)
 *     h   = h + a + m
 *     e_t = proj(maskedMean(LNout(h)))  ∈ R^384  (unnormalised; consumers slice a Matryoshka prefix, then L2-normalise)
 *
 * Blocks (architecture.block; absent = "self_attention", the only block of every artifact and checkpoint written
 * before the others existed, so those load unchanged):
 *   self_attention:  a = MHA(LN1(u), keyPaddingMask)    (pre-LN; additive mask −1e9 on padded keys)
 *                    v = u + a
 *                    m = FFN(LN2(v))
 *   mlp_mixer:       a = Mix(LNmix(u), mask)            (token mixing replaces attention)
 *                    v = u + a
 *                    m = FFN(LN2(v))
 *   hybrid:          a₁ = Mix(LNmix(u), mask);  w = u + a₁
 *                    a₂ = MHA(LN1(w), keyPaddingMask);  v = w + a₂
 *                    m = FFN(LN2(v));  a = a₁ + a₂, i.e. h ← (h + a₁) + a₂ + m  (in that order of additions)
 *   FFN(z)    = W2·gelu_tanh(W1·z + b1) + b2                                (per token, along the hidden axis)
 *   Mix(z, M) = the token-mixing MLP along the sequence axis, per hidden channel c, on the first T positions:
 *                 Z   = z ⊙ M / max(ΣM, 1)         (padding rows zeroed first, so padding never reaches a real token;
 *                                                   dividing by the real-token count keeps the mixer's input scale
 *                                                   independent of the text's length: with a plain sum, long documents
 *                                                   and short queries fell into different ranges and training collapsed
 *                                                   every embedding onto one point in tiny runs)
 *                 G   = gelu_tanh(Zᵀ·Wt1[0..T) + bt1)        Zᵀ [H,T] · Wt1[0..T) [T,L] → [H,L]
 *                 Mix = (G·Wt2[:,0..T) + bt2[0..T))ᵀ          [H,L] · [L,T] → [H,T] → [T,H]
 *               Wt1 [L,L] and Wt2 [L,L] are sized by maxLength L and sliced to the run's length T (rows of Wt1,
 *               columns of Wt2 and bt2), so any 1 ≤ T ≤ L runs with one set of weights. The hidden width of the token
 *               MLP is L (MLP-Mixer's token-MLP width is of the order of the sequence length; no extra size field).
 *               Right padding changes nothing for the real positions: a padded row of Z is 0 and adds nothing to G,
 *               and the output of position t reads only column t of Wt2 — so an embedding is the same with or
 *               without extra trailing padding (as for attention, whose padded keys get −1e9).
 * LayerNorm eps = 1e-5. gelu_tanh(z) = 0.5·z·(1 + tanh(√(2/π)·(z + 0.044715·z³))).
 * maskedMean divides by max(Σmask, 1).
 * In mlp_mixer, `heads` is unused (kept so every architecture has the same fields).
 *
 * Sparse head (SPLADE-style; architecture.sparseHead, absent = none), on the final hidden state h = h_k (the step the
 * embedding came from), E = embed.token [V,H]:
 *   z_t,v = LNs(h)_t · E_vᵀ + b_v                    LNs = sparse.ln.{gamma,beta}, b = sparse.bias [V]
 *   w_v   = max_t mask_t · log(1 + ReLU(z_t,v))      ∈ R^V, ≥ 0 (padding contributes 0)
 * The output matrix is the token table itself (tied, as SPLADE ties its MLM head to BERT's input embeddings): no new
 * V×H matrix, only V + 2H parameters, and a vocabulary entry scores by how close its input embedding is to a position's
 * state. log(1 + ReLU(·)) is monotone, so w_v = log(1 + ReLU(max_t (z_t,v − (1 − mask_t)·1e9))) is the same number
 * (graphs and runtime compute it that way: one max over the sequence of the logits, then one log1p per entry).
 *
 * Late-interaction head (ColBERT-style; architecture.lateHead = {dim}, absent = none), on the same final hidden state h:
 *   v_t = u_t / √(‖u_t‖² + 1e-12),   u_t = LNout(h)_t · W_late      W_late = late.proj.w [H, dim]; LNout = out.ln.*
 * one unit vector per real token (padding positions are dropped by consumers; late.onnx zeroes them). It reuses the
 * output LayerNorm the pooled embedding reads, so the head adds only H·dim parameters, and MaxSim between two texts is
 *   s(q, d) = Σ_{real i of q} max_{real j of d} v_qi · v_dj.
 * No bias: a constant vector added before the normalisation pulls every token of every text towards one shared
 * direction, the anisotropy that made the untrained stand-in (centred h) useless for MaxSim (mean pairwise cosine of one
 * text's tokens 0.81–0.98, encoder.ts); and a learnable offset is still there if one helps, as out.ln.beta · W_late.
 * ColBERT's projection has no bias either. Training supervises the head at the deepest supervised recursion step
 * (training.objectives.late.steps); serving applies it to h of whatever step the encoder stopped at (routed depth,
 * early exit), as it does for the sparse head.
 */

/** The shared block's architectures (see the module comment for each one's maths). */
export const BLOCK_ARCHITECTURES = ["self_attention", "mlp_mixer", "hybrid"] as const;
export type BlockArchitecture = (typeof BLOCK_ARCHITECTURES)[number];
/** The block of an architecture that does not name one: every model before the mixer blocks. */
export const DEFAULT_BLOCK: BlockArchitecture = "self_attention";

export interface TaesrArchitecture {
  /**
   * The shared block (absent = "self_attention"). Written only for the other blocks, so a self-attention model's
   * manifest and checkpoint header stay exactly what they were before the field existed.
   */
  block?: BlockArchitecture;
  vocabSize: number;
  hidden: number;
  heads: number;
  ffn: number;
  maxLength: number;
  /** Width of the projected embedding (always 384 in TAESR). */
  outputDim: number;
  /** Matryoshka prefixes that are trained to stand alone, ascending, last one = outputDim. */
  matryoshkaDims: number[];
  /** Recursion steps per route. */
  depths: { easy: number; medium: number; hard: number };
  /**
   * A SPLADE-style sparse head (module comment; weights sparse.*). Absent = false, and written only when true, so the
   * manifests, checkpoints and weight lists of models without one are exactly what they were before the field existed.
   */
  sparseHead?: boolean;
  /**
   * The late-interaction head (module comment; weight late.proj.w): `dim` is the width of each token vector. Absent =
   * none, and written only when present (after every other field), so existing manifests and checkpoints are unchanged.
   */
  lateHead?: LateHeadSpec;
}

/** architecture.lateHead: the token vectors' width. */
export interface LateHeadSpec {
  dim: number;
}

/** Whether the architecture has the late-interaction head (late.proj.w; late.onnx in its artifact). */
export function hasLateHead(a: Pick<TaesrArchitecture, "lateHead">): boolean {
  return a.lateHead !== undefined;
}

/** Whether the architecture has the sparse head (sparse.ln.*, sparse.bias; sparse.onnx in its artifact). */
export function hasSparseHead(a: Pick<TaesrArchitecture, "sparseHead">): boolean {
  return a.sparseHead === true;
}

/** The architecture's block, "self_attention" when it names none. */
export function blockOf(a: Pick<TaesrArchitecture, "block">): BlockArchitecture {
  const block = a.block ?? DEFAULT_BLOCK;
  if (!(BLOCK_ARCHITECTURES as readonly string[]).includes(block)) {
    throw new Error(`unknown block architecture ${JSON.stringify(block)}; expected one of ${BLOCK_ARCHITECTURES.join(", ")}`);
  }
  return block;
}

/** Whether the block has a token-mixing sub-layer (block.mix.*) / an attention sub-layer (block.ln1.*, block.attn.*). */
export function hasMixer(a: Pick<TaesrArchitecture, "block">): boolean {
  return blockOf(a) !== "self_attention";
}
export function hasAttention(a: Pick<TaesrArchitecture, "block">): boolean {
  return blockOf(a) !== "mlp_mixer";
}

export const LAYER_NORM_EPS = 1e-5;
export const ATTENTION_MASK_VALUE = -1e9;

/**
 * Weight tensors, row-major float32; a matrix [in,out] maps a row vector of width `in` to width `out` (y = xW + b).
 * Every name's shape in this architecture; which names a model has is {@link weightNames}.
 */
export function weightShapes(a: TaesrArchitecture): Record<WeightName, number[]> {
  const { vocabSize: V, hidden: H, ffn: F, maxLength: L, outputDim: D } = a;
  // A model without the late head still gets a (never used) shape for its weight, so the record stays total.
  const lateDim = a.lateHead?.dim ?? 1;
  return {
    "embed.token": [V, H],
    "embed.position": [L, H],
    "block.mix.ln.gamma": [H],
    "block.mix.ln.beta": [H],
    "block.mix.w1": [L, L],
    "block.mix.b1": [L],
    "block.mix.w2": [L, L],
    "block.mix.b2": [L],
    "block.ln1.gamma": [H],
    "block.ln1.beta": [H],
    "block.attn.wq": [H, H],
    "block.attn.bq": [H],
    "block.attn.wk": [H, H],
    "block.attn.bk": [H],
    "block.attn.wv": [H, H],
    "block.attn.bv": [H],
    "block.attn.wo": [H, H],
    "block.attn.bo": [H],
    "block.ln2.gamma": [H],
    "block.ln2.beta": [H],
    "block.ffn.w1": [H, F],
    "block.ffn.b1": [F],
    "block.ffn.w2": [F, H],
    "block.ffn.b2": [H],
    "out.ln.gamma": [H],
    "out.ln.beta": [H],
    "out.proj.w": [H, D],
    "out.proj.b": [D],
    "sparse.ln.gamma": [H],
    "sparse.ln.beta": [H],
    "sparse.bias": [V],
    "late.proj.w": [H, lateDim],
  };
}

const EMBED_WEIGHTS = ["embed.token", "embed.position"] as const;
const MIXER_WEIGHTS = ["block.mix.ln.gamma", "block.mix.ln.beta", "block.mix.w1", "block.mix.b1", "block.mix.w2", "block.mix.b2"] as const;
const ATTENTION_WEIGHTS = [
  "block.ln1.gamma",
  "block.ln1.beta",
  "block.attn.wq",
  "block.attn.bq",
  "block.attn.wk",
  "block.attn.bk",
  "block.attn.wv",
  "block.attn.bv",
  "block.attn.wo",
  "block.attn.bo",
] as const;
const FFN_WEIGHTS = ["block.ln2.gamma", "block.ln2.beta", "block.ffn.w1", "block.ffn.b1", "block.ffn.w2", "block.ffn.b2"] as const;
const OUTPUT_WEIGHTS = ["out.ln.gamma", "out.ln.beta", "out.proj.w", "out.proj.b"] as const;
/** The sparse head's own weights (its output matrix is embed.token). Last in every order, so adding the head changes
 * neither the order nor the seeded values of the other weights. */
const SPARSE_WEIGHTS = ["sparse.ln.gamma", "sparse.ln.beta", "sparse.bias"] as const;
/** The late-interaction head's own weight (its LayerNorm is out.ln). Last of all, after the sparse head's, for the same
 * reason: adding it changes neither the order nor the seeded values of any other weight. */
const LATE_WEIGHTS = ["late.proj.w"] as const;

/**
 * The weights of the self-attention block (the default), in checkpoint order. The order is part of the checkpoint
 * format and of the seeded initialisation: it never changes.
 */
export const WEIGHT_NAMES = [...EMBED_WEIGHTS, ...ATTENTION_WEIGHTS, ...FFN_WEIGHTS, ...OUTPUT_WEIGHTS] as const;
/** The token-mixing sub-layer's weights (mlp_mixer and hybrid). */
export const MIXER_WEIGHT_NAMES = MIXER_WEIGHTS;
/** The sparse head's weights (architecture.sparseHead). */
export const SPARSE_WEIGHT_NAMES = SPARSE_WEIGHTS;
/** The late-interaction head's weights (architecture.lateHead). */
export const LATE_WEIGHT_NAMES = LATE_WEIGHTS;
/** Every weight name of every block, in canonical order (embed, mixer, attention, FFN, output, sparse head, late head). */
export const ALL_WEIGHT_NAMES = [
  ...EMBED_WEIGHTS,
  ...MIXER_WEIGHTS,
  ...ATTENTION_WEIGHTS,
  ...FFN_WEIGHTS,
  ...OUTPUT_WEIGHTS,
  ...SPARSE_WEIGHTS,
  ...LATE_WEIGHTS,
] as const;
export type WeightName = (typeof ALL_WEIGHT_NAMES)[number];

const MLP_MIXER_NAMES: readonly WeightName[] = [...EMBED_WEIGHTS, ...MIXER_WEIGHTS, ...FFN_WEIGHTS, ...OUTPUT_WEIGHTS];
const HYBRID_NAMES: readonly WeightName[] = [...EMBED_WEIGHTS, ...MIXER_WEIGHTS, ...ATTENTION_WEIGHTS, ...FFN_WEIGHTS, ...OUTPUT_WEIGHTS];

/**
 * The weights a model of this architecture has, in checkpoint and initialisation order: embed, [mixer], [attention],
 * FFN, output, [sparse head], [late head]. self_attention without heads gives exactly WEIGHT_NAMES. A record keyed by
 * WeightName (weights, variables, gradients) holds exactly these names; the others are absent, and every loader checks
 * that.
 */
export function weightNames(a: Pick<TaesrArchitecture, "block" | "sparseHead" | "lateHead">): readonly WeightName[] {
  const names = blockWeightNames(a);
  if (!hasSparseHead(a) && !hasLateHead(a)) return names;
  return [...names, ...(hasSparseHead(a) ? SPARSE_WEIGHTS : []), ...(hasLateHead(a) ? LATE_WEIGHTS : [])];
}

function blockWeightNames(a: Pick<TaesrArchitecture, "block">): readonly WeightName[] {
  switch (blockOf(a)) {
    case "self_attention":
      return WEIGHT_NAMES;
    case "mlp_mixer":
      return MLP_MIXER_NAMES;
    case "hybrid":
      return HYBRID_NAMES;
  }
}

/** The names of a weight record that belong to the contract, in canonical order (for records whose architecture is not at hand). */
export function weightNamesIn(record: object): WeightName[] {
  return ALL_WEIGHT_NAMES.filter((n) => n in record);
}

/**
 * The two ONNX graphs of an artifact variant (fp32 or int8). Splitting the recursion into a step graph lets the runtime
 * choose the depth per input and stop early on convergence, with one set of weights.
 *
 * embed.onnx: input_ids int64 [B,T]                                   → x float32 [B,T,H]
 * step.onnx:  h float32 [B,T,H], x float32 [B,T,H], attention_mask float32 [B,T] (1 = token, 0 = padding)
 *                                                                     → h_next float32 [B,T,H], embedding float32 [B,outputDim]
 */
export const GRAPH_IO = {
  embed: { inputs: ["input_ids"], outputs: ["x"] },
  step: { inputs: ["h", "x", "attention_mask"], outputs: ["h_next", "embedding"] },
  /** sparse.onnx (architecture.sparseHead only): h float32 [B,T,H] (the final state), attention_mask float32 [B,T]
   *  → sparse_weights float32 [B,V] (the module comment's w). */
  sparse: { inputs: ["h", "attention_mask"], outputs: ["sparse_weights"] },
  /** late.onnx (architecture.lateHead only): h float32 [B,T,H] (the final state), attention_mask float32 [B,T]
   *  → token_vectors float32 [B,T,dim] (the module comment's v, unit rows; padding rows 0). */
  late: { inputs: ["h", "attention_mask"], outputs: ["token_vectors"] },
} as const;

export const OPSET_VERSION = 17;

/**
 * The graph variants an artifact can hold: fp32 for the origin; int8 for the edge (int8 weights, integer arithmetic on
 * dynamically quantised activations); int4 (int8 with a 4-bit token table, src/model/int4-table.ts); int8w (int8 weights
 * dequantised once when the session is created, float arithmetic in the step graph: int8's size at fp32's fidelity).
 */
export const MODEL_VARIANTS = ["fp32", "int8", "int4", "int8w"] as const;
export type ModelVariant = (typeof MODEL_VARIANTS)[number];

/** The artifact's manifest.json. */
export interface ArtifactManifest {
  format: "taesr-artifact/1";
  name: string;
  version: string;
  createdAt: string;
  architecture: TaesrArchitecture;
  /** Relative path → sha256 hex and byte length of every other file in the artifact directory. */
  files: Record<string, { sha256: string; bytes: number }>;
  tokenizer: string;
  /**
   * Graph paths per variant (MODEL_VARIANTS): fp32 and int8 in every artifact; int4 and int8w in artifacts exported or
   * extended since they existed.
   */
  variants: Record<"fp32" | "int8", VariantGraphs> & { int4?: VariantGraphs; int8w?: VariantGraphs };
  parameters: number;
  /** How depth "auto" picks 1/3/6 steps: the length rule, or a trained FastREM classifier (src/model/fastrem.ts). */
  router: RouterSpec;
  /** Early exit: stop recursing when 1 − cos(e_t, e_{t−1}) < epsilon for every input of the batch. */
  earlyExitEpsilon: number;
  training: Record<string, unknown>;
  eval: Record<string, unknown>;
  /**
   * Present when the model was fine-tuned from another artifact on a user's corpus (`npm run train -- --adapt`): the
   * base artifact, the corpus, the pairs drawn from it, and whether its train qrels were used (supervised in-domain).
   */
  adaptation?: Record<string, unknown>;
  /**
   * Retrieval defaults measured for this artifact, written after export by `npm run eval -- --tune-fusion --save`.
   * Optional (older artifacts have none: consumers fall back to the built-in constants) and outside `files`, so adding
   * it changes no sha256: the weights and graphs stay exactly what was exported.
   */
  retrieval?: RetrievalDefaults;
  /**
   * The query distribution this artifact was checked against, for drift detection (src/model/drift.ts), written by
   * `npm run drift:baseline -- --write`. Optional and outside `files`, like `retrieval`: adding it changes no sha256.
   */
  drift?: DriftBaseline;
}

/** One variant's graph paths. `sparse` / `late` only in artifacts whose architecture has that head (absent before the
 * heads existed). */
export interface VariantGraphs {
  embed: string;
  step: string;
  sparse?: string;
  late?: string;
}

/** What a search should do with this artifact's vectors by default. */
export interface RetrievalDefaults {
  /** The hybrid fusion tuned for this artifact's dense side against BM25 over its tokenizer's word pieces. */
  fusion?: TunedFusion;
  /** The late-interaction rerank tuned for this artifact's late head (architecture.lateHead) over the tuned fusion. */
  late?: TunedLateFusion;
  /**
   * The depth documents are indexed at, instead of the router's (which sends every document-length input to the full
   * depth): chosen as the cheapest depth whose hybrid NDCG@10 is not below the router's by more than the noise.
   */
  documentDepth?: TunedDocumentDepth;
  /**
   * Documents longer than the model's window indexed as passages pooled into one vector (src/model/passages.ts, the
   * encoder's `passages` option), instead of their first maxLength word pieces: chosen where the dense list gains beyond
   * the noise without the hybrid ranking losing beyond it. Costs the indexer one model pass per passage.
   */
  documentPassages?: TunedDocumentPassages;
}

/**
 * `retrieval.documentDepth`, written by `npm run eval:document-depth -- --save` (bench/document-depth.ts) — `tunedOn`
 * — or by the export of a run that trained documents at one fixed depth (training.documentSteps) — `trainedWith`: the
 * model has never been trained to compare documents embedded at any other depth, so there is nothing to tune.
 */
export interface TunedDocumentDepth {
  /** One of the architecture's depths. */
  depth: number;
  trainedWith?: { documentSteps: number[] };
  tunedOn?: {
    dataset: string;
    /** Never "test". */
    split: string;
    queries: number;
    /** Hybrid NDCG@10 with documents at `depth`, and at the router's depth ("auto"). */
    ndcg10: number;
    ndcg10Auto: number;
    /** Standard error of the paired per-query difference between the two. */
    standardError: number;
    /** Mean recursion steps the router's depth ran per document. */
    meanStepsAuto: number;
    date: string;
    dims: number;
    variant: ModelVariant;
  };
}

/**
 * `retrieval.documentPassages`, written by `npm run eval:document-passages -- --save` (bench/document-passages.ts). The
 * indexer (edge and origin alike) and the eval then embed documents with these passage options; one pooled vector per
 * document, so the stores hold what they held before.
 */
export interface TunedDocumentPassages {
  /** Word pieces per passage, heading included (16 ≤ maxPieces ≤ architecture.maxLength). */
  maxPieces: number;
  /** Most passages per document (1–64); the rest of a longer document is not read. */
  maxPassages: number;
  tunedOn: {
    dataset: string;
    /** Never "test". */
    split: string;
    queries: number;
    /** NDCG@10 with documents as passages and whole, and the standard error of their paired per-query difference. */
    dense: { ndcg10: number; ndcg10Whole: number; standardError: number };
    hybrid: { ndcg10: number; ndcg10Whole: number; standardError: number };
    /** Mean passages per document of the tuning corpus: the indexer's model passes per document. */
    meanPassages: number;
    date: string;
    dims: number;
    variant: ModelVariant;
  };
}

/**
 * The late-interaction rerank default (src/retrieval/late.ts `fuseLateInteraction`): the top `k` of the hybrid ranking
 * rescored by first · normalised first-stage score + late · normalised MaxSim, tuned on a validation split
 * (`npm run eval -- --split train --mode hybrid+late --tune-fusion --save`). The tuner writes first + late = 1; late 0
 * is allowed (the rerank did not help on the tuning split; searches then rerank only when asked to).
 */
export interface TunedLateFusion {
  k: number;
  weights: { first: number; late: number };
  tunedOn: LateTuningRecord;
}

/** Where the late fusion was tuned and what it scored there (NDCG@10 on the tuning split). */
export interface LateTuningRecord {
  dataset: string;
  /** Never "test". */
  split: string;
  queries: number;
  ndcg10: number;
  /** NDCG@10 of the first stage alone (the hybrid ranking reranked) and of MaxSim alone over the same prefix. */
  firstStageOnly: number;
  lateOnly: number;
  /** The first-stage fusion the rerank was tuned over (the artifact's `retrieval.fusion` at the time). */
  fusion: { method: "convex" | "rrf"; weights: { lexical: number; dense: number; sparse?: number } };
  date: string;
  dims?: number;
  variant?: ModelVariant;
}

/**
 * A hybrid fusion default tuned on a validation split. The fused ranking depends only on the weights' ratio; the tuner
 * writes weights summing to 1. A weight of 0 is allowed (the tuning grid includes each component alone). `sparse` is
 * present when the fusion was tuned over the learned sparse list too (an artifact with the sparse head).
 */
export interface TunedFusion {
  method: "convex" | "rrf";
  weights: { lexical: number; dense: number; sparse?: number };
  /**
   * With `weights.sparse`: the best fusion of dense and BM25 alone on the same split (the tuner's two-list grid), for
   * searches that cannot read the sparse list (src/retrieval/hybrid.ts fusionDefaultFor), and its NDCG@10 there.
   */
  withoutSparse?: { method: "convex" | "rrf"; weights: { lexical: number; dense: number }; ndcg10: number };
  tunedOn: FusionTuningRecord;
}

/** Where and how the fusion was tuned, with the figures that justify it (all NDCG@10 on the tuning split). */
export interface FusionTuningRecord {
  /** Dataset folder name, e.g. "scifact". */
  dataset: string;
  /** Never "test": tuning on the split that is reported would overstate the figures. */
  split: string;
  /** Judged queries tuned on. */
  queries: number;
  /** NDCG@10 of the chosen fusion. */
  ndcg10: number;
  /** NDCG@10 of BM25 alone and of the dense list alone on the same split: the chosen fusion is at least both. */
  lexicalOnly: number;
  denseOnly: number;
  /** NDCG@10 of the learned sparse list alone, when the fusion was tuned with it. */
  sparseOnly?: number;
  /** ISO date (YYYY-MM-DD) of the tuning run. */
  date: string;
  /** The dense setting tuned with (the edge serves int8 graphs at 128-d); absent in hand-written records. */
  dims?: number;
  variant?: ModelVariant;
}

/** The manifest's `router`: the length rule (every artifact exported so far) or a trained FastREM router. */
export type RouterSpec = RouterRule | FastRemRouterSpec;

/** The documented routing rule (a trained router replaces it later): token count thresholds on the encoded input. */
export interface RouterRule {
  kind: "rule";
  /** Inputs with at most this many word-piece tokens (excluding specials) are easy. */
  easyMaxTokens: number;
  /** … at most this many are medium; longer ones are hard. */
  mediumMaxTokens: number;
}

/**
 * The trained FastREM router (src/model/fastrem.ts has the features, the maths and the validation; training/src/router
 * fits it): a softmax regression over standardised cheap features of the encoded input, predicting the smallest depth
 * that retrieves as well as the deepest. Written into a trained artifact's manifest by `npm run train:router -- --write`;
 * like `retrieval`, the manifest is outside its own sha256 list, so adding it changes no file.
 */
export interface FastRemRouterSpec {
  kind: "fastrem";
  /** Feature names (fastrem.ts FASTREM_FEATURES): the column order of `mean`, `std` and each row of `weights`. */
  features: string[];
  /** Standardisation fitted on the training examples: z = (x − mean) / std. */
  mean: number[];
  std: number[];
  /** [3][features.length], rows in route order easy, medium, hard (router.ts ROUTES). */
  weights: number[][];
  /** [3], same row order. */
  bias: number[];
  /** The cheapest route whose cumulative probability P(smallest sufficient route ≤ it) reaches `confidence`. */
  decision: { rule: "cumulative"; confidence: number };
  /** Inputs with more word pieces than this go to "hard" without the classifier: it saw none that long (documents). */
  maxTokens: number;
  /** The length rule this router replaced, kept so tools can still route by it (`npm run eval -- --router rule`). */
  rule: RouterRule;
  labelledBy: FastRemLabelling;
  trainedOn: FastRemTraining;
  /** Label accuracy: in-sample on every example, and out-of-fold (k-fold cross-validation) as the held-out figure. */
  accuracy: { train: number; heldOut: number };
}

/** How the training labels were made. */
export interface FastRemLabelling {
  /** Per-query retrieval metric compared across depths. */
  metric: "ndcg@10" | "rr";
  /** Query depths compared (the architecture's easy, medium, hard). */
  depths: number[];
  /** Depth the documents were embedded at ("auto": the artifact's rule router, as the indexer does). */
  documentDepth: "auto" | number;
  /** Passages the documents were embedded as (manifest retrieval.documentPassages), when the artifact chose them. */
  documentPassages?: { maxPieces: number; maxPassages: number };
  dims: number;
  variant: ModelVariant;
  earlyExit: boolean;
  /** The ranking the metric was taken on: absent = the dense list alone; hybrid = BM25 fused with it by this fusion
   * (the artifact's served default when the router was trained). */
  retrieval?: { mode: "hybrid"; fusion: { method: "convex" | "rrf"; weights: { dense: number; lexical: number } } };
  /** The label in words, e.g. "smallest depth whose ndcg@10 ≥ depth 6's; ties → smaller depth". */
  rule: string;
}

/** What the router was fitted on and how. */
export interface FastRemTraining {
  /** Labelling sources, e.g. {dataset: "scifact", split: "train", queries: 809}. Never a "test" split. */
  sources: { dataset: string; split: string; queries: number }[];
  examples: number;
  classCounts: { easy: number; medium: number; hard: number };
  /** The artifact the labels were computed with ("name@version"). */
  model: string;
  seed: number;
  l2: number;
  epochs: number;
  learningRate: number;
  folds: number;
  /** ISO date (YYYY-MM-DD). */
  date: string;
  /** Out-of-fold estimate of the routed policy on the labelling set at the chosen confidence. */
  estimate?: { meanDepth: number; metric: number; metricAlwaysHard: number };
}

/** Mean and sample standard deviation of one per-query scalar over a baseline's queries. */
export interface Moments {
  mean: number;
  std: number;
}

/**
 * What "no drift" looks like for an artifact (src/model/drift.ts explains the score): the statistics of a reference query
 * set embedded exactly as the edge embeds search queries, and the score threshold calibrated on that set.
 */
export interface DriftBaseline {
  /** How the query embeddings were made. The worker records only queries embedded this way (else it compares unlike). */
  embedding: { variant: ModelVariant; dims: number; depth: number | "auto"; ranking: "dense" | "hybrid" };
  /** Queries the statistics are over. */
  count: number;
  /** Per embedding component (length embedding.dims). */
  mean: number[];
  std: number[];
  /** Share of a query's word pieces that are neither [UNK] nor single letters/digits (drift.ts `tokenCoverage`). */
  coverage: Moments;
  /** ln(1 + word pieces) of a query. */
  logLength: Moments;
  /** Fewer recorded queries than this give no verdict; the threshold is calibrated at this sample size. */
  minimumCount: number;
  /** Scores above it are drift. */
  threshold: number;
  /** Share of in-distribution samples of minimumCount queries whose score exceeded the threshold in calibration. */
  falseAlarmRate: number;
  calibration: { replicates: number; seed: number; nullQuantiles: { p50: number; p90: number; p99: number } };
  /** Where the queries came from, e.g. {dataset: "scifact", file: "queries.jsonl", split: "train", queries: 809}. */
  source: { dataset: string; file: string; split?: string; queries: number };
  /** ISO date (YYYY-MM-DD) the baseline was computed. */
  date: string;
}
