/**
 * What every manifest-tuning tool (bench/document-depth.ts, bench/document-passages.ts) opens first: the artifact in
 * the variant the edge runs it, and a validation split's judged queries the artifact was not trained on — for a model
 * adapted on that split's queries, only the ones it held out (src/model/adaptation.ts untrainedQueries).
 *
 * @module
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { edgeVariantFor, parseManifest, untrainedQueries, type ModelVariant } from "../../src/model/index.js";
import { defaultArtifactDir } from "../default-artifact.js";
import { loadBeirDataset, type EvalDataset } from "./dataset.js";
import { assertSplitTunable } from "./fusion-tuning.js";
import { openModel, type EvalModel } from "./model.js";

export interface TuningSplit {
  modelDir: string;
  /** The variant the Worker runs this artifact in. */
  variant: ModelVariant;
  model: EvalModel;
  /** The split with only the queries fair to tune on. */
  dataset: EvalDataset;
  /** How the queries were chosen, when some were left out (for the output and the CHANGELOG line). */
  queriesNote: string | undefined;
}

/**
 * Opens `options.model` (default: the artifact the Worker bundles) and the split.
 * @throws Error when `save` and the split is the test split, or the artifact or dataset cannot be read.
 */
export async function openTuningSplit(options: { dataset: string; split: string; model?: string | undefined; save?: boolean | undefined }): Promise<TuningSplit> {
  if (options.save) assertSplitTunable(options.split);
  const modelDir = options.model ?? (await defaultArtifactDir());
  const variant = edgeVariantFor(parseManifest(await readFile(path.join(modelDir, "manifest.json"), "utf8")));
  const model = await openModel(modelDir, [variant]);
  const loaded = await loadBeirDataset(options.dataset, options.split);
  const fair = untrainedQueries(loaded.queries, model.manifest, loaded);
  if (fair.note) console.error(`queries: ${fair.note}`);
  return { modelDir, variant, model, dataset: { ...loaded, queries: [...fair.queries] }, queriesNote: fair.note };
}
