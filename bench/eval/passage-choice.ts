/**
 * The rule `npm run eval:document-passages` chooses by (bench/document-passages.ts): whether indexing documents as
 * passages earns its extra model passes on a validation split.
 *
 * @module
 */
import { TIE_STANDARD_ERRORS } from "./fusion-tuning.js";

/** NDCG@10 with documents as passages and whole, and the paired standard error of their difference. */
export interface PairedNdcg {
  ndcg10: number;
  ndcg10Whole: number;
  standardError: number;
}

/**
 * Whether passages earn their model passes: the dense list must gain beyond TIE_STANDARD_ERRORS paired standard errors
 * and the hybrid ranking must not lose beyond them. Anything else says why the documents stay whole.
 */
export function passagesVerdict(dense: PairedNdcg, hybrid: PairedNdcg): string {
  if (!(dense.ndcg10 - dense.ndcg10Whole > TIE_STANDARD_ERRORS * dense.standardError)) return "the dense list gains no more than the noise";
  if (hybrid.ndcg10Whole - hybrid.ndcg10 > TIE_STANDARD_ERRORS * hybrid.standardError) return "the hybrid ranking loses beyond the noise";
  return "chosen";
}
