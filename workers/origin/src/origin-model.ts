/**
 * Loads the origin's model: an artifact directory's fp32 graphs (the full 384-d model; the int8/int4 variants are the
 * edge's size trade-off) as a {@link TaesrEncoder} on onnxruntime-node, on the CUDA execution provider when it is
 * available and asked for, else the CPU.
 *
 * Provider choice: "cuda" requires CUDA and fails to load without it; "auto" tries CUDA and falls back to the CPU with
 * the reason kept (onnxruntime-node refuses a session whose CUDA provider library it cannot load — on a machine
 * without the CUDA binaries: "Failed to load shared library"), so the origin still serves, and says on /health why it
 * is on the CPU.
 *
 * @module
 * @example
 *   const model = await loadOriginModel({ dir: await defaultArtifactDir(), provider: "auto" });
 *   const { embeddings } = await model.embed(["hello"], { dims: 384, depth: 6, earlyExit: false });
 */
import { availableParallelism } from "node:os";
import { TaesrEncoder, type OrtSessionOptions, type SparseTerms, type TokenVectors } from "../../../src/model/index.js";
import { WordPieceTokenizer } from "../../../src/tokenizer/index.js";
import { readArtifactDir } from "./artifact-files.js";
import type { OriginModelInfo, OriginProvider } from "./contract.js";
import { ortNode } from "./ort-node.js";

export type ProviderChoice = OriginProvider | "auto";

/** The variant the origin serves: unquantised, the model at its full quality. */
export const ORIGIN_VARIANT = "fp32" as const;

export interface OriginEmbedOptions {
  dims: number;
  depth: number;
  earlyExit: boolean;
  /** Also the late-interaction head's token vectors (only for a model with the head). */
  tokenVectors: boolean;
  /** Also the sparse head's terms, cut with these options (only for a model with the head). */
  sparse?: { threshold: number; maxTerms: number };
  /** Embed each text as these passages pooled into one vector (src/model/passages.ts). */
  passages?: { maxPieces: number; maxPassages: number };
}

/** What the origin's routes and batcher need from a model; tests wrap a real one to hold its batches. */
export interface OriginModel {
  readonly info: OriginModelInfo;
  readonly provider: OriginProvider;
  /** Why "auto" ended on the CPU; undefined when it did not fall back. */
  readonly providerFallback: string | undefined;
  /** The Matryoshka widths a request may ask for, the widest being the model's full output. */
  readonly dims: readonly number[];
  /** The deepest recursion, and the default depth of a request. */
  readonly maxDepth: number;
  /** Word pieces the model reads per text: the most a passage may hold. */
  readonly maxLength: number;
  /** Whether the model has the late-interaction head, so a request may ask for token vectors. */
  readonly hasLateHead: boolean;
  /** Whether the model has the sparse head (and its graph loaded), so a request may ask for sparse terms. */
  readonly hasSparseHead: boolean;
  embed(texts: string[], options: OriginEmbedOptions): Promise<OriginEmbedResult>;
  release(): Promise<void>;
}

export interface OriginEmbedResult {
  embeddings: Float32Array[];
  depth: number;
  tokenVectors?: TokenVectors[];
  sparse?: SparseTerms[];
}

export interface LoadOriginModelOptions {
  dir: string;
  provider: ProviderChoice;
  /** ONNX Runtime intra-op threads on the CPU provider (default: every core). */
  threads?: number;
  /** Where "auto" reports falling back (default console.warn). */
  log?: (message: string) => void;
}

export async function loadOriginModel(options: LoadOriginModelOptions): Promise<OriginModel> {
  const artifact = await readArtifactDir(options.dir, [ORIGIN_VARIANT]);
  const tokenizer = WordPieceTokenizer.fromJSON(artifact.tokenizerJson);
  const create = (sessionOptions: OrtSessionOptions) =>
    TaesrEncoder.create({ ort: ortNode, manifest: artifact.manifest, files: artifact.files, variant: ORIGIN_VARIANT, tokenizer, sessionOptions });
  const cpuOptions: OrtSessionOptions = {
    executionProviders: ["cpu"],
    intraOpNumThreads: options.threads ?? availableParallelism(),
    interOpNumThreads: 1,
  };
  // "cpu" listed after "cuda": nodes the CUDA provider cannot run stay on the CPU inside the same session.
  const cudaOptions: OrtSessionOptions = { ...cpuOptions, executionProviders: ["cuda", "cpu"] };

  let encoder: TaesrEncoder;
  let provider: OriginProvider;
  let providerFallback: string | undefined;
  if (options.provider === "cpu") {
    encoder = await create(cpuOptions);
    provider = "cpu";
  } else if (options.provider === "cuda") {
    encoder = await create(cudaOptions).catch((error: unknown) => {
      throw new Error(`the CUDA execution provider is not available (${firstLine(error)}); see README → GPU origin, or use --provider auto|cpu`);
    });
    provider = "cuda";
  } else {
    try {
      // Without the CUDA binaries onnxruntime also prints its own error (from its environment logger, which session
      // options do not silence) before throwing; the line below says what it means.
      encoder = await create(cudaOptions);
      provider = "cuda";
    } catch (error) {
      providerFallback = `CUDA execution provider unavailable: ${firstLine(error)}`;
      (options.log ?? console.warn)(`origin: ${providerFallback}; running on the CPU`);
      encoder = await create(cpuOptions);
      provider = "cpu";
    }
  }

  const { manifest } = encoder;
  return {
    info: { name: manifest.name, version: manifest.version, variant: ORIGIN_VARIANT },
    provider,
    providerFallback,
    dims: manifest.architecture.matryoshkaDims,
    maxDepth: manifest.architecture.depths.hard,
    maxLength: manifest.architecture.maxLength,
    hasLateHead: manifest.architecture.lateHead !== undefined,
    hasSparseHead: encoder.hasSparse,
    async embed(texts, embedOptions) {
      const { sparse, passages, ...rest } = embedOptions;
      const result = await encoder.embed(texts, { ...rest, ...(sparse ? { sparse: { ...sparse } } : {}), ...(passages ? { passages: { ...passages } } : {}) });
      return {
        embeddings: result.embeddings,
        depth: result.depth,
        ...(result.tokenVectors ? { tokenVectors: result.tokenVectors } : {}),
        ...(result.sparse ? { sparse: result.sparse } : {}),
      };
    },
    release: () => encoder.release(),
  };
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0]!.trim();
}
