/**
 * `npm run eval:architectures`: the block-architecture ablation — self_attention, mlp_mixer and hybrid (src/model/spec.ts)
 * trained with the same config, seed, data and budget, then evaluated the same way.
 *
 *   npm run eval:architectures -- [--config training/configs/tiny.json] [--steps 150]
 *                                 [--dataset ../shared/datasets/scifact [--split test] [--limit-queries n]]
 *                                 [--out-dir bench/out/ablations] [--blocks self_attention,mlp_mixer,hybrid]
 *                                 [--init random,glove]
 *
 * For each block: the base config with only `arch.block`, `training.steps` and the output paths changed is trained by
 * the real trainer (training/src/train/trainer.ts) into <out-dir>/architectures/<block>/ and exported there. Each
 * artifact is then scored with
 * - the trainer's held-out validation (the same held-out pairs for every block: the split is a hash of the pair), at the
 *   validation width (128-d) and every route depth;
 * - with --dataset, `npm run eval` in dense mode (the edge variant's graphs, 128-d, depth auto with early exit: the Worker's setting),
 *   the same command for every artifact;
 * - parameters, artifact bytes (int8 variant) and encoder FLOPs of a 16-token query at depth 3 (src/model/flops.ts).
 * The budget is tiny on purpose (minutes on 2 cores): it ranks the blocks' early learning, not their final quality.
 *
 * --init trains every block once per token-embedding initialisation (the config's `initEmbeddings`: "random", or
 * "glove" = training/src/model/glove-init.ts), into <out-dir>/architectures/<block>-<init>/; without it each block runs
 * once with the base config's own setting, as before.
 *
 * Writes architectures.json and architectures.md to --out-dir; the JSON goes last on stdout.
 */
import { spawn } from "node:child_process";
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { Command } from "commander";
import { queryFlops } from "../src/model/flops.js";
import { BLOCK_ARCHITECTURES, type ArtifactManifest, type BlockArchitecture } from "../src/model/spec.js";
import { train } from "../training/src/train/trainer.js";
import { positiveInteger } from "./cli-options.js";

const repoRoot = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");

const program = new Command()
  .name("npm run eval:architectures --")
  .description("Train self_attention, mlp_mixer and hybrid with one config and budget, and compare them.")
  .option("--config <file>", "base training config (its arch.block is replaced)", path.join(repoRoot, "training/configs/tiny.json"))
  .option("--steps <n>", "updates per block", positiveInteger, 150)
  .option("--dataset <dir>", "also evaluate each artifact on this BEIR folder with `npm run eval` (dense, 128-d, in the variant the Worker would run it)")
  .option("--split <name>", "qrels split for --dataset", "test")
  .option("--limit-queries <n>", "evaluate only the first n judged queries", positiveInteger)
  .option("--blocks <list>", "comma-separated blocks", BLOCK_ARCHITECTURES.join(","))
  .option("--init <list>", "comma-separated token-embedding initialisations to compare per block (random, glove)")
  .option("--out-dir <dir>", "where runs, artifacts and the report go", "bench/out/ablations")
  .parse();

const options = program.opts<{
  config: string;
  steps: number;
  dataset?: string;
  split: string;
  limitQueries?: number;
  blocks: string;
  init?: string;
  outDir: string;
}>();
const log = (message: string) => process.stderr.write(`[architectures] ${message}\n`);

const INITS = ["random", "glove"] as const;
type EmbeddingInit = (typeof INITS)[number];

interface BlockResult {
  block: BlockArchitecture;
  /** Only with --init. */
  init?: EmbeddingInit;
  parameters: number;
  artifact: string;
  int8_bytes: number;
  flops_16_tokens_depth3: number;
  train_seconds: number;
  loss_first10: number;
  loss_last10: number;
  validation: Record<string, { acc1: number; mrr: number; ndcg10: number }>;
  beir?: Record<string, unknown>;
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const r4 = (x: number): number => Math.round(x * 1e4) / 1e4;

/** `npm run eval` on one artifact: its stdout's last line is the JSON result. */
function runEval(model: string): Promise<Record<string, unknown>> {
  const args = ["tsx", "bench/eval.ts", "--dataset", options.dataset!, "--split", options.split, "--mode", "dense", "--model", model];
  if (options.limitQueries) args.push("--limit-queries", String(options.limitQueries));
  return new Promise((resolve, reject) => {
    const child = spawn("npx", args, { cwd: repoRoot, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0) return reject(new Error(`npm run eval exited with ${code} for ${model}`));
      const last = out.trim().split("\n").pop() ?? "";
      try {
        resolve(JSON.parse(last) as Record<string, unknown>);
      } catch {
        reject(new Error(`npm run eval printed no JSON for ${model}: ${last.slice(0, 200)}`));
      }
    });
  });
}

