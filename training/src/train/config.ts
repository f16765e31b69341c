/**
 * The training run's configuration: schema, defaults, and loading from a JSON file with errors that name the field.
 *
 * Relative paths in a config (tokenizer, export.outDir) are resolved against the config file's directory, so the same
 * file works whether `npm run train` is started from the repository root or from training/.
 *
 * @module
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { BLOCK_ARCHITECTURES } from "../../../src/model/spec.js";
import { defaultBiomedFile } from "../data/corpora.js";

const positiveInt = z.number().int().positive();

/** Extra copies of particular pair kinds (multiplied with the source's repeat), e.g. {"train-query->text": 8}: the
 * supervised pairs of a corpus are a few percent of its pairs and would otherwise be seen about once per run. */
const kindRepeatSchema = z.record(z.string().min(1), positiveInt);

/** Mined hard negatives (data/hard-negatives.ts) for the pairs of the listed kinds. */
const hardNegativesSchema = z
  .object({
    /** Pair kinds that get a mined negative (e.g. "title->text", "train-query->text"). */
    kinds: z.array(z.string().min(1)).nonempty(),
    /** The negative is drawn (seeded) from this many best-ranked non-positive documents: the very top hit is too often
     * an unjudged positive, a wider pool trades hardness for fewer false negatives. */
    depth: positiveInt.max(100).default(10),
    /** What ranks the documents: "bm25" (the default: lexically close documents) or "dense" (the initFrom artifact's
     * own embeddings, data/dense-negatives.ts: the documents the model starts out confusing). Optional rather than
     * defaulted, so configs without it parse — and resume — as before. */
    ranker: z.enum(["bm25", "dense"]).optional(),
    /** Each copy of an oversampled pair (repeat, kindRepeat) gets its own negative — distinct draws from the pool while
     * it lasts — instead of all copies sharing one: a query seen 8 times a run then meets 8 close wrong documents, at no
     * extra compute. Optional: absent (shared) leaves every existing config, and run, as it was. */
    perCopy: z.boolean().optional(),
  })
  .strict();

const sourceSchema = z
  .object({
    /** Cap on pairs drawn from this source (a seeded sample of all its pairs); omit for all. */
    maxPairs: positiveInt.optional(),
    /** Copies of each train pair in the stream (default 1) to oversample a small source; validation keeps one. Optional
     * rather than defaulted: a default would change the parsed config, hence the resume key, of every existing run. */
    repeat: positiveInt.optional(),
    /** SciFact only: sentence → rest-of-abstract pairs per abstract (default 1). */
    sentencesPerDoc: positiveInt.max(8).optional(),
    kindRepeat: kindRepeatSchema.optional(),
    hardNegatives: hardNegativesSchema.optional(),
  })
  .strict();

/** The biomed corpus (data/biomed-corpus.ts; built by `npm run -w training corpus:biomed`). */
const biomedSourceSchema = z
  .object({
    /** The corpus file (relative to this config file); default training/.cache/biomed/biomed.jsonl. */
    file: z.string().min(1).optional(),
    maxPairs: positiveInt.optional(),
    repeat: positiveInt.optional(),
    kindRepeat: kindRepeatSchema.optional(),
    hardNegatives: hardNegativesSchema.optional(),
  })
  .strict();

/** A user's corpus for domain adaptation (data/adapt-corpus.ts): a BEIR directory or a directory with one JSONL file. */
const adaptSourceSchema = z
  .object({
    /** The corpus directory (relative to this config file). */
    dir: z.string().min(1),
    maxPairs: positiveInt.optional(),
    repeat: positiveInt.optional(),
    kindRepeat: kindRepeatSchema.optional(),
    hardNegatives: hardNegativesSchema.optional(),
    /** Share of the train queries (by a hash of the query id, seed-independent: data/pairs.ts isQueryHeldOut) kept out
     * of the supervised pairs, so fusion weights can be tuned on queries the model never trained on (their ids go into
     * the manifest's adaptation record). Optional: absent (0) leaves every existing config, and run, as it was. */
    holdoutQueries: z.number().min(0).max(0.5).optional(),
  })
  .strict();

