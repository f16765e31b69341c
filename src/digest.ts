/**
 * SHA-256 as lowercase hex over Web Crypto, for every content hash, cache key and integrity check in the project
 * (artifact files, document contents, query-cache keys, API-key comparison, webhook signatures).
 *
 * @module
 * @example
 *   await sha256Hex("hello") // "2cf24dba…"
 */

const encoder = new TextEncoder();

export function toHex(bytes: Uint8Array): string {
  let hex = "";
  for (const byte of bytes) hex += byte.toString(16).padStart(2, "0");
  return hex;
}

/** Lowercase hex sha256 of bytes, or of a string's UTF-8 encoding. */
export async function sha256Hex(data: Uint8Array | string): Promise<string> {
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  // crypto.subtle wants a BufferSource backed by an ArrayBuffer; a view over a SharedArrayBuffer would be rejected.
  return toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>)));
}
