/**
 * `npm run export -- --checkpoint <file> --tokenizer <file> --name taesr-edge --version 0.1.0 --out ../model-artifacts`
 * `npm run export -- --add-variant int4|int8w --artifact model-artifacts/<name>@<version>`
 *
 * Exports a saved params checkpoint (training/src/model/params.ts format) and a tokenizer JSON as a versioned artifact
 * (fp32, int8, int4 and int8w ONNX graphs, manifest with sha256 of every file). With --add-variant, adds a variant to an
 * existing artifact from its own fp32 graphs instead (training/src/export/add-variant.ts: new files only, existing
 * ones untouched), e.g. int4 to an artifact exported before int4 existed. The checkpoint's `meta` becomes the manifest's
 * `training` record unless --training-json is given; --eval-json supplies the `eval` record. Relative paths are resolved
 * against the directory npm was started from (INIT_CWD), as in the train CLI, so the same command works from the root.
 *
 * @module
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { Command } from "commander";
import { addVariant, ADDABLE_VARIANTS } from "../export/add-variant.js";
import { exportArtifact } from "../export/artifact.js";
import { loadParams } from "../model/params.js";

interface ExportCliOptions {
  checkpoint?: string;
  tokenizer?: string;
  name: string;
  version?: string;
  addVariant?: string;
  artifact?: string;
  out: string;
  easyMaxTokens: string;
  mediumMaxTokens: string;
  earlyExitEpsilon: string;
  trainingJson?: string;
  evalJson?: string;
  force?: boolean;
}

async function readJsonObject(file: string): Promise<Record<string, unknown>> {
  const value: unknown = JSON.parse(await readFile(file, "utf8"));
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error(`${file}: expected a JSON object`);
  return value as Record<string, unknown>;
}

function nonNegativeNumber(flag: string, text: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${flag}: expected a non-negative number, got ${JSON.stringify(text)}`);
  return n;
}

async function main(argv: string[]): Promise<void> {
  const program = new Command()
    .name("export")
    .description("Export a TAESR checkpoint as a versioned ONNX artifact (fp32 + int8 + int4), or add a variant to an artifact")
    .option("--checkpoint <file>", "params checkpoint written by saveParams (required unless --add-variant)")
    .option("--tokenizer <file>", "tokenizer JSON (required unless --add-variant)")
    .option("--version <semver>", "artifact version, directory <name>@<version> (required unless --add-variant)")
    .option("--add-variant <variant>", `add a variant (${ADDABLE_VARIANTS.join(", ")}) to the existing artifact --artifact, from its fp32 graphs`)
    .option("--artifact <dir>", "the artifact directory --add-variant extends")
    .option("--name <name>", "artifact name", "taesr-edge")
    .option("--out <dir>", "artifacts directory", "../model-artifacts")
    .option("--easy-max-tokens <n>", "router rule: inputs with at most this many tokens are easy", "8")
    .option("--medium-max-tokens <n>", "router rule: … at most this many are medium", "32")
    .option("--early-exit-epsilon <x>", "stop recursing when 1 − cos(e_t, e_{t−1}) < epsilon", "0.001")
    .option("--training-json <file>", "JSON object for the manifest's training record (default: checkpoint meta)")
    .option("--eval-json <file>", "JSON object for the manifest's eval record")
    .option("--force", "replace an existing version directory", false)
    .parse(argv);
  const base = process.env["INIT_CWD"] ?? process.cwd();
  const raw = program.opts<ExportCliOptions>();
  if (raw.addVariant !== undefined || raw.artifact !== undefined) {
    await addVariantCommand(raw, base);
    return;
  }
  const { checkpoint, tokenizer, version } = raw;
  if (checkpoint === undefined || tokenizer === undefined || version === undefined) {
    const missing = (["checkpoint", "tokenizer", "version"] as const).filter((k) => raw[k] === undefined);
    throw new Error(`${missing.map((k) => `--${k}`).join(", ")} required (or --add-variant <variant> --artifact <dir>)`);
  }
  const o = {
    ...raw,
    checkpoint: path.resolve(base, checkpoint),
    tokenizer: path.resolve(base, tokenizer),
    version,
    out: path.resolve(base, raw.out),
    ...(raw.trainingJson !== undefined ? { trainingJson: path.resolve(base, raw.trainingJson) } : {}),
    ...(raw.evalJson !== undefined ? { evalJson: path.resolve(base, raw.evalJson) } : {}),
  };

  const { architecture, weights, meta } = await loadParams(o.checkpoint);
  const tokenizerJson = await readFile(o.tokenizer, "utf8");
  JSON.parse(tokenizerJson); // fail early on a broken tokenizer file rather than shipping it
  const easyMaxTokens = nonNegativeNumber("--easy-max-tokens", o.easyMaxTokens);
  const mediumMaxTokens = nonNegativeNumber("--medium-max-tokens", o.mediumMaxTokens);
  if (easyMaxTokens > mediumMaxTokens) throw new Error("--easy-max-tokens must be ≤ --medium-max-tokens");

  const { dir, manifest } = await exportArtifact({
    outDir: o.out,
    name: o.name,
    version: o.version,
    arch: architecture,
    weights,
    tokenizerJson,
    router: { kind: "rule", easyMaxTokens, mediumMaxTokens },
    earlyExitEpsilon: nonNegativeNumber("--early-exit-epsilon", o.earlyExitEpsilon),
    training: o.trainingJson ? await readJsonObject(o.trainingJson) : { checkpoint: o.checkpoint, ...meta },
    eval: o.evalJson ? await readJsonObject(o.evalJson) : {},
    force: Boolean(o.force),
  });
  process.stdout.write(`exported ${dir}\n`);
  for (const [file, { bytes, sha256 }] of Object.entries(manifest.files)) {
    process.stdout.write(`  ${file.padEnd(18)} ${String(bytes).padStart(10)} B  ${sha256.slice(0, 16)}…\n`);
  }
}

/** `--add-variant <variant> --artifact <dir>`: the only options it takes; anything for a fresh export is refused. */
async function addVariantCommand(raw: ExportCliOptions, base: string): Promise<void> {
  if (raw.addVariant === undefined || raw.artifact === undefined) throw new Error("--add-variant and --artifact go together");
  const stray = (["checkpoint", "tokenizer", "version", "trainingJson", "evalJson"] as const).filter((k) => raw[k] !== undefined);
  if (stray.length) throw new Error(`--add-variant reads the artifact's own fp32 graphs; drop ${stray.map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(", ")}`);
  const dir = path.resolve(base, raw.artifact);
  const added = await addVariant(dir, raw.addVariant, { command: `npm run export -- --add-variant ${raw.addVariant} --artifact ${raw.artifact}` });
  process.stdout.write(`added ${added.variant} to ${dir}: ${added.files.join(", ")}\n`);
  for (const [variant, bytes] of Object.entries(added.bytes)) process.stdout.write(`  ${variant.padEnd(5)} graphs ${String(bytes).padStart(10)} B\n`);
  for (const [file, tensors] of Object.entries(added.tensors)) {
    process.stdout.write(`  ${file} initializers:\n`);
    for (const t of tensors) {
      process.stdout.write(`    ${t.name.padEnd(26)} ${t.dataType.padEnd(8)} [${t.dims.join(",")}]`.padEnd(62) + `${String(t.bytes).padStart(10)} B\n`);
    }
  }
  if (added.changelog) process.stdout.write(`  logged in ${added.changelog}\n`);
}

main(process.argv).catch((err: unknown) => {
  process.stderr.write(`export failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
