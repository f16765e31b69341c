/**
 * `npm run origin -- [options]`: the GPU origin as a process. Loads the full fp32 model (default: the artifact the
 * Worker bundles), serves it on loopback, and on SIGTERM/SIGINT drains (503 to newcomers, accepted requests answered)
 * and exits 0. The secret comes from --secret or the ORIGIN_SECRET environment variable (preferred: a flag shows in `ps`).
 *
 * @example
 *   ORIGIN_SECRET=$(openssl rand -hex 24) npm run origin -- --port 8790 --provider auto
 */
import { Command, InvalidArgumentError, Option } from "commander";
import { defaultArtifactDir } from "./artifact-files.js";
import { loadOriginModel, type ProviderChoice } from "./origin-model.js";
import { DEFAULT_BATCH_SETTINGS, startOrigin } from "./server.js";

function wholeNumber(min: number) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < min) throw new InvalidArgumentError(`expected a whole number ≥ ${min}, got "${value}"`);
    return parsed;
  };
}

const program = new Command()
  .name("npm run origin --")
  .description("Serve the full TAESR model over HTTP for the edge: micro-batched, shared-secret auth, CUDA when available.")
  .option("--model <dir>", "model artifact directory (default: the one model-artifacts/bundled.json names)")
  .option("--host <host>", "address to listen on", "127.0.0.1")
  .option("--port <n>", "port to listen on (0: any free port)", wholeNumber(0), 8790)
  .option("--max-batch <n>", "most texts per model call", wholeNumber(1), DEFAULT_BATCH_SETTINGS.maxBatch)
  .option("--max-wait-ms <n>", "longest a text waits for others to batch with", wholeNumber(0), DEFAULT_BATCH_SETTINGS.maxWaitMs)
  .option("--max-queue <n>", "most texts waiting; beyond it requests get 429", wholeNumber(1), DEFAULT_BATCH_SETTINGS.maxQueue)
  .option("--secret <secret>", "bearer secret the edge sends (default: $ORIGIN_SECRET)")
  .addOption(new Option("--provider <provider>", "ONNX Runtime execution provider").choices(["auto", "cuda", "cpu"]).default("auto"))
  .option("--threads <n>", "CPU provider intra-op threads (default: every core)", wholeNumber(1))
  .parse();

const options = program.opts<{
  model?: string;
  host: string;
  port: number;
  maxBatch: number;
  maxWaitMs: number;
  maxQueue: number;
  secret?: string;
  provider: ProviderChoice;
  threads?: number;
}>();

async function main(): Promise<void> {
  const secret = options.secret ?? process.env.ORIGIN_SECRET;
  if (!secret) throw new Error("no secret: pass --secret <secret> or set ORIGIN_SECRET (the edge sends it as a bearer token)");
  const dir = options.model ?? (await defaultArtifactDir());
  const origin = await startOrigin({
    secret,
    host: options.host,
    port: options.port,
    maxBatch: options.maxBatch,
    maxWaitMs: options.maxWaitMs,
    maxQueue: options.maxQueue,
    loadModel: () => loadOriginModel({ dir, provider: options.provider, ...(options.threads ? { threads: options.threads } : {}) }),
  });
  console.log(`origin: listening on ${origin.url}, loading ${dir} (fp32, provider ${options.provider})…`);

  let signalled = false;
  const stop = (signal: NodeJS.Signals) => {
    if (signalled) {
      console.error(`origin: ${signal} again — exiting without draining`);
      process.exit(1);
    }
    signalled = true;
    console.log(`origin: ${signal} received`);
    origin.shutdown().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(`origin: shutdown failed: ${(error as Error).message}`);
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);

  try {
    const model = await origin.loaded;
    const fallback = model.providerFallback ? ` (${model.providerFallback})` : "";
    console.log(`origin: ready — ${model.info.name}@${model.info.version} ${model.info.variant} on ${model.provider}${fallback}`);
  } catch (error) {
    // A process that cannot serve should exit so a supervisor restarts or reports it, not linger answering 503.
    console.error(`origin: the model failed to load: ${(error as Error).message}`);
    await origin.shutdown();
    process.exit(1);
  }
}

main().catch((error: unknown) => {
  console.error(`origin failed to start: ${(error as Error).message}`);
  process.exit(1);
});