export const archSchema = z
  .object({
    /** The shared block (src/model/spec.ts): absent = "self_attention". Optional rather than defaulted, so existing
     * configs parse (and their resume keys and exported manifests come out) exactly as before. */
    block: z.enum(BLOCK_ARCHITECTURES).optional(),
    /** Must equal the tokenizer's vocabulary size when given; taken from the tokenizer when omitted. */
    vocabSize: positiveInt.optional(),
    hidden: positiveInt,
    heads: positiveInt,
    ffn: positiveInt,
    maxLength: positiveInt,
    outputDim: z.literal(384).default(384),
    matryoshkaDims: z.array(positiveInt).nonempty().default([64, 128, 256, 384]),
    depths: z
      .object({ easy: positiveInt, medium: positiveInt, hard: positiveInt })
      .strict()
      .default({ easy: 1, medium: 3, hard: 6 }),
    /** The SPLADE-style sparse head (spec.ts; trained by training.objectives.sparse). Optional: false is dropped below. */
    sparseHead: z.boolean().optional(),
    /** The late-interaction head (spec.ts; trained by training.objectives.late): the token vectors' width. Optional. */
    lateHead: z.object({ dim: positiveInt }).strict().optional(),
  })
  .strict()
  .superRefine((a, ctx) => {
    if (a.hidden % a.heads !== 0) {
      ctx.addIssue({ code: "custom", path: ["heads"], message: `hidden (${a.hidden}) must be divisible by heads (${a.heads})` });
    }
    const dims = a.matryoshkaDims;
    if (dims.some((d, i) => i > 0 && d <= (dims[i - 1] ?? 0)) || dims[dims.length - 1] !== a.outputDim) {
      ctx.addIssue({
        code: "custom",
        path: ["matryoshkaDims"],
        message: `must be strictly ascending and end at outputDim (${a.outputDim}); got [${dims.join(", ")}]`,
      });
    }
    if (!(a.depths.easy <= a.depths.medium && a.depths.medium <= a.depths.hard)) {
      ctx.addIssue({ code: "custom", path: ["depths"], message: "must satisfy easy ≤ medium ≤ hard" });
    }
  })
  // "self_attention" written out is the default: drop it, so the architecture compares equal to one that omits it
  // (initFrom an older artifact, the resume key).
  // Likewise sparseHead: false is the default, written only when true (last, after the fields that always existed).
  // lateHead likewise, after sparseHead (spec.ts's field order).
  .transform(({ block, sparseHead, lateHead, ...rest }) => ({
    ...(block === undefined || block === "self_attention" ? {} : { block }),
    ...rest,
    ...(sparseHead ? { sparseHead } : {}),
    ...(lateHead ? { lateHead } : {}),
  }));

/** The sparse objective (train/sparse-loss.ts): its weight in the total, the FLOPS λs and their quadratic warm-up. */
const sparseObjectiveSchema = z
  .object({
    /** total = dense + weight · sparse. */
    weight: z.number().positive(),
    /** FLOPS regulariser weights for queries and documents (SPLADE: 3e-4 / 1e-4 at full size). */
    lambdaQuery: z.number().nonnegative(),
    lambdaDoc: z.number().nonnegative(),
    /** Updates over which λ grows quadratically from 0 to its value. */
    warmupSteps: z.number().int().nonnegative().default(0),
  })
  .strict();

/** The late-interaction objective (train/late-loss.ts): in-batch InfoNCE over MaxSim scores of the head's token vectors. */
const lateObjectiveSchema = z
  .object({
    /** total = dense + weight · late. */
    weight: z.number().positive(),
    /** Logits = MaxSim / temperature; absent = 0.1 (late-loss.ts explains the choice). */
    temperature: z.number().positive().optional(),
    /** Recursion steps whose hidden state the head is trained on, each one of training.lossSteps (their hidden states
     * are the ones computed); absent = the deepest of lossSteps. */
    steps: z.array(positiveInt).nonempty().optional(),
    /** The head as the dense embedding's teacher (train/distill-loss.ts): total += weight · KL(late ‖ dense) over each
     * micro-batch's documents; temperature of the teacher's softmax over MaxSim, absent = the late objective's; bm25 = α
     * makes BM25 over the run's training documents a second teacher, fused with the head's (absent: the head alone). */
    distill: z
      .object({ weight: z.number().positive(), temperature: z.number().positive().optional(), bm25: z.number().positive().optional() })
      .strict()
      .optional(),
  })
  .strict();

