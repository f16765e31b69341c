/**
 * The origin's wire contract, `POST /v1/embed`: the request the origin validates and the response the edge's origin
 * client validates. Platform-neutral (zod only) so both sides import the one definition.
 *
 * @module
 * @example
 *   // request:  {"input": ["how do glaciers form"], "dims": 128}
 *   // response: {"embeddings": [[…128 numbers]], "dims": 128, "depth": 6,
 *   //            "model": {"name": "taesr-edge-small", "version": "0.2.0", "variant": "fp32"}, "provider": "cpu"}
 */
import { z } from "zod";

/** Most texts per request: the edge's own /v1/embed limit, so whatever the edge accepts it can forward. */
export const MAX_INPUTS = 64;
/** Longest text in characters; the tokenizer truncates at the model's maxLength anyway, this bounds the work before it. */
export const MAX_INPUT_CHARS = 8000;
/** Most sparse terms a request may ask to keep per text (a vocabulary's worth would be a dense vector in disguise). */
export const MAX_SPARSE_TERMS = 1024;
/** Most passages a request may ask to split a text into (src/model/passages.ts checkPassageOptions' bound). */
export const MAX_PASSAGES = 64;

/**
 * dims and depth are checked against the loaded model after parsing (its Matryoshka widths, its deepest step count),
 * so the schema only fixes their types.
 */
export const originEmbedRequestSchema = z.strictObject({
  input: z.array(z.string().max(MAX_INPUT_CHARS, `each input must be at most ${MAX_INPUT_CHARS} characters`)).min(1).max(MAX_INPUTS),
  dims: z.number().int().positive().optional(),
  depth: z.number().int().positive().optional(),
  /** Stop before `depth` once the embeddings converge. Off by default: the origin exists to run the full depth. */
  earlyExit: z.boolean().optional(),
  /** Also return each text's token vectors from the late-interaction head (documents the edge indexes for rerank),
   * from the same pass as its embedding. A 400 when the origin's model has no head. */
  tokenVectors: z.boolean().optional(),
  /** Also return each text's learned sparse terms from the SPLADE-style head (documents the edge indexes for its sparse
   * list), from the same pass, cut like the edge cuts them: weights above `threshold`, at most `maxTerms` per text.
   * A 400 when the origin's model has no head. */
  sparse: z
    .strictObject({
      threshold: z.number().min(0).finite(),
      maxTerms: z.number().int().positive().max(MAX_SPARSE_TERMS, `maxTerms must be at most ${MAX_SPARSE_TERMS}`),
    })
    .optional(),
  /** Embed each text as passages of at most `maxPieces` word pieces (at most `maxPassages` of them) pooled into one
   * vector, as the edge indexes documents for a model that chose them (manifest retrieval.documentPassages). maxPieces
   * is checked against the model's maxLength after parsing. */
  passages: z
    .strictObject({
      maxPieces: z.number().int().min(16),
      maxPassages: z.number().int().min(1).max(MAX_PASSAGES, `maxPassages must be at most ${MAX_PASSAGES}`),
    })
    .optional(),
});
export type OriginEmbedRequest = z.infer<typeof originEmbedRequestSchema>;

export const originProviderSchema = z.enum(["cpu", "cuda"]);
export type OriginProvider = z.infer<typeof originProviderSchema>;

export const originModelInfoSchema = z.object({ name: z.string(), version: z.string(), variant: z.string() });
export type OriginModelInfo = z.infer<typeof originModelInfoSchema>;

/** One text's token vectors: row-major [count, dims], unit-length rows, real tokens only (src/model/encoder.ts). */
export const originTokenVectorsSchema = z.object({
  count: z.number().int().nonnegative(),
  dims: z.number().int().positive(),
  data: z.array(z.number()),
});

/** One text's sparse terms: [vocabulary id, weight] pairs, heaviest first. */
export const originSparseTermsSchema = z.array(z.tuple([z.number().int().nonnegative(), z.number()]));

export const originEmbedResponseSchema = z.object({
  embeddings: z.array(z.array(z.number())),
  /** Present when the request asked for token vectors: one matrix per text, in input order. */
  tokenVectors: z.array(originTokenVectorsSchema).optional(),
  /** Present when the request asked for sparse terms: one list per text, in input order. */
  sparse: z.array(originSparseTermsSchema).optional(),
  dims: z.number().int().positive(),
  /** Recursion steps run (fewer than asked only when the request allowed early exit). */
  depth: z.number().int().positive(),
  model: originModelInfoSchema,
  provider: originProviderSchema,
});
export type OriginEmbedResponse = z.infer<typeof originEmbedResponseSchema>;
