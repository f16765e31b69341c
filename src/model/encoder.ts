/**
 * The TAESR encoder runtime: tokenise → embed.onnx once → step.onnx k times (adaptive k, early exit) → Matryoshka prefix,
 * L2-normalised. Engine-agnostic: it talks to onnxruntime only through {@link OrtLike}.
 *
 * Batching: texts are padded to the longest one in the batch (attention_mask 0 on padding, so padding changes nothing
 * but cost). The whole batch runs at one depth; with `depth: "auto"` that is the deepest depth any of its texts is
 * routed to, so a short text in a batch with a long one gets more steps than it would alone (never fewer). Callers that
 * care about per-query cost (the search path) embed queries one at a time; the indexer batches documents.
 *
 * Empty input: a text that encodes to zero ids (the empty string, whitespace, only characters the normaliser drops)
 * is fed as a single [UNK] token. Without it, the masked mean pools nothing and the embedding degenerates to the
 * projection bias, identical for every such text and possibly zero (no direction to normalise); a lone [UNK] gives all
 * such inputs one well-defined "unknown content" embedding, and keeps an all-empty batch from having length 0.
 *
 * Token vectors (late interaction): with `tokenVectors: true`, embed() also returns, per text, one unit vector per real
 * token, computed from h at the last step run (the routed depth, or where early exit stopped):
 * - artifacts with the trained late-interaction head (architecture.lateHead, spec.ts): the variant's late.onnx,
 *   v_t = normalize(LNout(h_t)·W_late), lateHead.dim components. If the manifest declares the head but its graph was
 *   not given, the option is refused: falling back would silently mix two incompatible vector spaces in one index.
 * - artifacts without it (every artifact published before the head existed): a stand-in, h centred over its H
 *   components and L2-normalised (LayerNorm without its affine parameters, then unit length, so a MaxSim dot product
 *   is a cosine), H components. The out.ln γ/β live inside the step graph and are not applied. Caveat, measured on
 *   taesr-edge-small@0.1.0 (int8): rows of h already have near-zero mean over H, so the centring barely changes them,
 *   and one text's tokens stay alike (mean pairwise cosine ≈ 0.81 at depth 1, 0.98 at depth 6): what they share is
 *   not along the all-ones direction that centring removes.
 * Either way padding rows are dropped, and a text fed as a lone [UNK] (see above) has one token vector, so no text has
 * an empty matrix.
 *
 * Sparse terms (SPLADE-style head, spec.ts): with `sparse` and an artifact whose architecture has the head, embed() also
 * runs the variant's sparse.onnx on h of the last step run and returns each text's terms above a threshold as
 * {tokenId: weight} (the largest `maxTerms`). An artifact without the head refuses the option rather than returning
 * nothing, so a caller never indexes empty vectors by mistake.
 *
 * Concurrency: `embed` calls on one encoder are serialised. The wasm engine is single-threaded anyway, and an
 * ORT session is not documented as safe for overlapping runs; requests in the same isolate therefore queue.
 *
 * @module
 */
import { parseManifest, variantFiles, variantGraphs, verifyArtifactFiles, type ArtifactVariant } from "./manifest.js";
import { readFloat32, type OrtLike, type OrtSessionLike, type OrtSessionOptions, type OrtTensorLike } from "./ort-seam.js";
import { fastRemVocab } from "./fastrem.js";
import {
  createInputRouter,
  depthForRoute,
  hardestRoute,
  lengthRuleOf,
  routerServes,
  type EmbeddingRanking,
  type InputRouter,
  type Route,
} from "./router.js";
import { checkPassageOptions, splitPassages, type PassageOptions } from "./passages.js";
import { GRAPH_IO, type ArtifactManifest, type TaesrArchitecture } from "./spec.js";

/** What the encoder needs from a tokenizer (`WordPieceTokenizer` from src/tokenizer satisfies it). */
export interface EncoderTokenizer {
  /** Word-piece ids, no special tokens, truncated to `maxLength`. */
  encode(text: string, options: { maxLength: number }): number[];
  readonly padId: number;
  /** Fed in place of an input that encodes to no ids at all (see the module doc). */
  readonly unkId: number;
  /**
   * The vocabulary, needed only when the manifest's router is FastREM (its features read token strings: "##" pieces,
   * digits, merge order). `WordPieceTokenizer` has both.
   */
  readonly vocabSize?: number;
  idToToken?(id: number): string | undefined;
}