/** The subspace objectives (train/subspace-loss.ts): a probe per named subspace trained with its auxiliary label. */
const subspaceObjectiveSchema = z
  .object({
    /** total = dense + weight · (temporal · L_temporal + procedural · L_procedural + contextual · L_contextual). */
    weight: z.number().positive(),
    temporal: z.number().nonnegative().default(1),
    procedural: z.number().nonnegative().default(1),
    contextual: z.number().nonnegative().default(1),
    /** The probes' learning rate as a multiple of the model's (same schedule): a linear probe on a representation that
     * moves every update must keep up with it, and at the model's rate it is still near its zero start after 100 updates. */
    probeLrScale: z.number().positive().default(10),
    /** Labelled texts per micro-batch, drawn uniformly from the training pairs (data/batches.ts probeSample): a batch's
     * own rows are mostly one source, since batches are cut from length-sorted windows. */
    rows: positiveInt.default(32),
    /** Recursion steps whose embeddings the probes read, equally weighted; the probe rows run only to the deepest of
     * them. Absent: training.lossSteps with their weights. The probe rows run with gradients to that depth, so at
     * lossSteps [1, 3, 6] they cost more block work than all the run's documents at documentSteps [1]; [1] reads the
     * subspaces at the depth the index embeds documents at and most queries are routed to. */
    steps: z.array(positiveInt).nonempty().optional(),
    /** Each row's loss weighted by 1 / (classes · its class's share of the probe texts), so a rare label (procedural:
     * ~3 % of texts) is not learnt as "always no"; "none" = the unweighted mean (subspace-loss.ts explains the choice). */
    classBalance: z.enum(["inverse-frequency", "none"]).default("inverse-frequency"),
  })
  .strict();

