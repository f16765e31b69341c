/**
 * POST /v1/embeddings: OpenAI's embeddings API over the served model, so the `openai` client, LangChain and LlamaIndex
 * work unchanged once pointed at this base URL. The vectors are /v1/embed's — the same `embed()`, depth "auto" (the
 * model's router) — in OpenAI's response shape.
 *
 * - `model` must name the served model: the stable alias "taesr-edge" (survives model upgrades), the model's name
 *   (e.g. "taesr-edge-small"), or name@version (pins one version: after an upgrade it is refused, so vectors from two
 *   models are never mixed unnoticed). Anything else is a 404 `model_not_found` listing the accepted names, as OpenAI
 *   answers. The response's `model` is always name@version, so a client can record which model made its vectors.
 * - `dimensions` defaults to the model's full width (384), as OpenAI's does; 64/128/256 are trained Matryoshka
 *   prefixes, renormalised. Search compares 128-d vectors, so ask for 128 to match /v1/search's space.
 * - `usage.prompt_tokens` counts the input's tokens with the model's own WordPiece tokenizer. The encoder reads at most
 *   the first `maxLength` tokens of each text (128 for the bundled model) and ignores the rest, as /v1/embed does; the
 *   count is of the whole input, as OpenAI counts it.
 *
 * @module
 */
import type { AppDeps, ModelInfo } from "./contracts.js";
import { ApiError } from "./errors.js";
import type { EmbedRequest, EmbeddingsRequest } from "./schemas.js";
import { embed } from "./search-service.js";
import { float32ToBase64 } from "./vector-encoding.js";

/** The model name that always means "whatever model this deployment serves". */
export const MODEL_ALIAS = "taesr-edge";

export interface EmbeddingsResponse {
  object: "list";
  data: { object: "embedding"; index: number; embedding: number[] | string }[];
  model: string;
  usage: { prompt_tokens: number; total_tokens: number };
}

/** The `model` values a request may name for the served model, most stable first. */
export function acceptedModelNames(info: ModelInfo): string[] {
  return [MODEL_ALIAS, info.name, `${info.name}@${info.version}`];
}

export async function createEmbeddings(deps: AppDeps, request: EmbeddingsRequest): Promise<EmbeddingsResponse> {
  const model = await deps.loadModel();
  const accepted = acceptedModelNames(model.info);
  if (!accepted.includes(request.model)) {
    const message = `the model "${request.model}" does not exist on this server; use one of ${accepted.map((name) => `"${name}"`).join(", ")}`;
    throw new ApiError(404, "model_not_found", message, [{ path: "model", message }]);
  }
  // The default is the model's own width; the embedder refuses a width the model was not trained for.
  const dims = (request.dimensions ?? model.info.dims) as EmbedRequest["dims"];
  const { embeddings } = await embed(deps, { input: request.input, dims, depth: "auto" });
  const base64 = request.encoding_format === "base64";
  const tokens = request.input.reduce((sum, text) => sum + model.tokenizer.tokenize(text).length, 0);
  return {
    object: "list",
    data: embeddings.map((vector, index) => ({ object: "embedding", index, embedding: base64 ? float32ToBase64(vector) : vector })),
    model: `${model.info.name}@${model.info.version}`,
    usage: { prompt_tokens: tokens, total_tokens: tokens },
  };
}