export interface TaesrEncoderInit {
  ort: OrtLike;
  /** manifest.json: its text, its parsed JSON, or an {@link ArtifactManifest}; validated either way. */
  manifest: unknown;
  /** Artifact files by their manifest path. Only the chosen variant's graphs are needed (plus whatever else is given). */
  files: Readonly<Record<string, Uint8Array>>;
  variant: ArtifactVariant;
  tokenizer: EncoderTokenizer;
  /** Check sha256 and size of the variant's files before loading them. Default true. */
  verify?: boolean;
  /** Passed to both sessions (after the adapter's own defaults). */
  sessionOptions?: OrtSessionOptions;
}

export interface EmbedOptions {
  /** Matryoshka prefix to return; one of architecture.matryoshkaDims (64, 128, 256, 384 in TAESR). Default outputDim. */
  dims?: number;
  /**
   * Recursion steps, 1…architecture.depths.hard (TAESR trains 1, 3 and 6), or "auto" for the manifest's router (the
   * trained FastREM router when the artifact ships one, else the length rule). Default "auto".
   */
  depth?: number | "auto";
  /** Stop before `depth` once every embedding has converged (manifest.earlyExitEpsilon). Default true. */
  earlyExit?: boolean;
  /**
   * The ranking the embeddings will be searched in. With depth "auto", a router whose labels do not cover it (a FastREM
   * router labelled on hybrid retrieval, asked for a dense-only search: router.ts `routerServes`) gives way to the length
   * rule it keeps, so a dense search is not cut to the depth a hybrid one can afford. Default "dense", the stricter:
   * embeddings handed to a caller (/v1/embed) or stored in an index serve dense search too, and the router's labels
   * embedded their documents by the length rule. The search path passes "hybrid" for hybrid queries.
   */
  ranking?: EmbeddingRanking;
  /**
   * Also return per-token vectors for late interaction ({@link EmbedResult.tokenVectors}; see the module doc: the
   * trained head's late.onnx when the artifact has it, else the hidden-state stand-in). Default false, and then nothing
   * extra is read or allocated.
   */
  tokenVectors?: boolean;
  /**
   * Also return sparse term weights ({@link EmbedResult.sparse}): `true` for the defaults, or the threshold (weights
   * ≤ it are dropped; default 0) and the most terms kept per text (default 256). Needs the sparse head.
   */
  sparse?: boolean | SparseOptions;
  /**
   * Embed each text as passages that fit the model's window and pool them (passages.ts): the returned vector is the
   * mean of the passages' full-width unit vectors, cut to `dims` and normalised, so it covers a document past its
   * first maxLength word pieces. Token vectors are the first passage's (the late rerank reads a document's opening);
   * sparse terms are each term's largest weight over the passages, cut again. A text that fits one passage embeds as
   * without it. Meant for documents (`npm run eval -- --passages` measures it; the Worker indexes documents so when the
   * manifest chose `retrieval.documentPassages`).
   */
  passages?: PassageOptions;
  /**
   * With `passages`: also return each passage's own unit vector ({@link EmbedResult.passageVectors}), for an index
   * that scores a document by its best passage instead of by the pooled vector.
   */
  passageVectors?: boolean;
}

export interface SparseOptions {
  threshold?: number;
  maxTerms?: number;
}

/** One text's sparse term weights: vocabulary id → weight (> threshold), at most maxTerms entries. */
export type SparseTerms = Record<number, number>;

/** The sparse cut when a caller names none: every weight above 0, at most 256 terms per text. */
export const DEFAULT_SPARSE: Readonly<Required<SparseOptions>> = Object.freeze({ threshold: 0, maxTerms: 256 });

/**
 * One text's token vectors: row-major [count, dims] (dims = architecture.lateHead.dim with the trained head, else
 * architecture.hidden), unit-length rows, real tokens only.
 * Satisfies `TokenMatrix` of src/retrieval/late.ts structurally.
 */
export interface TokenVectors {
  count: number;
  dims: number;
  data: Float32Array;
}

/** "fixed" when the caller chose the depth; otherwise the route of the batch's hardest text. */
export type EmbedRoute = Route | "fixed";

export interface EmbedResult {
  /** One unit-length vector of `dims` components per input text, in input order. */
  embeddings: Float32Array[];
  /** Recursion steps actually run (less than requestedDepth after an early exit). */
  depth: number;
  requestedDepth: number;
  route: EmbedRoute;
  earlyExit: boolean;
  /** Only with `tokenVectors: true`: one matrix per input text, in input order (h of the last step run). */
  tokenVectors?: TokenVectors[];
  /** Only with `sparse`: each text's sparse terms, in input order (the head on h of the last step run). */
  sparse?: SparseTerms[];
  /** Only with `passages`: how many passages each text was embedded as, and whether its end was left out. */
  passages?: { count: number; truncated: boolean }[];
  /** Only with `passageVectors`: per text, one unit vector of `dims` components per passage, in passage order. */
  passageVectors?: Float32Array[][];
  timings: { tokenizeMs: number; inferenceMs: number };
}

