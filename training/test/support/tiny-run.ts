/**
 * Set-up for tests that run the real trainer: a temp directory per file or describe block (created before its tests,
 * removed after), the silent run options, and a Float32Array's bytes for bit-exact comparisons of checkpoints.
 *
 * @example
 *   const tmp = useTempDir("taesr-late-");
 *   const result = await train({ config, runDir: path.join(tmp(), "run"), ...QUIET_RUN });
 *   expect(float32Bytes(a).equals(float32Bytes(b))).toBe(true);
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll } from "vitest";

/** train() options for a run that prints nothing. */
export const QUIET_RUN = { progress: false, log: () => {} };

/** The bytes behind a Float32Array (no copy), for bit-exact equality. */
export const float32Bytes = (x: Float32Array): Buffer => Buffer.from(x.buffer, x.byteOffset, x.byteLength);

/**
 * Registers beforeAll/afterAll hooks in the calling scope that create `<os tmpdir>/<prefix>XXXXXX` and remove it with
 * everything in it; returns the directory's path (valid from the first beforeAll on).
 */
export function useTempDir(prefix: string): () => string {
  let dir: string | undefined;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  return () => {
    if (dir === undefined) throw new Error(`useTempDir(${JSON.stringify(prefix)}): used before its beforeAll ran`);
    return dir;
  };
}
