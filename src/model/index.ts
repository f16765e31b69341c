/**
 * The platform-neutral TAESR model runtime: the architecture contract, manifest validation and integrity checks, the
 * rule router, the engine seam and the adaptive-depth encoder. No `node:` imports, no Workers globals: a platform
 * adapter supplies the ONNX engine as an {@link OrtLike}.
 *
 * @module
 */
export * from "./spec.js";
export type { OrtLike, OrtSessionLike, OrtSessionOptions, OrtTensorConstructor, OrtTensorElementType, OrtTensorLike } from "./ort-seam.js";
export { readFloat32 } from "./ort-seam.js";
export { parseManifest, sha256Hex, variantFiles, verifyArtifactFiles, type ArtifactVariant, type VerifyOptions } from "./manifest.js";
export { ROUTES, depthForRoute, hardestRoute, routeByTokenCount, type Route } from "./router.js";
export {
  TaesrEncoder,
  centredTokenRows,
  maxCosineDistance,
  prefixNormalizeRows,
  type EmbedOptions,
  type EmbedResult,
  type EmbedRoute,
  type EncoderTokenizer,
  type TaesrEncoderInit,
  type TokenVectors,
} from "./encoder.js";
export { queryFlops, type QueryFlops } from "./flops.js";
