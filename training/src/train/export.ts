/**
 * Hands a finished run to the artifact exporter with the manifest's `training` and `eval` records: data sources and
 * pair counts (SciFact corpus use declared as unsupervised in-domain), steps, tokens, wall time, final losses and the
 * full config.
 *
 * @module
 */
import type { TaesrArchitecture } from "../../../src/model/spec.js";
import type { TokenizerJSON } from "../../../src/tokenizer/index.js";
import type { BackendName } from "../backend.js";
import { CORPUS_FILES } from "../data/corpora.js";
import { exportArtifact } from "../export/artifact.js";
import type { PairStats } from "../data/pairs.js";
import { paramsToFloat32, type TaesrParams } from "../model/params.js";
import { resolveFromConfig, type LoadedConfig, type TrainConfig } from "./config.js";
import type { ValidationResult } from "./validate.js";

export interface ExportRunInput {
  config: TrainConfig;
  loaded: LoadedConfig;
  arch: TaesrArchitecture;
  params: TaesrParams;
  tokenizerJson: TokenizerJSON;
  pairs: PairStats;
  backend: BackendName;
  step: number;
  totalSteps: number;
  tokens: number;
  trainSeconds: number;
  lastLoss: Record<string, number>;
  validation: ValidationResult;
  log: (line: string) => void;
}

const SOURCE_NOTES: Record<string, string> = {
  debian: "Debian package descriptions: short description → long description; package name + short description → long description",
  wordnet: "WordNet 3.0 synsets: terms → definition; usage example → definition",
  scifact:
    "SciFact corpus titles and abstracts only, used UNSUPERVISED IN-DOMAIN (title → abstract; one sentence → rest of abstract). " +
    "No SciFact queries or qrels (train or test) were used; report zero-shot numbers beside this model's.",
};

/** The manifest's `training` record. */
export function trainingRecord(input: ExportRunInput): Record<string, unknown> {
  const dataSources = Object.fromEntries(
    Object.entries(input.pairs.bySource).map(([source, counts]) => [
      source,
      {
        file: `shared/datasets/${CORPUS_FILES[source as keyof typeof CORPUS_FILES]}`,
        use: SOURCE_NOTES[source],
        trainPairs: counts.train,
        heldOutPairs: counts.validation,
        pairKinds: counts.kinds,
      },
    ]),
  );
  return {
    trainer: "training/src/train/trainer.ts",
    backend: input.backend,
    objective:
      "symmetric in-batch InfoNCE at every Matryoshka prefix and every supervised recursion step (deep supervision)",
    dataSources,
    scifactCorpusUnsupervisedInDomain: input.pairs.bySource["scifact"] !== undefined,
    pairs: { train: input.pairs.train, validation: input.pairs.validation, duplicatesDropped: input.pairs.duplicatesDropped },
    steps: input.step,
    plannedSteps: input.totalSteps,
    tokens: input.tokens,
    wallTimeSeconds: Math.round(input.trainSeconds),
    finalLossByStep: input.lastLoss,
    config: input.config,
  };
}

/** Exports the artifact into the config's export.outDir; returns the artifact directory. */
export async function exportRun(input: ExportRunInput): Promise<string> {
  const { config } = input;
  const outDir = resolveFromConfig(input.loaded, config.export.outDir);
  const result = await exportArtifact({
    outDir,
    name: config.export.name,
    version: config.export.version,
    arch: input.arch,
    weights: paramsToFloat32(input.params),
    tokenizerJson: input.tokenizerJson,
    router: { kind: "rule", ...config.export.router },
    earlyExitEpsilon: config.export.earlyExitEpsilon,
    training: trainingRecord(input),
    eval: { heldOutValidation: input.validation },
    force: config.export.force,
  });
  input.log(`exported ${result.dir}`);
  return result.dir;
}
