/**
 * Documents as passages, chosen per artifact: the manifest's `retrieval.documentPassages` (validated against the
 * architecture, never tuned on the test split), the rule `npm run eval:document-passages` chooses by, and the tool and
 * the eval as a user runs them — on a corpus whose documents differ only past the model's window, where only passages
 * can tell them apart densely, the tool chooses passages and `--save` writes them, and the eval then embeds documents
 * as the manifest says (as the Worker indexes them) unless told `--passages none`.
 */
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { passagesVerdict } from "../../bench/eval/passage-choice.js";
import { parseManifest } from "../../src/model/index.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const tsx = path.join(root, "node_modules", ".bin", "tsx");
const scratch = mkdtempSync(path.join(os.tmpdir(), "document-passages-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const bundled = (JSON.parse(readFileSync(path.join(root, "model-artifacts", "bundled.json"), "utf8")) as { artifact: string }).artifact;

const tunedOn = {
  dataset: "scifact",
  split: "train",
  queries: 809,
  dense: { ndcg10: 0.3, ndcg10Whole: 0.28, standardError: 0.007 },
  hybrid: { ndcg10: 0.69, ndcg10Whole: 0.688, standardError: 0.002 },
  meanPassages: 4.25,
  date: "2026-11-28",
  dims: 128,
  variant: "int8w",
};

describe("manifest retrieval.documentPassages", () => {
  const text = readFileSync(path.join(root, "model-artifacts", bundled, "manifest.json"), "utf8");
  const raw = JSON.parse(text) as Record<string, unknown> & { retrieval?: Record<string, unknown>; architecture: { maxLength: number } };
  const withPassages = (value: unknown) => ({ ...raw, retrieval: { ...raw.retrieval, documentPassages: value } });
  const chosen = { maxPieces: 120, maxPassages: 8, tunedOn };

  it("validates beside the other retrieval defaults", () => {
    expect(parseManifest(withPassages(chosen)).retrieval?.documentPassages).toEqual(chosen);
  });

  it("refuses passages longer than the model reads, too many of them, a test-split choice, no measurement and unknown fields", () => {
    const maxLength = raw.architecture.maxLength;
    expect(() => parseManifest(withPassages({ ...chosen, maxPieces: maxLength + 1 }))).toThrow(
      new RegExp(`must be at most the architecture's maxLength \\(${maxLength}\\)[\\s\\S]*retrieval\\.documentPassages\\.maxPieces`),
    );
    expect(() => parseManifest(withPassages({ ...chosen, maxPieces: 8 }))).toThrow(/maxPieces/);
    expect(() => parseManifest(withPassages({ ...chosen, maxPassages: 65 }))).toThrow(/maxPassages/);
    expect(() => parseManifest(withPassages({ ...chosen, tunedOn: { ...tunedOn, split: "test" } }))).toThrow(/must not be chosen on the test split/);
    expect(() => parseManifest(withPassages({ maxPieces: 120, maxPassages: 8 }))).toThrow(/tunedOn/);
    expect(() => parseManifest(withPassages({ ...chosen, scoring: "max" }))).toThrow(/documentPassages/);
  });
});

describe("the passages rule", () => {
  const flat = { ndcg10: 0.69, ndcg10Whole: 0.69, standardError: 0.002 };
  it("takes passages only when dense gains beyond the noise and hybrid does not lose beyond it", () => {
    expect(passagesVerdict({ ndcg10: 0.31, ndcg10Whole: 0.29, standardError: 0.007 }, flat)).toBe("chosen");
    expect(passagesVerdict({ ndcg10: 0.31, ndcg10Whole: 0.29, standardError: 0.007 }, { ...flat, ndcg10: 0.6885 })).toBe("chosen");
    expect(passagesVerdict({ ndcg10: 0.2944, ndcg10Whole: 0.2926, standardError: 0.0073 }, flat)).toBe("the dense list gains no more than the noise");
    expect(passagesVerdict({ ndcg10: 0.31, ndcg10Whole: 0.29, standardError: 0.007 }, { ndcg10: 0.6842, ndcg10Whole: 0.6884, standardError: 0.0023 })).toBe(
      "the hybrid ranking loses beyond the noise",
    );
    expect(passagesVerdict({ ndcg10: 0.29, ndcg10Whole: 0.31, standardError: 0.001 }, flat)).toBe("the dense list gains no more than the noise");
  });
});

function run(script: string, args: string[]): { status: number | null; stderr: string; json: Record<string, unknown> | null } {
  const result = spawnSync(tsx, [path.join(root, script), ...args], { cwd: root, encoding: "utf8", timeout: 120_000 });
  let json: Record<string, unknown> | null = null;
  try {
    json = JSON.parse(result.stdout.trim().split("\n").pop() ?? "") as Record<string, unknown>;
  } catch {
    json = null;
  }
  return { status: result.status, stderr: result.stderr, json };
}

/**
 * Eight reports that share a title and ~155–175 word pieces of boilerplate (with the 16k or the 8k vocabulary) and differ
 * only in a last sentence past the model's 128-piece window; each query asks about one last sentence.
 */
function boilerplateCorpus(dir: string): void {
  const filler =
    "The annual report of the regional council covers budgets, meetings, staffing, committees, minutes, schedules, procurement, audits, " +
    "correspondence, archives, policies, reviews and the usual administrative matters of the year. ";
  const endings: [string, string][] = [
    ["Espresso is brewed by forcing hot water through finely ground coffee.", "how is espresso brewed"],
    ["Glaciers carve deep valleys as they slide downhill.", "how do glaciers carve valleys"],
    ["A bicycle chain lasts longer when it is cleaned and oiled.", "how to clean a bicycle chain"],
    ["Tides rise and fall because of the pull of the moon.", "why do tides rise and fall"],
    ["Bread dough rises when yeast ferments the sugars.", "why does bread dough rise"],
    ["Volcanoes erupt when magma pressure builds under the crust.", "why do volcanoes erupt"],
    ["Bees communicate the location of flowers with a waggle dance.", "how do bees communicate"],
    ["Rainbows appear when sunlight is refracted by raindrops.", "how do rainbows form"],
  ];
  mkdirSync(path.join(dir, "qrels"), { recursive: true });
  writeFileSync(path.join(dir, "corpus.jsonl"), endings.map(([end], i) => JSON.stringify({ _id: `d${i}`, title: "Council report", text: filler.repeat(3) + end })).join("\n") + "\n");
  writeFileSync(path.join(dir, "queries.jsonl"), endings.map(([, query], i) => JSON.stringify({ _id: `q${i}`, text: query })).join("\n") + "\n");
  const qrels = ["query-id\tcorpus-id\tscore", ...endings.map((_, i) => `q${i}\td${i}\t1`)].join("\n") + "\n";
  for (const split of ["train", "test"]) writeFileSync(path.join(dir, "qrels", `${split}.tsv`), qrels);
}

describe("npm run eval:document-passages", () => {
  it("chooses passages where documents differ past the window, --save ships them, and the eval then indexes as the manifest says", () => {
    const dataset = path.join(scratch, "reports");
    boilerplateCorpus(dataset);
    const artifacts = path.join(scratch, "artifacts");
    const model = path.join(artifacts, bundled);
    cpSync(path.join(root, "model-artifacts", bundled), model, { recursive: true });
    writeFileSync(path.join(artifacts, "CHANGELOG.md"), "# Changelog\n");

    const refused = run("bench/document-passages.ts", ["--dataset", dataset, "--model", model, "--split", "test", "--save"]);
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(/test/);

    const chosen = run("bench/document-passages.ts", ["--dataset", dataset, "--model", model, "--save"]);
    expect(chosen.status, chosen.stderr).toBe(0);
    const result = chosen.json as { chosen: string; dense: { ndcg10: number; ndcg10Whole: number }; hybrid: { ndcg10: number; ndcg10Whole: number }; passages: { mean_per_document: number } };
    expect(result.chosen).toBe("passages");
    // Whole, every report reads as the same boilerplate, so all eight tie (NDCG@10 0.494 by id order); as passages each
    // one's last sentence counts, in a last passage that is mostly that sentence.
    expect(result.dense.ndcg10).toBeGreaterThan(result.dense.ndcg10Whole + 0.2);
    expect(result.passages.mean_per_document).toBeGreaterThan(1);
    const saved = parseManifest(readFileSync(path.join(model, "manifest.json"), "utf8")).retrieval?.documentPassages;
    expect(saved).toMatchObject({ maxPieces: 120, maxPassages: 8, tunedOn: { dataset: "reports", split: "train", queries: 8, dense: { ndcg10: result.dense.ndcg10 } } });
    expect(readFileSync(path.join(artifacts, "CHANGELOG.md"), "utf8")).toMatch(/document passages chosen: .*passages of ≤ 120 pieces/);

    const served = run("bench/eval.ts", ["--dataset", dataset, "--split", "train", "--mode", "dense", "--model", model]);
    expect(served.status, served.stderr).toBe(0);
    expect(served.json).toMatchObject({ "ndcg@10": result.dense.ndcg10, document_passages: { max_pieces: 120, max_passages: 8, scoring: "mean" } });
    const whole = run("bench/eval.ts", ["--dataset", dataset, "--split", "train", "--mode", "dense", "--model", model, "--passages", "none"]);
    expect(whole.status, whole.stderr).toBe(0);
    expect(whole.json).toMatchObject({ "ndcg@10": result.dense.ndcg10Whole, document_passages: null });
  });
});