export const trainConfigSchema = z
  .object({
    /** Run name: the default run directory is training/runs/<name>/. */
    name: z.string().regex(/^[A-Za-z0-9._-]+$/, "letters, digits, '.', '_' and '-' only"),
    seed: z.number().int().nonnegative().default(42),
    backend: z.enum(["auto", "gpu", "node", "wasm", "cpu"]).default("auto"),
    /** Path of the WordPiece tokenizer JSON (relative to this config file). */
    tokenizer: z.string().min(1),
    /** Start from these weights instead of a random initialisation: a run's final.taesr or a checkpoint's params, or an
     * artifact directory (its fp32 graphs are read back), relative to this config file. The architecture must match.
     * Optimiser moments start fresh. */
    initFrom: z.string().min(1).optional(),
    /** How a run from scratch initialises embed.token: "random" (the default) or "glove" (model/glove-init.ts: GloVe
     * vectors of the vocabulary's pieces). Optional rather than defaulted, so configs without it parse (and resume) as
     * before. Not with initFrom, whose weights include the table. */
    initEmbeddings: z.enum(["random", "glove"]).optional(),
    arch: archSchema,
    data: z
      .object({
        sources: z
          .object({
            debian: sourceSchema.optional(),
            wordnet: sourceSchema.optional(),
            scifact: sourceSchema.optional(),
            adapt: adaptSourceSchema.optional(),
            biomed: biomedSourceSchema.optional(),
          })
          .strict()
          .refine((s) => Object.values(s).some((v) => v !== undefined), "enable at least one source"),
        /** Fraction of pairs held out for validation, chosen by a hash of the pair (stable across runs and seeds). */
        validationFraction: z.number().min(0).max(0.5).default(0.01),
        /** Validation uses at most this many held-out pairs (it runs every evalEvery steps; keep it cheap). */
        maxValidationPairs: positiveInt.default(512),
        /** Pairs whose document is shorter than this (characters) carry too little signal and are dropped. */
        minDocChars: z.number().int().nonnegative().default(16),
      })
      .strict(),
    training: z
      .object({
        batchSize: z.number().int().min(2),
        /** Exactly one of steps / epochs. */
        steps: positiveInt.optional(),
        epochs: z.number().positive().optional(),
        lr: z.number().positive(),
        /** Floor of the cosine cooldown as a fraction of lr. */
        minLrRatio: z.number().min(0).max(1).default(0.05),
        warmupSteps: z.number().int().nonnegative().default(0),
        weightDecay: z.number().nonnegative().default(0.01),
        beta1: z.number().min(0).lt(1).default(0.9),
        beta2: z.number().min(0).lt(1).default(0.999),
        adamEps: z.number().positive().default(1e-8),
        clipNorm: z.number().positive().default(1),
        temperature: z.number().min(0.01).max(1).default(0.05),
        /** Symmetric InfoNCE (query→doc and doc→query) or query→doc only. */
        symmetric: z.boolean().default(true),
        /** Recursion steps that receive the contrastive loss (deep supervision), with optional weights (default equal). */
        lossSteps: z.array(positiveInt).nonempty().default([1, 3, 6]),
        lossStepWeights: z.array(z.number().positive()).optional(),
        /** Also pair queries and documents across supervised steps, as the router's mixed depths compare them (loss.ts). */
        crossStepLoss: z.boolean().default(false),
        /**
         * The steps documents are supervised at, when the index embeds every document at one fixed depth (an artifact's
         * retrieval.documentDepth: 1 for the bundled models). Documents are then encoded only that deep, and each query
         * step of lossSteps is paired with each of these (loss.ts). Documents are most of a batch's tokens, so [1]
         * against lossSteps [1, 3, 6] runs several times fewer block applications per pair. Absent: documents at
         * lossSteps, as before (optional, so older configs parse and resume as they did).
         */
        documentSteps: z.array(positiveInt).nonempty().optional(),
        /** Objectives beside the dense InfoNCE (each optional: absent = not trained, and the parsed config — hence the
         * resume key — is what it was before the field existed). */
        objectives: z
          .object({
            sparse: sparseObjectiveSchema.optional(),
            subspaces: subspaceObjectiveSchema.optional(),
            late: lateObjectiveSchema.optional(),
          })
          .strict()
          .optional(),
        maxQueryLength: positiveInt,
        maxDocLength: positiveInt,
        /** Processes computing gradients in parallel (data parallelism; rank 0 is the trainer itself). One update
         * consumes workers × accumulationSteps micro-batches of batchSize pairs, each with its own in-batch negatives. */
        workers: positiveInt.default(1),
        /** One GPU per process: rank r runs with CUDA_VISIBLE_DEVICES = gpuDevices[r] (set before tfjs-node-gpu loads,
         * so each process sees only its device as GPU 0). One entry per worker; ignored by the non-CUDA backends. */
        gpuDevices: z.array(z.string().regex(/^[0-9]+$/, "a CUDA device index such as \"0\"")).nonempty().optional(),
        /** Micro-batches each process runs (and sums) per update: a larger effective batch at the same peak memory. */
        accumulationSteps: positiveInt.default(1),
        /** Recompute each recursion step's block in the backward pass instead of keeping its activations (forward.ts):
         * lower peak memory for about one extra forward pass of compute; the gradients are the same. Not in the resume
         * key, since it changes no number. */
        gradientCheckpointing: z.boolean().default(false),
        /**
         * Gradient caching (train/gradient-cache.ts): encode a micro-batch's rows `rows` at a time — first without
         * gradients to compute the loss and its gradient at the embeddings, then again with them — so a micro-batch, and
         * with it every query's in-batch negatives, can grow past what one backward pass holds in memory. Same loss and
         * gradients for one more forward pass of compute; not with the sparse objective or trainHeadsOnly. Not in the
         * resume key (it changes no number beyond float rounding); optional, so older configs parse as before.
         */
        gradientCache: z.object({ rows: positiveInt }).strict().optional(),
        /**
         * Train the heads alone: only the weights of the heads whose objective is set (sparse.*, late.proj.w) change;
         * the encoder, the token table (which the sparse head reads, tied) and the output projection stay what initFrom
         * gave, so a head joins a shipped model without moving its dense embeddings. The dense loss is not computed
         * and the encoder runs forward only, to the deepest lossSteps entry (the hidden state the heads read). Needs
         * initFrom and a head objective; not with the subspace probes (they read the frozen embedding). Optional, so
         * configs written before it parse (and resume) as they did.
         */
        trainHeadsOnly: z.boolean().optional(),
        /**
         * With a vocabulary extended from initFrom's (tokenizer/extend-vocab.ts): for the first N updates only the rows
         * the extension appended learn — their embed.token rows and sparse.bias entries — and every other weight (and
         * the subspace probes) stays as initFrom gave it. New rows start as estimates (GloVe through a fitted map, or
         * their old pieces' mean); trained against a block that does not move, they first learn to mean to it what the
         * pieces they replace meant, instead of the whole model bending to fit rows it has never seen (a run from
         * taesr-edge-scifact@0.9.0 with 8,040 words lost 0.08 held-out NDCG@10 that way). Optional: older configs parse
         * and resume as before.
         */
        newRowsFirst: positiveInt.optional(),
        logEvery: positiveInt.default(10),
        evalEvery: positiveInt.default(500),
        /** At each validation, also rank the adaptation corpus for the train queries the run holds out, with the current
         * weights exported as the edge would serve them (held-out-probe.ts; ~20 s for SciFact): the curve that says
         * whether more updates still pay. Needs the "adapt" source with holdoutQueries. Optional: configs without it
         * parse and resume as before. */
        heldOutRetrieval: z.boolean().optional(),
        /** The same probe for a run that holds no queries out of an adaptation (a general run): a BEIR corpus directory
         * (relative to this config file) with qrels/train.tsv, ranked at each validation and at the end for all its
         * train queries, which such a run never trains on — the zero-shot figure a general model is chosen by. Not with
         * heldOutRetrieval, and never the corpus the run adapts to (it trains on those queries). Optional. */
        probeCorpus: z.string().min(1).optional(),
        checkpointEvery: positiveInt.default(500),
        keepCheckpoints: positiveInt.default(3),
      })
      .strict(),
    export: z
      .object({
        name: z.string().min(1),
        /** A version, or "next": the next minor version after the highest existing <name>@x.y.z in outDir (0.1.0 when
         * there is none), decided at export time so a resumed or long run still gets a fresh one. */
        version: z.string().min(1),
        /** Directory that receives <name>@<version>/ (relative to this config file). */
        outDir: z.string().min(1),
        /** Overwrite an existing <name>@<version> (published versions are immutable; only throwaway configs set this). */
        force: z.boolean().default(false),
        earlyExitEpsilon: z.number().nonnegative().default(0.002),
        router: z
          .object({ easyMaxTokens: positiveInt, mediumMaxTokens: positiveInt })
          .strict()
          .default({ easyMaxTokens: 8, mediumMaxTokens: 32 }),
      })
      .strict(),
  })
  .strict()
  .superRefine((c, ctx) => {
    const t = c.training;
    if ((t.steps === undefined) === (t.epochs === undefined)) {
      ctx.addIssue({ code: "custom", path: ["training"], message: "set exactly one of training.steps or training.epochs" });
    }
    if (t.gpuDevices && t.gpuDevices.length !== t.workers) {
      ctx.addIssue({
        code: "custom",
        path: ["training", "gpuDevices"],
        message: `needs one device per worker process (${t.workers}), got ${t.gpuDevices.length}`,
      });
    }
    if (t.gpuDevices && new Set(t.gpuDevices).size !== t.gpuDevices.length) {
      ctx.addIssue({ code: "custom", path: ["training", "gpuDevices"], message: "lists a device twice: two ranks would share one GPU" });
    }
    if (t.lossStepWeights && t.lossStepWeights.length !== t.lossSteps.length) {
      ctx.addIssue({ code: "custom", path: ["training", "lossStepWeights"], message: "must have one weight per lossSteps entry" });
    }
    const maxStep = Math.max(...t.lossSteps);
    if (maxStep > c.arch.depths.hard) {
      ctx.addIssue({
        code: "custom",
        path: ["training", "lossSteps"],
        message: `step ${maxStep} exceeds arch.depths.hard (${c.arch.depths.hard})`,
      });
    }
    if (c.initEmbeddings === "glove" && c.initFrom !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["initEmbeddings"],
        message: "\"glove\" initialises a model from scratch; with initFrom the token embeddings come from that model (drop one of them)",
      });
    }
    if (t.heldOutRetrieval && !(c.data.sources.adapt?.holdoutQueries! > 0)) {
      ctx.addIssue({
        code: "custom",
        path: ["training", "heldOutRetrieval"],
        message: "ranks the train queries an adaptation holds out: needs data.sources.adapt with holdoutQueries > 0",
      });
    }
    if (t.heldOutRetrieval && t.probeCorpus !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["training", "probeCorpus"],
        message: "one retrieval probe per run: heldOutRetrieval already ranks the adaptation corpus for its held-out queries",
      });
    }
    for (const [name, source] of Object.entries(c.data.sources)) {
      if (source?.hardNegatives?.ranker === "dense" && c.initFrom === undefined) {
        ctx.addIssue({
          code: "custom",
          path: ["data", "sources", name, "hardNegatives", "ranker"],
          message: '"dense" ranks with the model the run starts from: it needs initFrom (a trained artifact directory)',
        });
      }
    }
    if (t.objectives?.sparse && !c.arch.sparseHead) {
      ctx.addIssue({ code: "custom", path: ["training", "objectives", "sparse"], message: "needs arch.sparseHead: true (the head it trains)" });
    }
    const late = t.objectives?.late;
    if (late && !c.arch.lateHead) {
      ctx.addIssue({ code: "custom", path: ["training", "objectives", "late"], message: "needs arch.lateHead (e.g. {\"dim\": 32}: the head it trains)" });
    }
    for (const s of t.documentSteps ?? []) {
      if (s > c.arch.depths.hard) {
        ctx.addIssue({ code: "custom", path: ["training", "documentSteps"], message: `step ${s} exceeds arch.depths.hard (${c.arch.depths.hard})` });
      }
    }
    if (t.documentSteps && new Set(t.documentSteps).size !== t.documentSteps.length) {
      ctx.addIssue({ code: "custom", path: ["training", "documentSteps"], message: "lists a step twice" });
    }
    const probeSteps = t.objectives?.subspaces?.steps ?? [];
    for (const s of probeSteps) {
      if (s > c.arch.depths.hard) {
        ctx.addIssue({ code: "custom", path: ["training", "objectives", "subspaces", "steps"], message: `step ${s} exceeds arch.depths.hard (${c.arch.depths.hard})` });
      }
    }
    if (new Set(probeSteps).size !== probeSteps.length) {
      ctx.addIssue({ code: "custom", path: ["training", "objectives", "subspaces", "steps"], message: "lists a step twice" });
    }
    for (const s of late?.steps ?? []) {
      if (!t.lossSteps.includes(s)) {
        ctx.addIssue({
          code: "custom",
          path: ["training", "objectives", "late", "steps"],
          message: `step ${s} is not one of training.lossSteps [${t.lossSteps.join(", ")}] (the hidden states the run computes)`,
        });
      }
    }
    if (t.gradientCache) {
      if (t.objectives?.sparse) {
        ctx.addIssue({ code: "custom", path: ["training", "gradientCache"], message: "does not cover objectives.sparse (drop one of them)" });
      }
      if (t.trainHeadsOnly) {
        ctx.addIssue({ code: "custom", path: ["training", "gradientCache"], message: "has nothing to save with trainHeadsOnly, whose encoder runs without gradients (drop one of them)" });
      }
    }
    if (t.trainHeadsOnly) {
      if (c.initFrom === undefined) {
        ctx.addIssue({ code: "custom", path: ["training", "trainHeadsOnly"], message: "needs initFrom: the trained encoder the heads are added to" });
      }
      if (!t.objectives?.sparse && !t.objectives?.late) {
        ctx.addIssue({ code: "custom", path: ["training", "trainHeadsOnly"], message: "needs objectives.sparse or objectives.late: the heads to train" });
      }
      if (t.objectives?.subspaces) {
        ctx.addIssue({
          code: "custom",
          path: ["training", "objectives", "subspaces"],
          message: "the subspace objectives shape the encoder's embedding, which trainHeadsOnly keeps fixed (drop one of them)",
        });
      }
      if (late?.distill) {
        ctx.addIssue({
          code: "custom",
          path: ["training", "objectives", "late", "distill"],
          message: "distillation teaches the encoder's dense embedding, which trainHeadsOnly keeps fixed (drop one of them)",
        });
      }
    }
    if (t.newRowsFirst !== undefined) {
      if (c.initFrom === undefined) {
        ctx.addIssue({ code: "custom", path: ["training", "newRowsFirst"], message: "needs initFrom: the artifact whose vocabulary the tokenizer extends" });
      }
      if (t.trainHeadsOnly) {
        ctx.addIssue({ code: "custom", path: ["training", "newRowsFirst"], message: "trains token rows, which trainHeadsOnly keeps fixed (drop one of them)" });
      }
    }
    for (const key of ["maxQueryLength", "maxDocLength"] as const) {
      if (t[key] > c.arch.maxLength) {
        ctx.addIssue({ code: "custom", path: ["training", key], message: `exceeds arch.maxLength (${c.arch.maxLength})` });
      }
    }
  });

