/**
 * Changing a trained model's context (architecture.maxLength), for `npm run train -- --adapt … --max-length N`.
 *
 * Why: the bundled models read 128 word pieces, and a SciFact abstract is about 350 (98 % are cut). BM25 over the same
 * first 128 pieces scores 0.611 NDCG@10 on SciFact test, over the first 256 0.684, as much as over whole documents
 * (`npm run eval:context-length`), so the cut throws away signal the dense side could learn to use.
 *
 * What changes: only `embed.position` is sized by the context in a self-attention block (attention itself works at any
 * length). A longer table keeps the learned rows and fills the new ones by tiling them — position p starts as the
 * learned row p mod L — which is how Longformer extended RoBERTa's 512 positions: the copies keep every position's
 * local geometry (neighbouring rows stay as close as they were), where fresh random rows would start as noise the
 * block has never read. A shorter table keeps the first rows. The token-mixing block (mlp_mixer, hybrid) has [L, L]
 * mixing matrices whose meaning is tied to absolute positions, so its context cannot be changed this way.
 *
 * @module
 */
import { blockOf, type TaesrArchitecture } from "../../../src/model/spec.js";

/** Position table rows for a new context: row p is the source's row p mod sourceRows (the first rows when shorter). */
export function resizePositionTable(table: Float32Array, sourceRows: number, targetRows: number, hidden: number): Float32Array {
  if (table.length !== sourceRows * hidden) {
    throw new RangeError(`position table has ${table.length} values, expected ${sourceRows} × ${hidden}`);
  }
  if (!Number.isInteger(targetRows) || targetRows < 1) throw new RangeError(`target length must be a positive integer, got ${targetRows}`);
  const out = new Float32Array(targetRows * hidden);
  for (let p = 0; p < targetRows; p++) {
    const from = (p % sourceRows) * hidden;
    out.set(table.subarray(from, from + hidden), p * hidden);
  }
  return out;
}

/**
 * Why `source`'s weights cannot be read at `target`'s context, or undefined when they can (a self-attention block on
 * both sides). Called only when the two maxLengths differ.
 */
export function contextChangeRefusal(source: TaesrArchitecture, target: TaesrArchitecture): string | undefined {
  for (const [side, arch] of [
    ["the source", source],
    ["this config", target],
  ] as const) {
    const block = blockOf(arch);
    if (block !== "self_attention") {
      return `${side} has a ${block} block, whose token-mixing matrices are sized by maxLength: only a self_attention model's context can change`;
    }
  }
  return undefined;
}
