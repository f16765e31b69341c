/**
 * The one seam between TAESR's model runtime and an ONNX inference engine.
 *
 * `onnxruntime-web` (workerd, browsers) and `onnxruntime-node` (Node, the origin) both satisfy {@link OrtLike}
 * structurally, so the runtime in `src/model/` never imports either package: a platform adapter
 * (`workers/edge/src/ort-workerd.ts`, `test/support/ort-node.ts`, the origin's own) configures its engine and hands it in.
 * The interface is deliberately the smallest subset the runtime uses; widening it widens every adapter.
 */

/** Element types the TAESR graphs exchange (spec.ts GRAPH_IO: int64 ids in, float32 everywhere else). */
export type OrtTensorElementType = "float32" | "int64";

/** A tensor as both engines return it. `data` is checked at run time (see {@link readFloat32}) instead of trusted. */
export interface OrtTensorLike {
  readonly type: string;
  readonly dims: readonly number[];
  readonly data: unknown;
}

/** The `Tensor` constructor overloads the runtime calls. */
export interface OrtTensorConstructor {
  new (type: "float32", data: Float32Array, dims: readonly number[]): OrtTensorLike;
  new (type: "int64", data: BigInt64Array, dims: readonly number[]): OrtTensorLike;
}

/** The session options the runtime may set; both engines accept them. Anything engine-specific belongs in the adapter. */
export interface OrtSessionOptions {
  executionProviders?: string[];
  graphOptimizationLevel?: "disabled" | "basic" | "extended" | "all";
  intraOpNumThreads?: number;
  interOpNumThreads?: number;
  logSeverityLevel?: 0 | 1 | 2 | 3 | 4;
}

export interface OrtSessionLike {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, OrtTensorLike>): Promise<Record<string, OrtTensorLike>>;
  release(): Promise<void>;
}

/** What the model runtime needs from an engine: build tensors, create sessions from ONNX bytes, run them. */
export interface OrtLike {
  readonly Tensor: OrtTensorConstructor;
  readonly InferenceSession: {
    create(model: Uint8Array, options?: OrtSessionOptions): Promise<OrtSessionLike>;
  };
}

/** Returns a tensor's float32 payload, or throws naming the tensor (an engine returning another type is a graph bug). */
export function readFloat32(tensor: OrtTensorLike | undefined, name: string): Float32Array {
  if (tensor === undefined) throw new Error(`ONNX output "${name}" is missing`);
  if (!(tensor.data instanceof Float32Array)) {
    throw new Error(`ONNX output "${name}" should be float32, got ${tensor.type}`);
  }
  return tensor.data;
}
