/**
 * The held-out query figure during an adaptation run, not only at its end: at each validation the current weights are
 * written as a scratch artifact in the run directory and ranked exactly as the export ranks the finished one
 * (held-out-retrieval.ts: the corpus against the train queries the run held out, as the edge serves it). The in-batch
 * validation says little about it (taesr-edge-scifact@0.5.0's run: in-batch NDCG@10 0.657 → 0.666 over its last 350
 * updates, while the held-out queries' dense NDCG@10 went from 0.353 for its base to 0.449 over the run), so this is the
 * curve that says whether more updates still pay. Rank 0 only; off unless `training.heldOutRetrieval` is set.
 *
 * @module
 */
import { rm } from "node:fs/promises";
import path from "node:path";
import type { TaesrArchitecture, WeightName } from "../../../src/model/spec.js";
import type { TokenizerJSON } from "../../../src/tokenizer/index.js";
import { readAdaptCorpus } from "../data/adapt-corpus.js";
import { heldOutQueryIds, type AdaptRecord } from "../data/pairs.js";
import { exportArtifact } from "../export/artifact.js";
import { resolveFromConfig, type LoadedConfig } from "./config.js";
import { heldOutRetrieval, type HeldOutRetrieval } from "./held-out-retrieval.js";

/** The adaptation corpus and the train query ids the run holds out of it. */
export interface HeldOutProbe {
  records: AdaptRecord[];
  ids: string[];
}

/** The probe of a run that adapts to a corpus with train qrels and holds queries out; undefined otherwise. */
export async function heldOutProbeFor(loaded: LoadedConfig): Promise<HeldOutProbe | undefined> {
  const source = loaded.config.data.sources.adapt;
  if (!source || !(source.holdoutQueries! > 0)) return undefined;
  const corpus = await readAdaptCorpus(resolveFromConfig(loaded, source.dir));
  if (!corpus.info.trainQrels) return undefined;
  const ids = heldOutQueryIds(corpus.records, source.holdoutQueries!);
  return ids.length > 0 ? { records: corpus.records, ids } : undefined;
}

export interface ProbeModel {
  arch: TaesrArchitecture;
  weights: Record<WeightName, Float32Array>;
  tokenizerJson: TokenizerJSON;
  /** The exported document depth the artifact would record (documents are ranked at it). */
  documentDepth?: number;
  earlyExitEpsilon: number;
  router: { easyMaxTokens: number; mediumMaxTokens: number };
}

/** Ranks the probe's corpus with `model` written as a scratch artifact under `runDir` (removed afterwards). */
export async function probeHeldOut(probe: HeldOutProbe, model: ProbeModel, runDir: string, step: number): Promise<HeldOutRetrieval | undefined> {
  const outDir = path.join(runDir, "held-out-probe");
  await rm(outDir, { recursive: true, force: true });
  try {
    const { dir } = await exportArtifact({
      outDir,
      name: "held-out-probe",
      version: `0.0.${step}`,
      arch: model.arch,
      weights: model.weights,
      tokenizerJson: model.tokenizerJson,
      router: { kind: "rule", ...model.router },
      earlyExitEpsilon: model.earlyExitEpsilon,
      training: { note: `scratch export of step ${step} for the held-out query probe` },
      eval: {},
      ...(model.documentDepth !== undefined ? { retrieval: { documentDepth: { depth: model.documentDepth, trainedWith: { documentSteps: [model.documentDepth] } } } } : {}),
    });
    return await heldOutRetrieval(dir, probe.records, probe.ids);
  } finally {
    await rm(outDir, { recursive: true, force: true });
  }
}
