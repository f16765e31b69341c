/**
 * Entry point of a data-parallel gradient worker (a child process started by data-parallel.ts; not a CLI).
 *
 * It builds the same session as rank 0 from the same config (tokenizer, pairs, batcher, model shape), then answers
 * each `work` message: load the weights it was sent, run forward + backward on the named micro-batches, send back the
 * gradient sums. It keeps no state between updates.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { weightNamesIn, type WeightName } from "../../../src/model/spec.js";
import type { FromWorker, ToWorker } from "./data-parallel.js";
import { microBatchGradients } from "./micro-batch.js";
import { sparseObjectiveAt } from "./sparse-loss.js";
import { lateObjectiveOf } from "./late-loss.js";
import { assignProbes, type ProbeName } from "./subspace-loss.js";
import { prepareSession, type Session } from "./trainer.js";

const rank = process.env["TAESR_GRADIENT_WORKER_RANK"] ?? "?";
let session: Session | undefined;
let updates = 0;
const exitAt = process.env["TAESR_GRADIENT_WORKER_EXIT_AT"] ? Number(process.env["TAESR_GRADIENT_WORKER_EXIT_AT"]) : undefined;

function reply(message: FromWorker): void {
  process.send?.(message);
}

function loadWeights(s: Session, weights: Record<WeightName, Float32Array>): void {
  for (const name of weightNamesIn(s.params)) {
    const variable = s.params[name];
    const data = weights[name];
    if (data.length !== variable.size) throw new Error(`weight ${name}: ${data.length} values sent, model has ${variable.size}`);
    const value = tf.tensor(data, variable.shape, "float32");
    variable.assign(value);
    value.dispose();
  }
}

async function handle(message: ToWorker): Promise<void> {
  if (message.type === "init") {
    session = await prepareSession({ config: message.configPath, log: () => {}, weightsFromRank0: true });
    reply({ type: "ready", fingerprint: session.fingerprint, backend: session.backend, device: process.env["CUDA_VISIBLE_DEVICES"] });
    return;
  }
  const s = session;
  if (!s) throw new Error("work before init");
  updates += 1;
  // Test hook: the data-parallel test proves a dying worker loses nothing by making one die mid-run.
  if (exitAt !== undefined && updates >= exitAt) process.exit(70);
  loadWeights(s, message.weights);
  // The subspace probes travel with the weights: both ranks must differentiate the same loss.
  if (s.subspaces) {
    if (!message.probes) throw new Error("the run trains subspace probes but rank 0 sent none");
    assignProbes(s.subspaces.probes, message.probes as Record<ProbeName, Float32Array>);
  }
  const result = microBatchGradients(
    s.params,
    s.lossOptions,
    message.batches.map((indices) => s.batcher.encode(indices)),
    {
      checkpoint: s.config.training.gradientCheckpointing,
      sparse: sparseObjectiveAt(s.config.training.objectives?.sparse, message.step ?? 0),
      late: lateObjectiveOf(s.config.training.objectives?.late, s.config.training.lossSteps),
      ...(s.subspaces ? { subspaces: { probes: s.subspaces.probes, loss: s.subspaces.loss } } : {}),
      headsOnly: s.config.training.trainHeadsOnly ?? false,
      ...(s.config.training.gradientCache ? { gradientCache: s.config.training.gradientCache } : {}),
    },
  );
  const gradSums = {} as Record<WeightName, Float32Array>;
  for (const name of weightNamesIn(result.gradSums)) {
    gradSums[name] = result.gradSums[name].dataSync() as Float32Array;
    result.gradSums[name].dispose();
  }
  const auxGradSums: Record<string, Float32Array> = {};
  for (const [name, g] of Object.entries(result.auxGradSums ?? {})) {
    auxGradSums[name] = g.dataSync() as Float32Array;
    g.dispose();
  }
  reply({
    type: "result",
    id: message.id,
    gradSums,
    losses: result.losses,
    perStep: result.perStep,
    objectives: result.objectives,
    ...(result.auxGradSums ? { auxGradSums } : {}),
    tokens: result.tokens,
    paddedTokens: result.paddedTokens,
  });
}

// One message at a time: a work message must not start before init has finished.
let queue: Promise<void> = Promise.resolve();
process.on("message", (message: ToWorker) => {
  queue = queue.then(() =>
    handle(message).catch((error: unknown) => {
      const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
      reply({ type: "error", ...(message.type === "work" ? { id: message.id } : {}), message: `rank ${rank}: ${text}` });
    }),
  );
});
// The parent closing the channel (it exited or crashed) ends this process; nothing here is worth keeping.
process.on("disconnect", () => process.exit(0));
