/**
 * `npm run model:publish -- <artifact dir>`: uploads a model artifact to a running edge's artifact store (R2) through
 * the admin API — manifest.json, the tokenizer and the edge variant's graphs, each checked on the way back against the
 * manifest's sha256 — and, with `--activate`, starts the blue/green switch to it; `--wait` then follows the background
 * re-embedding with a progress bar until the new model serves.
 *
 * @example
 *   npm run model:publish -- model-artifacts/taesr-edge-scifact@0.3.0 --activate --wait
 *   npm run model:publish -- model-artifacts/taesr-edge-small@0.4.0 --url https://search.example.com --api-key "$API_KEY"
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { Presets, SingleBar } from "cli-progress";
import { Command } from "commander";
import { edgeVariantFor, parseManifest, variantFiles, type ArtifactManifest } from "../../../src/model/index.js";
import type { RolloutState } from "../src/model-rollout.js";

const program = new Command()
  .name("npm run model:publish --")
  .description("Upload a model artifact to TAESR Edge's artifact store and, optionally, switch to it.")
  .argument("<artifact>", "an artifact directory (model-artifacts/<name>@<version>)")
  .option("--url <url>", "the edge's base URL", "http://127.0.0.1:8787")
  .option("--api-key <key>", "the API key (default $API_KEY, else npm start's taesr-dev-key)", process.env.API_KEY ?? "taesr-dev-key")
  .option("--activate", "switch to the model once uploaded (blue/green: the index is re-embedded in the background)")
  .option("--wait", "with --activate: follow the switch until the new model serves")
  .parse();

const [artifactDir] = program.args as [string];
const options = program.opts<{ url: string; apiKey: string; activate?: boolean; wait?: boolean }>();

class PublishError extends Error {}

async function call(method: string, route: string, body?: BodyInit, contentType?: string): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(new URL(route, options.url), {
      method,
      headers: { authorization: `Bearer ${options.apiKey}`, ...(contentType ? { "content-type": contentType } : {}) },
      ...(body !== undefined ? { body } : {}),
    });
  } catch (error) {
    throw new PublishError(`cannot reach ${options.url} (${(error as Error).message}): is the edge running (npm start)?`);
  }
  if (!response.ok) {
    const text = await response.text();
    let message = text.slice(0, 500);
    try {
      message = (JSON.parse(text) as { error: { message: string } }).error.message;
    } catch {
      // not our JSON error: show the text as it came
    }
    throw new PublishError(`${method} ${route}: ${response.status} ${message}`);
  }
  return response;
}

async function readManifest(dir: string): Promise<ArtifactManifest> {
  let text: string;
  try {
    text = await readFile(path.join(dir, "manifest.json"), "utf8");
  } catch (error) {
    throw new PublishError(`${dir} is not a model artifact: ${(error as Error).message}`);
  }
  try {
    return parseManifest(text);
  } catch (error) {
    throw new PublishError(`${dir}/manifest.json: ${(error as Error).message}`);
  }
}

async function publish(): Promise<void> {
  const manifest = await readManifest(artifactDir);
  const ref = `${manifest.name}@${manifest.version}`;
  // The manifest last: an artifact counts as uploaded (GET /v1/admin/models lists it) only once every file it names is there.
  const files = [...variantFiles(manifest, edgeVariantFor(manifest)), "manifest.json"];
  const bar = new SingleBar({ format: `uploading ${ref} [{bar}] {value}/{total} files  {file}` }, Presets.shades_classic);
  bar.start(files.length, 0, { file: "" });
  try {
    for (const file of files) {
      bar.update({ file });
      const bytes = await readFile(path.join(artifactDir, file));
      const response = await call("PUT", `/v1/admin/models/${ref}/files/${file}`, bytes, "application/octet-stream");
      const stored = (await response.json()) as { sha256: string; bytes: number };
      const expected = manifest.files[file]?.sha256;
      if (expected && stored.sha256 !== expected) throw new PublishError(`${file} arrived with sha256 ${stored.sha256}, the manifest says ${expected}`);
      bar.increment();
    }
  } finally {
    bar.stop();
  }
  console.log(`uploaded ${ref} (${files.length} files)`);
  if (!options.activate) return;

  const started = (await (await call("POST", "/v1/admin/models/activate", JSON.stringify({ model: ref }), "application/json")).json()) as RolloutState;
  if (!started.rollout) {
    console.log(`${ref} already serves`);
    return;
  }
  console.log(`switching ${started.rollout.from.model} → ${ref}: ${started.rollout.total} documents to re-embed in the background`);
  if (!options.wait) return;
  const progress = new SingleBar({ format: "re-embedding [{bar}] {value}/{total} documents  {phase}" }, Presets.shades_classic);
  progress.start(started.rollout.total, 0, { phase: "copying" });
  try {
    for (;;) {
      const state = (await (await call("GET", "/v1/admin/models")).json()) as RolloutState;
      if (!state.rollout) {
        progress.stop();
        if (state.route.active.model !== ref) throw new PublishError(`the switch to ${ref} was abandoned; ${state.route.active.model} serves`);
        console.log(`${ref} serves now (rollback: POST /v1/admin/models/rollback)`);
        return;
      }
      progress.setTotal(Math.max(state.rollout.total, state.rollout.copied));
      progress.update(state.rollout.copied, { phase: state.rollout.lastError ? `retrying: ${state.rollout.lastError.message}` : state.rollout.phase });
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
  } finally {
    progress.stop();
  }
}

publish().catch((error: unknown) => {
  console.error(error instanceof PublishError ? `model:publish: ${error.message}` : error);
  process.exitCode = 1;
});
