/**
 * Embeddings on the wire as OpenAI's `encoding_format: "base64"`: the vector's float32 components, little-endian, as
 * one base64 string — a quarter of the size of the JSON numbers, and what the `openai` client asks for by default and
 * decodes back into numbers. Written with DataView (explicit byte order) and btoa, both in workerd without nodejs_compat.
 *
 * @module
 * @example
 *   float32ToBase64([1, -0.5]);                     // "AACAPwAAAL8="
 *   Array.from(base64ToFloat32("AACAPwAAAL8="));    // [1, -0.5]
 */

/** Little-endian float32 bytes of `vector`, base64-encoded. Components round to float32, exactly as JSON floats from a Float32Array. */
export function float32ToBase64(vector: ArrayLike<number>): string {
  const bytes = new Uint8Array(vector.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < vector.length; i++) view.setFloat32(i * 4, vector[i]!, true);
  // String.fromCharCode takes its arguments on the stack: go in chunks so a long vector cannot overflow it.
  let binary = "";
  for (let start = 0; start < bytes.length; start += 0x8000) binary += String.fromCharCode(...bytes.subarray(start, start + 0x8000));
  return btoa(binary);
}

/** The inverse of {@link float32ToBase64}; throws on base64 that does not hold whole float32 values. */
export function base64ToFloat32(encoded: string): Float32Array {
  const binary = atob(encoded);
  if (binary.length % 4 !== 0) throw new RangeError(`base64 vector holds ${binary.length} bytes, not a whole number of float32 values`);
  const view = new DataView(new ArrayBuffer(binary.length));
  for (let i = 0; i < binary.length; i++) view.setUint8(i, binary.charCodeAt(i));
  const vector = new Float32Array(binary.length / 4);
  for (let i = 0; i < vector.length; i++) vector[i] = view.getFloat32(i * 4, true);
  return vector;
}
