/**
 * Who embeds documents for the index: the edge's own model, or the GPU origin first with the edge's model as fallback.
 *
 * Both produce vectors of one model version in one space, so the index (which compares a query only with documents of
 * its model version) can mix them: the origin runs the fp32 weights at full depth, the edge the int8 weights at the
 * router's depth — the same model trained so that every depth and both weight variants embed into one space. The
 * origin's answer is used only when it names the edge's model (name and version); anything else would store vectors
 * that the edge's queries cannot be compared with, so that batch is embedded locally instead.
 *
 * Which one embedded a batch is returned (`source`) so callers can count and log it. The stored row does not record
 * it: comparability is decided by the model version, which is stored.
 *
 * A document's token vectors (late-interaction rerank) and learned sparse terms come from the same model call as its
 * dense vector: the origin returns them from its pass when asked (its fp32 heads), the edge from its own, cut the same
 * way (the edge's SparseInForce travels with the request).
 *
 * @module
 * @example
 *   const embedder = origin ? originFirstEmbedder(origin, model) : localEmbedder(model);
 *   const { vectors, source } = await embedder.embed(texts, { dims: 128, depth: "auto" });
 */
import { MAX_INPUT_CHARS } from "../../origin/src/contract.js";
import type { PassageOptions } from "../../../src/model/index.js";
import type { SparseVector, TokenMatrix } from "../../../src/retrieval/index.js";
import type { EdgeModel, SparseInForce } from "./contracts.js";
import { OriginUnavailableError, type OriginClient } from "./origin-client.js";

export type EmbeddingSource = "origin" | "local";

export interface DocumentEmbedding {
  /** One unit vector of `dims` components per text, in input order. */
  vectors: Float32Array[];
  /** Per text, when asked for: the late-interaction head's token vectors. */
  tokenVectors?: TokenMatrix[];
  /** Per text, when asked for: the sparse head's term weights. */
  sparse?: SparseVector[];
  source: EmbeddingSource;
}

export interface DocumentEmbedOptions {
  dims: number;
  /**
   * A fixed depth (the model's chosen document depth: the origin runs it too), or "auto": the edge model's router
   * decides, and the origin runs its full depth (what the router gives every document-length input).
   */
  depth: number | "auto";
  /** Also return each text's late-interaction token vectors. */
  tokenVectors?: boolean;
  /** Also return each text's sparse terms, cut with these options. */
  sparse?: SparseInForce;
  /**
   * Embed each text as these passages pooled into one vector (the model's `documentPassages`); absent → its first
   * maxLength word pieces. Texts are cut to the origin's MAX_INPUT_CHARS on both paths, so both read the same text.
   */
  passages?: PassageOptions;
}

export interface DocumentEmbedder {
  embed(texts: readonly string[], options: DocumentEmbedOptions): Promise<DocumentEmbedding>;
}

/** The part of {@link OriginClient} document embedding uses (a test double implements just this). */
export type OriginEmbedApi = Pick<OriginClient, "embed">;

/**
 * A document as the origin accepts it. Whole, the model reads at most maxLength (128) word pieces, far fewer than
 * MAX_INPUT_CHARS characters make, so the cut changes nothing it sees; as passages it reads up to maxPassages ×
 * maxPieces, which a document past MAX_INPUT_CHARS can exceed, so the edge cuts its own input the same way.
 */
function cutToOriginLimit(text: string): string {
  return text.slice(0, MAX_INPUT_CHARS);
}

export function localEmbedder(model: EdgeModel): DocumentEmbedder {
  return {
    async embed(texts, options) {
      const tokenVectors = options.tokenVectors === true;
      const sparse = options.sparse;
      const passages = options.passages;
      const result = await model.embedder.embed(passages ? texts.map(cutToOriginLimit) : texts, {
        dims: options.dims,
        depth: options.depth,
        ...(tokenVectors ? { tokenVectors } : {}),
        ...(sparse ? { sparse: { ...sparse } } : {}),
        ...(passages ? { passages: { ...passages } } : {}),
      });
      if (tokenVectors && result.tokenVectors?.length !== texts.length) throw new Error("the embedder returned no token vectors for the documents");
      if (sparse && result.sparse?.length !== texts.length) throw new Error("the embedder returned no sparse terms for the documents");
      return {
        vectors: result.embeddings,
        ...(tokenVectors ? { tokenVectors: result.tokenVectors } : {}),
        ...(sparse ? { sparse: result.sparse } : {}),
        source: "local",
      };
    },
  };
}

/**
 * The origin for every batch it can take, the edge model for the rest. Only {@link OriginUnavailableError} falls back:
 * anything else is a bug and propagates.
 */
export function originFirstEmbedder(origin: OriginEmbedApi, model: EdgeModel, warn: (message: string) => void = console.warn): DocumentEmbedder {
  const local = localEmbedder(model);
  return {
    async embed(texts, options) {
      let answer;
      try {
        answer = await origin.embed(texts.map(cutToOriginLimit), {
          dims: options.dims,
          ...(typeof options.depth === "number" ? { depth: options.depth } : {}),
          ...(options.tokenVectors ? { tokenVectors: true } : {}),
          ...(options.sparse ? { sparse: { threshold: options.sparse.threshold, maxTerms: options.sparse.maxTerms } } : {}),
          ...(options.passages ? { passages: { maxPieces: options.passages.maxPieces, maxPassages: options.passages.maxPassages } } : {}),
        });
      } catch (error) {
        if (!(error instanceof OriginUnavailableError)) throw error;
        warn(`origin unavailable (${error.reason}): embedding ${texts.length} documents with the edge model`);
        return local.embed(texts, options);
      }
      const { name, version } = model.info;
      if (answer.model.name !== name || answer.model.version !== version) {
        warn(`origin serves ${answer.model.name}@${answer.model.version}, the edge ${name}@${version}: embedding ${texts.length} documents with the edge model`);
        return local.embed(texts, options);
      }
      return {
        vectors: answer.embeddings,
        ...(options.tokenVectors ? { tokenVectors: answer.tokenVectors! } : {}),
        ...(options.sparse ? { sparse: answer.sparse! } : {}),
        source: "origin",
      };
    },
  };
}