export type TrainConfig = z.infer<typeof trainConfigSchema>;

/** Thrown for a config that cannot be used; the message lists every problem with its field path. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Validates an already-parsed config object; `source` names it in error messages. */
export function parseConfig(raw: unknown, source = "config"): TrainConfig {
  const result = trainConfigSchema.safeParse(raw);
  if (!result.success) {
    throw new ConfigError(`invalid training config ${source}:\n${z.prettifyError(result.error)}`);
  }
  return result.data;
}

/**
 * The directory each config loaded from a file resolves its relative paths against, for code that receives only the
 * config (trainer.ts openSources). A WeakMap, like params.ts's architectures: the config object stays plain JSON, and
 * the checkpoint (which stores it) and the resume key do not change.
 */
const configDirs = new WeakMap<TrainConfig, string>();

/** The directory of the file `config` was loaded from (undefined for a config parsed from an object). */
export function configDir(config: TrainConfig): string | undefined {
  return configDirs.get(config);
}

/** The biomed corpus file a config reads: data.sources.biomed.file against the config's directory, else the default. */
export function biomedFile(config: TrainConfig): string {
  const file = config.data.sources.biomed?.file;
  return file === undefined ? defaultBiomedFile() : path.resolve(configDir(config) ?? process.cwd(), file);
}

/** A validated config plus the directory its relative paths are resolved against. */
export interface LoadedConfig {
  config: TrainConfig;
  path: string;
  baseDir: string;
}

export async function loadConfig(file: string): Promise<LoadedConfig> {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = await readFile(abs, "utf8");
  } catch (err) {
    throw new ConfigError(`cannot read training config ${abs}: ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`training config ${abs} is not valid JSON: ${(err as Error).message}`);
  }
  const config = parseConfig(raw, abs);
  configDirs.set(config, path.dirname(abs));
  return { config, path: abs, baseDir: path.dirname(abs) };
}

/** Resolves a path from the config against the config file's directory. */
export function resolveFromConfig(loaded: { baseDir: string }, p: string): string {
  return path.isAbsolute(p) ? p : path.resolve(loaded.baseDir, p);
}
