/**
 * onnxruntime-node as the platform-neutral {@link OrtLike}, for Node: the GPU origin, tests, evaluation and benchmarks.
 *
 * Sessions default to one intra-op and one inter-op thread so Node figures compare like-for-like with the
 * single-threaded wasm engine in workerd (DESIGN.md measures "1 thread each engine"); pass options to override.
 */
import * as ort from "onnxruntime-node";
import type { OrtLike, OrtSessionOptions } from "../../../src/model/ort-seam.js";

const DEFAULT_SESSION_OPTIONS: OrtSessionOptions = {
  executionProviders: ["cpu"],
  graphOptimizationLevel: "all",
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
};

export const ortNode: OrtLike = {
  Tensor: ort.Tensor,
  InferenceSession: {
    create: (model: Uint8Array, options?: OrtSessionOptions) =>
      ort.InferenceSession.create(model, { ...DEFAULT_SESSION_OPTIONS, ...options }),
  },
};
