/**
 * Whether a path exists, without throwing: the artifact, variant and adapt steps ask before they write, so that a
 * version is never overwritten and a run directory is never reused.
 *
 * @module
 */
import { access } from "node:fs/promises";

export async function pathExists(p: string): Promise<boolean> {
  return access(p).then(
    () => true,
    () => false,
  );
}