/** Validated embed() options. */
interface Plan {
  dims: number;
  depth: number | "auto";
  /** Depth "auto": the router this call routes by (the manifest's, or its length rule; see EmbedOptions.ranking). */
  router: InputRouter;
  earlyExit: boolean;
  tokenVectors: boolean;
  sparse: Required<SparseOptions> | undefined;
  passages: PassageOptions | undefined;
  passageVectors: boolean;
}

/** Passages per model call when documents are embedded as passages: bounds the tensors of one call. */
const PASSAGE_BATCH = 32;

interface Batch {
  ids: BigInt64Array;
  mask: Float32Array;
  rows: number;
  length: number;
  tokenCounts: number[];
  /** Each row's ids as encoded (before an empty row becomes [UNK]): what the router reads. */
  encoded: number[][];
  /** Real (unpadded) tokens per row as fed to the graphs: tokenCounts with 0 raised to 1 for the [UNK] row. */
  rowLengths: number[];
}

export class TaesrEncoder {
  readonly manifest: ArtifactManifest;
  readonly variant: ArtifactVariant;
  private readonly ort: OrtLike;
  private readonly tokenizer: EncoderTokenizer;
  private readonly embedSession: OrtSessionLike;
  private readonly stepSession: OrtSessionLike;
  /** The sparse head's session, when the artifact has one. */
  private readonly sparseSession: OrtSessionLike | undefined;
  /** The late-interaction head's session, when the artifact has one and its graph was given. */
  private readonly lateSession: OrtSessionLike | undefined;
  /** Depth "auto": the manifest's router (router.ts createInputRouter). */
  private readonly router: InputRouter;
  /** Depth "auto" for a ranking the manifest's router was not labelled for: its length rule. */
  private readonly ruleRouter: InputRouter;
  /** Tail of the serialised embed() calls. */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    init: TaesrEncoderInit,
    manifest: ArtifactManifest,
    embedSession: OrtSessionLike,
    stepSession: OrtSessionLike,
    router: InputRouter,
    sparseSession: OrtSessionLike | undefined,
    lateSession: OrtSessionLike | undefined,
  ) {
    this.sparseSession = sparseSession;
    this.lateSession = lateSession;
    this.ort = init.ort;
    this.tokenizer = init.tokenizer;
    this.variant = init.variant;
    this.manifest = manifest;
    this.embedSession = embedSession;
    this.stepSession = stepSession;
    this.router = router;
    this.ruleRouter = router.kind === "rule" ? router : createInputRouter(lengthRuleOf(manifest.router));
  }

  /**
   * Validates the manifest, verifies the variant's files (unless `verify: false`), creates both ONNX sessions and checks
   * their input/output names against spec.ts GRAPH_IO.
   */
  static async create(init: TaesrEncoderInit): Promise<TaesrEncoder> {
    const manifest = parseManifest(init.manifest);
    // Throws for an unknown variant, and for int4 in an artifact exported before it existed.
    const { embed, step, sparse, late } = variantGraphs(manifest, init.variant);
    // Before any session exists: an artifact whose router cannot run with this tokenizer must not load at all.
    const router = createInputRouter(manifest.router, () => encoderVocab(init.tokenizer, manifest.architecture.vocabSize));
    if (init.verify !== false) {
      // The tokenizer file is not needed here (the caller built the tokenizer), so only the graphs are required.
      const given = variantFiles(manifest, init.variant).filter((p) => p in init.files);
      await verifyArtifactFiles(manifest, init.files, { paths: [...new Set([embed, step, ...given])] });
    }
    // The heads' graphs are optional at load: a caller that bundles only embed and step still gets dense embeddings.
    const sparseBytes = sparse ? init.files[sparse] : undefined;
    const lateBytes = late ? init.files[late] : undefined;
    const embedBytes = init.files[embed];
    const stepBytes = init.files[step];
    if (!embedBytes) throw new Error(`artifact file "${embed}" (${init.variant} embed graph) is missing`);
    if (!stepBytes) throw new Error(`artifact file "${step}" (${init.variant} step graph) is missing`);

    const created = await Promise.allSettled([
      init.ort.InferenceSession.create(embedBytes, init.sessionOptions),
      init.ort.InferenceSession.create(stepBytes, init.sessionOptions),
      ...(sparseBytes ? [init.ort.InferenceSession.create(sparseBytes, init.sessionOptions)] : []),
      ...(lateBytes ? [init.ort.InferenceSession.create(lateBytes, init.sessionOptions)] : []),
    ]);
    const sessions = created.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
    try {
      const [embedResult, stepResult, ...heads] = created;
      const sparseResult = sparseBytes ? heads.shift() : undefined;
      const lateResult = lateBytes ? heads.shift() : undefined;
      if (embedResult!.status === "rejected") throw new Error(`cannot load "${embed}": ${errorMessage(embedResult!.reason)}`);
      if (stepResult!.status === "rejected") throw new Error(`cannot load "${step}": ${errorMessage(stepResult!.reason)}`);
      checkGraphIo(embedResult!.value, "embed", embed);
      checkGraphIo(stepResult!.value, "step", step);
      if (sparseResult?.status === "rejected") throw new Error(`cannot load "${sparse}": ${errorMessage(sparseResult.reason)}`);
      if (sparseResult) checkGraphIo(sparseResult.value, "sparse", sparse!);
      if (lateResult?.status === "rejected") throw new Error(`cannot load "${late}": ${errorMessage(lateResult.reason)}`);
      if (lateResult) checkGraphIo(lateResult.value, "late", late!);
      return new TaesrEncoder(init, manifest, embedResult!.value, stepResult!.value, router, sparseResult?.value, lateResult?.value);
    } catch (err) {
      // Sessions hold wasm/native memory for the isolate's lifetime unless released; do not leak them on a bad artifact.
      await Promise.allSettled(sessions.map((s) => s.release()));
      throw err;
    }
  }

  get architecture(): TaesrArchitecture {
    return this.manifest.architecture;
  }

  /** Whether embed() can return sparse terms (the artifact has the head and its graph was given). */
  get hasSparse(): boolean {
    return this.sparseSession !== undefined;
  }

  /**
   * Where embed()'s token vectors come from: the trained late-interaction head (late.onnx, lateHead.dim components) or
   * the hidden-state stand-in (architecture.hidden components) of an artifact without the head. See the module doc.
   */
  get tokenVectorSource(): { kind: "late-head" | "hidden-state"; dims: number } {
    const late = this.architecture.lateHead;
    return late ? { kind: "late-head", dims: late.dim } : { kind: "hidden-state", dims: this.architecture.hidden };
  }

  /** Embeds `texts` (at least one). See {@link EmbedOptions} for defaults and the module doc for batching rules. */
  embed(texts: readonly string[], options: EmbedOptions = {}): Promise<EmbedResult> {
    // Validate before queueing, so a bad call fails at once (as a rejection) instead of waiting behind other calls.
    let plan: Plan;
    try {
      plan = this.plan(texts, options);
    } catch (err) {
      return Promise.reject(err);
    }
    const run = this.queue.then(() => (plan.passages ? this.runPassages(texts, plan, plan.passages) : this.run(texts, plan)));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * The route depth "auto" would give this batch (its hardest text's), without running the model: tokenizing and the
   * router are cheap, so a caller can decide where to embed (e.g. send hard queries to a bigger model) first.
   */
  route(texts: readonly string[], options: Pick<EmbedOptions, "ranking"> = {}): Route {
    return hardestRouteOf(this.tokenize(texts).encoded, this.plan(texts, { ranking: options.ranking }).router);
  }

  /** Releases every ONNX session (embed, step and the heads'); the encoder is unusable afterwards. */
  async release(): Promise<void> {
    await this.queue;
    await Promise.all([this.embedSession.release(), this.stepSession.release(), this.sparseSession?.release(), this.lateSession?.release()]);
  }

  private plan(texts: readonly string[], options: EmbedOptions): Plan {
    const arch = this.architecture;
    if (!Array.isArray(texts) || texts.length === 0) throw new TypeError("embed() needs a non-empty array of texts");
    texts.forEach((t, i) => {
      if (typeof t !== "string") throw new TypeError(`texts[${i}] must be a string, got ${typeof t}`);
    });
    const dims = options.dims ?? arch.outputDim;
    if (!arch.matryoshkaDims.includes(dims)) {
      throw new RangeError(`dims must be one of ${arch.matryoshkaDims.join(", ")} (the trained Matryoshka prefixes), got ${dims}`);
    }
    const depth = options.depth ?? "auto";
    if (depth !== "auto" && !(Number.isInteger(depth) && depth >= 1 && depth <= arch.depths.hard)) {
      throw new RangeError(`depth must be "auto" or an integer from 1 to ${arch.depths.hard}, got ${String(depth)}`);
    }
    const earlyExit = options.earlyExit ?? true;
    if (typeof earlyExit !== "boolean") throw new TypeError(`earlyExit must be a boolean, got ${typeof earlyExit}`);
    const ranking = options.ranking ?? "dense";
    if (ranking !== "dense" && ranking !== "hybrid") throw new RangeError(`ranking must be "dense" or "hybrid", got ${String(ranking)}`);
    const router = routerServes(this.manifest.router, ranking) ? this.router : this.ruleRouter;
    const tokenVectors = options.tokenVectors ?? false;
    if (typeof tokenVectors !== "boolean") throw new TypeError(`tokenVectors must be a boolean, got ${typeof tokenVectors}`);
    if (tokenVectors && arch.lateHead && !this.lateSession) {
      throw new Error(
        `token vectors of ${this.manifest.name}@${this.manifest.version} come from its late-interaction head, whose graph ` +
          `("${variantGraphs(this.manifest, this.variant).late}") was not given`,
      );
    }
    const passages = options.passages;
    if (passages !== undefined) {
      if (typeof passages !== "object" || passages === null) throw new TypeError(`passages must be {maxPieces, maxPassages}, got ${typeof passages}`);
      checkPassageOptions(passages, arch.maxLength);
    }
    const passageVectors = options.passageVectors ?? false;
    if (typeof passageVectors !== "boolean") throw new TypeError(`passageVectors must be a boolean, got ${typeof passageVectors}`);
    if (passageVectors && passages === undefined) throw new Error("passageVectors needs passages: the vectors are those of the passages a text is split into");
    return {
      dims,
      depth,
      router,
      earlyExit,
      tokenVectors,
      sparse: this.sparsePlan(options.sparse),
      passages: passages ? { ...passages } : undefined,
      passageVectors,
    };
  }

  private sparsePlan(option: EmbedOptions["sparse"]): Required<SparseOptions> | undefined {
    if (option === undefined || option === false) return undefined;
    if (option !== true && (typeof option !== "object" || option === null)) {
      throw new TypeError(`sparse must be a boolean or {threshold?, maxTerms?}, got ${typeof option}`);
    }
    if (!this.sparseSession) {
      throw new Error(
        this.architecture.sparseHead
          ? `sparse terms need the sparse graph ("${variantGraphs(this.manifest, this.variant).sparse}"), which was not given`
          : `${this.manifest.name}@${this.manifest.version} has no sparse head (architecture.sparseHead)`,
      );
    }
    const plan = { ...DEFAULT_SPARSE, ...(option === true ? {} : option) };
    if (!(Number.isFinite(plan.threshold) && plan.threshold >= 0)) throw new RangeError(`sparse.threshold must be a finite number ≥ 0, got ${plan.threshold}`);
    if (!(Number.isInteger(plan.maxTerms) && plan.maxTerms >= 1)) throw new RangeError(`sparse.maxTerms must be a positive integer, got ${plan.maxTerms}`);
    return plan;
  }

  private async run(texts: readonly string[], plan: Plan): Promise<EmbedResult> {
    const arch = this.architecture;
    const t0 = performance.now();
    const batch = this.tokenize(texts);
    const t1 = performance.now();

    let route: EmbedRoute = "fixed";
    let requestedDepth: number;
    if (plan.depth === "auto") {
      route = hardestRouteOf(batch.encoded, plan.router);
      requestedDepth = depthForRoute(route, arch.depths);
    } else {
      requestedDepth = plan.depth;
    }

    const { rows: B, length: T } = batch;
    const H = arch.hidden;
    const D = arch.outputDim;
    const [embedIn] = GRAPH_IO.embed.inputs;
    const [embedOut] = GRAPH_IO.embed.outputs;
    const [hIn, xIn, maskIn] = GRAPH_IO.step.inputs;
    const [hOut, eOut] = GRAPH_IO.step.outputs;

    const embedded = await this.embedSession.run({ [embedIn]: new this.ort.Tensor("int64", batch.ids, [B, T]) });
    const x = embedded[embedOut];
    expectDims(x, embedOut, [B, T, H]);
    const mask = new this.ort.Tensor("float32", batch.mask, [B, T]);
    let h: OrtTensorLike = new this.ort.Tensor("float32", new Float32Array(B * T * H), [B, T, H]);

    let embedding: Float32Array | undefined;
    let steps = 0;
    const epsilon = this.manifest.earlyExitEpsilon;
    while (steps < requestedDepth) {
      const out = await this.stepSession.run({ [hIn]: h, [xIn]: x!, [maskIn]: mask });
      steps++;
      expectDims(out[eOut], eOut, [B, D]);
      const next = readFloat32(out[eOut], eOut);
      const hNext = out[hOut];
      expectDims(hNext, hOut, [B, T, H]);
      // Early exit needs two embeddings to compare, so it can only trigger from step 2 on.
      const converged = plan.earlyExit && embedding !== undefined && maxCosineDistance(embedding, next, B, D) < epsilon;
      embedding = next;
      h = hNext!;
      if (converged) break;
    }
    const t2 = performance.now();
    let tokenVectors: TokenVectors[] | undefined;
    if (plan.tokenVectors && this.lateSession) {
      const [lateH, lateMask] = GRAPH_IO.late.inputs;
      const [lateOut] = GRAPH_IO.late.outputs;
      const dims = arch.lateHead!.dim;
      const out = await this.lateSession.run({ [lateH]: h, [lateMask]: mask });
      expectDims(out[lateOut], lateOut, [B, T, dims]);
      tokenVectors = realTokenRows(readFloat32(out[lateOut], lateOut), T, dims, batch.rowLengths);
    } else if (plan.tokenVectors) {
      tokenVectors = centredTokenRows(readFloat32(h, hOut), T, H, batch.rowLengths);
    }
    let sparse: SparseTerms[] | undefined;
    if (plan.sparse) {
      const [sparseH, sparseMask] = GRAPH_IO.sparse.inputs;
      const [sparseOut] = GRAPH_IO.sparse.outputs;
      const out = await this.sparseSession!.run({ [sparseH]: h, [sparseMask]: mask });
      expectDims(out[sparseOut], sparseOut, [B, arch.vocabSize]);
      sparse = topTerms(readFloat32(out[sparseOut], sparseOut), B, arch.vocabSize, plan.sparse);
    }

    return {
      embeddings: prefixNormalizeRows(embedding!, B, D, plan.dims),
      depth: steps,
      requestedDepth,
      route,
      earlyExit: steps < requestedDepth,
      ...(tokenVectors ? { tokenVectors } : {}),
      ...(sparse ? { sparse } : {}),
      timings: { tokenizeMs: t1 - t0, inferenceMs: t2 - t1 },
    };
  }

  /**
   * embed() with `passages`: every text split (passages.ts), the passages embedded PASSAGE_BATCH at a time with the
   * same plan, then pooled back to one result row per text (see EmbedOptions.passages).
   */
  private async runPassages(texts: readonly string[], plan: Plan, options: PassageOptions): Promise<EmbedResult> {
    const countPieces = (text: string) => this.tokenizer.encode(text, { maxLength: Number.MAX_SAFE_INTEGER }).length;
    const split = texts.map((text) => splitPassages(text, countPieces, options));
    const flat = split.flatMap((s, owner) => s.passages.map((text) => ({ owner, text })));
    // Pooled at the full width, then cut to `dims`: a 128-d vector stored by the edge and the 128-d view of a 384-d one
    // (the eval's) are then the same vector.
    const dims = this.architecture.outputDim;
    const passagePlan: Plan = { ...plan, dims, passages: undefined, passageVectors: false };
    const sums = texts.map(() => new Float32Array(dims));
    const passageVectors: Float32Array[][] | undefined = plan.passageVectors ? texts.map(() => []) : undefined;
    const tokenVectors: (TokenVectors | undefined)[] = texts.map(() => undefined);
    const sparse: SparseTerms[] | undefined = plan.sparse ? texts.map(() => ({})) : undefined;
    let depth = 0;
    let requestedDepth = 0;
    let route: EmbedRoute = "fixed";
    const timings = { tokenizeMs: 0, inferenceMs: 0 };
    for (let start = 0; start < flat.length; start += PASSAGE_BATCH) {
      const part = flat.slice(start, start + PASSAGE_BATCH);
      const result = await this.run(part.map((p) => p.text), passagePlan);
      depth = Math.max(depth, result.depth);
      requestedDepth = Math.max(requestedDepth, result.requestedDepth);
      if (result.route !== "fixed") route = route === "fixed" ? result.route : hardestRoute(route, result.route);
      timings.tokenizeMs += result.timings.tokenizeMs;
      timings.inferenceMs += result.timings.inferenceMs;
      part.forEach(({ owner }, i) => {
        const vector = result.embeddings[i]!;
        const sum = sums[owner]!;
        for (let k = 0; k < dims; k++) sum[k] = sum[k]! + vector[k]!;
        passageVectors?.[owner]!.push(prefixNormalizeRows(vector, 1, dims, plan.dims)[0]!);
        if (result.tokenVectors && tokenVectors[owner] === undefined) tokenVectors[owner] = result.tokenVectors[i];
        if (sparse && result.sparse) {
          const merged = sparse[owner]!;
          for (const [term, weight] of Object.entries(result.sparse[i]!)) {
            const id = Number(term);
            if (!(merged[id]! >= weight)) merged[id] = weight;
          }
        }
      });
    }
    const embeddings = sums.map((sum) => prefixNormalizeRows(sum, 1, dims, plan.dims)[0]!);
    return {
      embeddings,
      depth,
      requestedDepth,
      route,
      earlyExit: depth < requestedDepth,
      ...(plan.tokenVectors ? { tokenVectors: tokenVectors as TokenVectors[] } : {}),
      ...(sparse ? { sparse: sparse.map((terms) => cutTerms(terms, plan.sparse!)) } : {}),
      passages: split.map((s) => ({ count: s.passages.length, truncated: s.truncated })),
      ...(passageVectors ? { passageVectors } : {}),
      timings,
    };
  }

  /** Encodes and pads the batch to its longest row (at least 1, see the module doc on empty inputs). */
  private tokenize(texts: readonly string[]): Batch {
    const maxLength = this.architecture.maxLength;
    const encoded = texts.map((text) => this.tokenizer.encode(text, { maxLength }));
    const tokenCounts = encoded.map((ids) => ids.length);
    const rows = encoded.map((ids) => (ids.length === 0 ? [this.tokenizer.unkId] : ids));
    const length = rows.reduce((max, r) => Math.max(max, r.length), 1);
    const ids = new BigInt64Array(rows.length * length).fill(BigInt(this.tokenizer.padId));
    const mask = new Float32Array(rows.length * length);
    rows.forEach((row, r) => {
      for (let i = 0; i < row.length; i++) ids[r * length + i] = BigInt(row[i]!);
      mask.fill(1, r * length, r * length + row.length);
    });
    return { ids, mask, rows: rows.length, length, tokenCounts, encoded, rowLengths: rows.map((row) => row.length) };
  }
}

/** A batch runs at its hardest text's route (see the module doc on batching). */
function hardestRouteOf(encoded: readonly (readonly number[])[], router: InputRouter): Route {
  let hardest: Route = "easy";
  for (const ids of encoded) hardest = hardestRoute(hardest, router.route(ids));
  return hardest;
}

/** FastREM's vocabulary tables from the encoder's tokenizer, which must expose its tokens and match the architecture. */
function encoderVocab(tokenizer: EncoderTokenizer, vocabSize: number) {
  if (tokenizer.vocabSize === undefined || typeof tokenizer.idToToken !== "function") {
    throw new Error('the manifest\'s router is "fastrem", whose features read token strings: the tokenizer must provide vocabSize and idToToken (WordPieceTokenizer does)');
  }
  if (tokenizer.vocabSize !== vocabSize) {
    throw new Error(`the tokenizer has ${tokenizer.vocabSize} tokens, the architecture ${vocabSize}: the FastREM router was trained on the artifact's own tokenizer`);
  }
  return fastRemVocab({ vocabSize: tokenizer.vocabSize, idToToken: (id) => tokenizer.idToToken!(id) });
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function checkGraphIo(session: OrtSessionLike, graph: keyof typeof GRAPH_IO, path: string): void {
  const io = GRAPH_IO[graph];
  const missingIn = io.inputs.filter((n) => !session.inputNames.includes(n));
  const missingOut = io.outputs.filter((n) => !session.outputNames.includes(n));
  if (missingIn.length > 0 || missingOut.length > 0) {
    throw new Error(
      `${path} does not match the ${graph} graph contract (spec.ts GRAPH_IO): ` +
        `inputs [${session.inputNames.join(", ")}], outputs [${session.outputNames.join(", ")}]; ` +
        `expected inputs [${io.inputs.join(", ")}], outputs [${io.outputs.join(", ")}]`,
    );
  }
}

function expectDims(tensor: OrtTensorLike | undefined, name: string, expected: readonly number[]): void {
  if (tensor === undefined) throw new Error(`ONNX output "${name}" is missing`);
  if (tensor.dims.length !== expected.length || tensor.dims.some((d, i) => d !== expected[i])) {
    throw new Error(`ONNX output "${name}" has shape [${tensor.dims.join(", ")}], expected [${expected.join(", ")}]`);
  }
}

/**
 * Per row of a row-major [rows, vocab] weight matrix: the entries above `threshold`, the largest `maxTerms` of them
 * (ties to the smaller id), as {id: weight}.
 */
export function topTerms(weights: Float32Array, rows: number, vocab: number, options: Required<SparseOptions>): SparseTerms[] {
  const out: SparseTerms[] = [];
  for (let r = 0; r < rows; r++) {
    const kept: number[] = [];
    for (let v = 0; v < vocab; v++) if (weights[r * vocab + v]! > options.threshold) kept.push(v);
    kept.sort((a, b) => weights[r * vocab + b]! - weights[r * vocab + a]! || a - b);
    const terms: SparseTerms = {};
    for (const v of kept.slice(0, options.maxTerms)) terms[v] = weights[r * vocab + v]!;
    out.push(terms);
  }
  return out;
}

/** One text's terms cut like topTerms: weights above the threshold, the heaviest maxTerms (ties to the smaller id). */
export function cutTerms(terms: SparseTerms, options: Required<SparseOptions>): SparseTerms {
  const kept = Object.entries(terms)
    .map(([id, weight]) => [Number(id), weight] as const)
    .filter(([, weight]) => weight > options.threshold)
    .sort((a, b) => b[1] - a[1] || a[0] - b[0])
    .slice(0, options.maxTerms);
  return Object.fromEntries(kept);
}

/** max over rows of 1 − cos(a_r, b_r) for two row-major [rows, dims] matrices; a zero row counts as unconverged. */
export function maxCosineDistance(a: Float32Array, b: Float32Array, rows: number, dims: number): number {
  let worst = 0;
  for (let r = 0; r < rows; r++) {
    let dot = 0;
    let na = 0;
    let nb = 0;
    for (let i = r * dims, end = i + dims; i < end; i++) {
      const x = a[i]!;
      const y = b[i]!;
      dot += x * y;
      na += x * x;
      nb += y * y;
    }
    const distance = na > 0 && nb > 0 ? 1 - dot / Math.sqrt(na * nb) : Number.POSITIVE_INFINITY;
    if (distance > worst) worst = distance;
  }
  return worst;
}

/**
 * Per batch row b, its first rowLengths[b] token rows of the hidden states [B, T, H], each centred (minus its mean over
 * the H components) and scaled to unit length: LayerNorm without γ/β followed by L2 normalisation
 * (which the LayerNorm's 1/σ scaling does not change). A row that is constant across H centres to zero and stays zero.
 * Accumulates in float64; the result is a fresh array per text, not a view of the engine's output buffer.
 */
export function centredTokenRows(hidden: Float32Array, length: number, dims: number, rowLengths: readonly number[]): TokenVectors[] {
  if (hidden.length !== rowLengths.length * length * dims) {
    throw new RangeError(`hidden states have ${hidden.length} values, expected ${rowLengths.length}·${length}·${dims}`);
  }
  return rowLengths.map((count, b) => {
    if (!Number.isInteger(count) || count < 0 || count > length) {
      throw new RangeError(`row ${b} has ${count} tokens, expected an integer from 0 to the padded length ${length}`);
    }
    const data = new Float32Array(count * dims);
    for (let t = 0; t < count; t++) {
      const src = (b * length + t) * dims;
      let sum = 0;
      for (let i = 0; i < dims; i++) sum += hidden[src + i]!;
      const mean = sum / dims;
      let sumSquares = 0;
      for (let i = 0; i < dims; i++) {
        const c = hidden[src + i]! - mean;
        sumSquares += c * c;
      }
      const scale = sumSquares > 0 ? 1 / Math.sqrt(sumSquares) : 0;
      for (let i = 0, dst = t * dims; i < dims; i++) data[dst + i] = (hidden[src + i]! - mean) * scale;
    }
    return { count, dims, data };
  });
}

/**
 * Per batch row b, its first rowLengths[b] rows of a [B, length, dims] matrix of token vectors that are unit length
 * already (late.onnx's output), copied out of the engine's buffer.
 */
export function realTokenRows(vectors: Float32Array, length: number, dims: number, rowLengths: readonly number[]): TokenVectors[] {
  if (vectors.length !== rowLengths.length * length * dims) {
    throw new RangeError(`token vectors have ${vectors.length} values, expected ${rowLengths.length}·${length}·${dims}`);
  }
  return rowLengths.map((count, b) => {
    if (!Number.isInteger(count) || count < 0 || count > length) {
      throw new RangeError(`row ${b} has ${count} tokens, expected an integer from 0 to the padded length ${length}`);
    }
    const start = b * length * dims;
    return { count, dims, data: vectors.slice(start, start + count * dims) };
  });
}

/**
 * Matryoshka: the first `prefix` components of each row, rescaled to unit length (a prefix of a unit vector is not unit
 * length, and each prefix was trained as an embedding of its own). A zero row stays zero.
 */
export function prefixNormalizeRows(matrix: Float32Array, rows: number, dims: number, prefix: number): Float32Array[] {
  const out: Float32Array[] = [];
  for (let r = 0; r < rows; r++) {
    const v = matrix.slice(r * dims, r * dims + prefix);
    let sumSquares = 0;
    for (const x of v) sumSquares += x * x;
    if (sumSquares > 0) {
      const scale = 1 / Math.sqrt(sumSquares);
      for (let i = 0; i < prefix; i++) v[i]! *= scale;
    }
    out.push(v);
  }
  return out;
}
