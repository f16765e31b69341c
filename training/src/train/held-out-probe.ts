/**
 * The held-out query figure during an adaptation run, not only at its end: at each validation the current weights are
 * written as a scratch artifact in the run directory and ranked exactly as the export ranks the finished one
 * (held-out-retrieval.ts: the corpus against the train queries the run held out, as the edge serves it). The in-batch
 * validation says little about it (taesr-edge-scifact@0.5.0's run: in-batch NDCG@10 0.657 → 0.666 over its last 350
 * updates, while the held-out queries' dense NDCG@10 went from 0.353 for its base to 0.449 over the run), so this is the
 * curve that says whether more updates still pay. Rank 0 only; off unless `training.heldOutRetrieval` is set.
 * A general run gets the same curve from `training.probeCorpus`: a corpus whose train queries it never sees, so the
 * zero-shot figure it is judged by is followed during the run instead of only after an export.
 *
 * @module
 */
import { rm } from "node:fs/promises";
import path from "node:path";
import type { TaesrArchitecture, WeightName } from "../../../src/model/spec.js";
import type { TokenizerJSON } from "../../../src/tokenizer/index.js";
import { readAdaptCorpus, TRAIN_QRELS } from "../data/adapt-corpus.js";
import { heldOutQueryIds, type AdaptRecord } from "../data/pairs.js";
import { exportArtifact } from "../export/artifact.js";
import { ConfigError, resolveFromConfig, type LoadedConfig } from "./config.js";
import { heldOutRetrieval, type HeldOutRetrieval } from "./held-out-retrieval.js";

/** A corpus and the train query ids its ranking is measured on: queries the run never trains on. */
export interface HeldOutProbe {
  records: AdaptRecord[];
  ids: string[];
  /** Names the queries in the log ("held-out train queries", "scifact train queries"). */
  label: string;
  /** Probe after the last update too: an adaptation's export ranks its artifact itself, a general run's does not. */
  atEnd: boolean;
}

/**
 * The run's probe: an adaptation's held-out train queries (`training.heldOutRetrieval`), or every train query of
 * `training.probeCorpus`; undefined when the run asks for neither or the adaptation holds no judged query out.
 * @throws ConfigError when probeCorpus is the adaptation corpus, or has no train qrels.
 */
export async function heldOutProbeFor(loaded: LoadedConfig): Promise<HeldOutProbe | undefined> {
  const { training, data } = loaded.config;
  if (training.probeCorpus !== undefined) return probeCorpusFor(loaded, training.probeCorpus, data.sources.adapt?.dir);
  const source = data.sources.adapt;
  if (!training.heldOutRetrieval || !source || !(source.holdoutQueries! > 0)) return undefined;
  const corpus = await readAdaptCorpus(resolveFromConfig(loaded, source.dir));
  if (!corpus.info.trainQrels) return undefined;
  const ids = heldOutQueryIds(corpus.records, source.holdoutQueries!);
  return ids.length > 0 ? { records: corpus.records, ids, label: "held-out train queries", atEnd: false } : undefined;
}

async function probeCorpusFor(loaded: LoadedConfig, probeDir: string, adaptDir: string | undefined): Promise<HeldOutProbe> {
  const dir = resolveFromConfig(loaded, probeDir);
  if (adaptDir !== undefined && path.resolve(resolveFromConfig(loaded, adaptDir)) === path.resolve(dir)) {
    throw new ConfigError(
      `training.probeCorpus: ${dir} is the corpus this run adapts to, and it trains on that corpus's train queries; set training.heldOutRetrieval to rank the ones it holds out`,
    );
  }
  const corpus = await readAdaptCorpus(dir);
  const ids = [...new Set(corpus.records.flatMap((record) => record.queries.map((query) => query.id)))];
  if (ids.length === 0) {
    throw new ConfigError(`training.probeCorpus: ${dir} has no train query that judges one of its documents relevant (${TRAIN_QRELS} with score > 0): nothing to rank`);
  }
  return { records: corpus.records, ids, label: `${corpus.info.name} train queries`, atEnd: true };
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