async function trainBlock(
  block: BlockArchitecture,
  init: EmbeddingInit | undefined,
  base: Record<string, any>,
  baseDir: string,
  outDir: string,
): Promise<BlockResult> {
  const variant = init ? `${block}-${init}` : block;
  const dir = path.join(outDir, "architectures", variant);
  await mkdir(dir, { recursive: true });
  const config = structuredClone(base);
  config.name = `arch-${variant}`;
  config.tokenizer = path.resolve(baseDir, config.tokenizer as string);
  config.arch = { ...config.arch, block };
  // "random" is written as the field's absence: the config a run without the option would have.
  if (init) config.initEmbeddings = init === "glove" ? "glove" : undefined;
  config.training = { ...config.training, steps: options.steps, epochs: undefined };
  config.export = { ...config.export, name: `taesr-arch-${variant.replaceAll("_", "-")}`, version: "0.0.0-ablation", outDir: dir, force: true };
  if (config.initFrom) config.initFrom = path.resolve(baseDir, config.initFrom as string);
  const file = path.join(dir, "config.json");
  await writeFile(file, JSON.stringify(config, null, 2) + "\n");
  log(`${variant}: training ${options.steps} steps`);
  const { rm } = await import("node:fs/promises");
  await rm(path.join(dir, "run"), { recursive: true, force: true });
  const result = await train({ config: file, runDir: path.join(dir, "run"), progress: false, log: (line) => log(`${variant}: ${line}`) });
  const manifest = JSON.parse(await readFile(path.join(result.exportDir!, "manifest.json"), "utf8")) as ArtifactManifest;
  const int8 = [manifest.variants.int8.embed, manifest.variants.int8.step, manifest.tokenizer];
  let bytes = 0;
  for (const rel of int8) bytes += (await stat(path.join(result.exportDir!, rel))).size;
  const h = result.lossHistory;
  const out: BlockResult = {
    block,
    ...(init ? { init } : {}),
    parameters: manifest.parameters,
    artifact: path.relative(repoRoot, result.exportDir!),
    int8_bytes: bytes,
    flops_16_tokens_depth3: queryFlops(manifest.architecture, Math.min(16, manifest.architecture.maxLength), 3).total,
    train_seconds: result.trainSeconds,
    loss_first10: r4(mean(h.slice(0, 10))),
    loss_last10: r4(mean(h.slice(-10))),
    validation: Object.fromEntries(
      Object.entries(result.validation?.byDepth ?? {}).map(([d, v]) => [d, { acc1: r4(v.acc1), mrr: r4(v.mrr), ndcg10: r4(v.ndcg10) }]),
    ),
  };
  if (options.dataset) {
    log(`${variant}: npm run eval (dense, 128-d, the edge variant) on ${options.dataset}`);
    out.beir = await runEval(result.exportDir!);
  }
  return out;
}

function markdown(results: BlockResult[], base: string): string {
  const depths = Object.keys(results[0]?.validation ?? {});
  const lines = [
    `# Block architectures (${options.steps} updates each, config ${path.relative(repoRoot, base)}, same seed and data)`,
    "",
    `| block | parameters | int8 bytes | FLOPs (16 tok, k=3) | loss first 10 → last 10 | ${depths.map((d) => `val MRR k=${d}`).join(" | ")} |` +
      (options.dataset ? " BEIR nDCG@10 | BEIR MRR@10 |" : ""),
    `| --- | ---: | ---: | ---: | --- | ${depths.map(() => "---:").join(" | ")} |` + (options.dataset ? " ---: | ---: |" : ""),
  ];
  for (const r of results) {
    const beir = r.beir ? ` ${r4(Number(r.beir["ndcg@10"]))} | ${r4(Number(r.beir["mrr@10"]))} |` : "";
    lines.push(
      `| ${r.block}${r.init ? ` (${r.init} init)` : ""} | ${r.parameters} | ${r.int8_bytes} | ${r.flops_16_tokens_depth3} | ${r.loss_first10} → ${r.loss_last10} | ` +
        `${depths.map((d) => r.validation[d]?.mrr ?? "").join(" | ")} |${beir}`,
    );
  }
  lines.push("", "Held-out validation: the trainer's held-out pairs (128-d, in-batch ranking among the held-out set).", "");
  return lines.join("\n");
}

async function main(): Promise<void> {
  const blocks = options.blocks.split(",").map((b) => b.trim());
  for (const b of blocks) {
    if (!(BLOCK_ARCHITECTURES as readonly string[]).includes(b)) throw new Error(`--blocks: unknown block "${b}" (expected ${BLOCK_ARCHITECTURES.join(", ")})`);
  }
  const inits = options.init?.split(",").map((i) => i.trim());
  for (const i of inits ?? []) {
    if (!(INITS as readonly string[]).includes(i)) throw new Error(`--init: unknown initialisation "${i}" (expected ${INITS.join(", ")})`);
  }
  const base = JSON.parse(await readFile(options.config, "utf8")) as Record<string, any>;
  const outDir = path.resolve(options.outDir);
  const results: BlockResult[] = [];
  for (const block of blocks as BlockArchitecture[]) {
    for (const init of (inits ?? [undefined]) as (EmbeddingInit | undefined)[]) {
      results.push(await trainBlock(block, init, base, path.dirname(path.resolve(options.config)), outDir));
    }
  }
  const report = { steps: options.steps, config: path.relative(repoRoot, path.resolve(options.config)), dataset: options.dataset ?? null, results };
  await writeFile(path.join(outDir, "architectures.json"), JSON.stringify(report, null, 2) + "\n");
  const md = markdown(results, path.resolve(options.config));
  await writeFile(path.join(outDir, "architectures.md"), md);
  process.stderr.write(`\n${md}\n`);
  process.stdout.write(JSON.stringify(report) + "\n");
}

main().catch((error: unknown) => {
  process.stderr.write(`[architectures] ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
