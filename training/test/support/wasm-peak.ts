/**
 * Peak tensor memory of a computation on the wasm backend, two ways. tf.profile's peakBytes is the largest
 * tf.memory().numBytes seen after any kernel (customGrad ops and the kernels inside them included); tfjs 4.22 counts
 * those bytes per tensor handle, so reshapes and the clones customGrad saves count again although they share one
 * buffer. The buffers the wasm backend really holds are its _malloc/_free calls (one per data buffer): tracking them
 * gives the peak of tensor memory in the wasm heap.
 *
 * @example
 *   const { buffers } = await peakTensorBuffers(() => pass(true));
 */
import * as tf from "@tensorflow/tfjs-core";

type WasmModule = { _malloc: (n: number) => number; _free: (p: number) => void; HEAPU8: Uint8Array };

export interface PeakMemory {
  /** Peak bytes of live wasm data buffers during `run`, above what was live before it. */
  buffers: number;
  /** tf.profile's peakBytes above tf.memory().numBytes before `run`. */
  handles: number;
  /** The wasm heap's size after `run` (it only grows). */
  heap: number;
}

/** Runs `run` once (synchronous work, awaited through tf.profile) with the wasm allocator tracked. */
export async function peakTensorBuffers(run: () => void): Promise<PeakMemory> {
  const wasm = (tf.backend() as unknown as { wasm: WasmModule }).wasm;
  const { _malloc: malloc, _free: free } = wasm;
  const sizes = new Map<number, number>();
  let live = 0;
  let peak = 0;
  wasm._malloc = (n: number): number => {
    const p = malloc(n);
    sizes.set(p >>> 0, n);
    live += n;
    peak = Math.max(peak, live);
    return p;
  };
  wasm._free = (p: number): void => {
    live -= sizes.get(p >>> 0) ?? 0;
    sizes.delete(p >>> 0);
    free(p);
  };
  const before = tf.memory().numBytes;
  try {
    const profile = await tf.profile(run);
    return { buffers: peak, handles: profile.peakBytes - before, heap: wasm.HEAPU8.length };
  } finally {
    wasm._malloc = malloc;
    wasm._free = free;
  }
}
