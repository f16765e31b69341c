/**
 * The platform-neutral TAESR model runtime: the architecture contract, manifest validation and integrity checks, the
 * rule router, the engine seam and the adaptive-depth encoder. No `node:` imports, no Workers globals: a platform
 * adapter supplies the ONNX engine as an {@link OrtLike}.
 *
 * @module
 */
export * from "./spec.js";
export { keepHeldOut, MIN_HELD_OUT_QUERIES, recordedHeldOutQueries, trainedOnTheseQueries, untrainedQueries, type AdaptationFacts } from "./adaptation.js";
export type { OrtLike, OrtSessionLike, OrtSessionOptions, OrtTensorConstructor, OrtTensorElementType, OrtTensorLike } from "./ort-seam.js";
export { readFloat32 } from "./ort-seam.js";
export {
  ARTIFACT_VARIANTS,
  edgeVariantFor,
  parseManifest,
  sha256Hex,
  variantFiles,
  variantGraphs,
  verifyArtifactFiles,
  type ArtifactVariant,
  type VerifyOptions,
} from "./manifest.js";
export {
  ROUTES,
  createInputRouter,
  depthForRoute,
  hardestRoute,
  lengthRuleOf,
  routeByTokenCount,
  routerServes,
  type EmbeddingRanking,
  type InputRouter,
  type Route,
} from "./router.js";
export {
  FASTREM_CLASSES,
  FASTREM_FEATURES,
  FastRemRouter,
  classProbabilities,
  cumulativeRoute,
  fastRemFeatureVector,
  fastRemFeatures,
  fastRemRouterSchema,
  fastRemVocab,
  isSingleCharPiece,
  parseFastRemRouter,
  routerRuleSchema,
  softmax,
  type FastRemFeatureName,
  type FastRemVocab,
  type SoftmaxModel,
  type VocabSource,
} from "./fastrem.js";
export {
  DEFAULT_SPARSE,
  TaesrEncoder,
  centredTokenRows,
  realTokenRows,
  maxCosineDistance,
  prefixNormalizeRows,
  type EmbedOptions,
  type EmbedResult,
  type EmbedRoute,
  type EncoderTokenizer,
  type SparseOptions,
  type SparseTerms,
  type TaesrEncoderInit,
  type TokenVectors,
} from "./encoder.js";
export {
  RunningStats,
  SCALAR_FEATURES,
  assessDrift,
  baselineFromFeatures,
  baselineMoments,
  calibrateThreshold,
  driftAccumulator,
  driftScore,
  momentsOf,
  queryFeatures,
  tokenCoverage,
  type BaselineInit,
  type BaselineMoments,
  type Calibration,
  type CalibrationOptions,
  type DriftAssessment,
  type DriftScore,
  type RunningStatsJSON,
  type TokenCoverage,
} from "./drift.js";
export { queryFlops, type QueryFlops } from "./flops.js";
export { checkPassageOptions, splitPassages, type PassageOptions, type SplitPassages } from "./passages.js";
export { initializerToFloat32, readOnnxInitializers, weightsFromArtifactGraphs, type OnnxInitializer } from "./onnx-weights.js";
export {
  BLOCK_ARCHITECTURES,
  SUBSPACE_NAMES,
  TaesrConfigError,
  architectureOf,
  parseTaesrConfig,
  routerRuleOf,
  taesrConfigFromJSON,
  taesrConfigSchema,
  taesrConfigToJSON,
  type BlockArchitecture,
  type SubspaceName,
  type TAESRConfig,
  type TAESRConfigInput,
} from "./taesr-config.js";
export {
  TAESRModel,
  matryoshkaSlice,
  subspaceShares,
  subspaceSlice,
  type SubspaceShares,
  type TAESRForwardOptions,
  type TAESRInputs,
  type TAESRModelOptions,
  type TAESROutput,
  type TAESRWeights,
} from "./taesr-model.js";
