/**
 * The evaluation CLIs as a user runs them (`tsx bench/eval.ts …`, `tsx bench/ablations.ts …`, `tsx bench/context-length.ts …`) with the bundled model on
 * a tiny BEIR fixture (test/fixtures/beir-tiny: 12 documents, 6 judged queries and one unjudged): the JSON printed last
 * on stdout carries the documented keys, the run and result files are written, --mode sparse fails with a message that
 * names the artifact, and the ablation writes its four report files.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { edgeVariantFor, parseManifest } from "../../src/model/index.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const tsx = path.join(root, "node_modules", ".bin", "tsx");
const dataset = path.join(root, "test", "fixtures", "beir-tiny");
const scratch = mkdtempSync(path.join(os.tmpdir(), "eval-cli-"));
/** The model the eval defaults to: the one model-artifacts/bundled.json names. */
const bundled = (JSON.parse(readFileSync(path.join(root, "model-artifacts", "bundled.json"), "utf8")) as { artifact: string }).artifact;
/** Its manifest: which variants it has, and so which one the Worker runs it in. */
const bundledManifest = parseManifest(readFileSync(path.join(root, "model-artifacts", bundled, "manifest.json"), "utf8"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function run(script: string, args: string[]): { status: number | null; stdout: string; stderr: string; json: Record<string, unknown> | null } {
  const result = spawnSync(tsx, [path.join(root, script), ...args], { cwd: root, encoding: "utf8", timeout: 60_000 });
  const last = result.stdout.trim().split("\n").pop() ?? "";
  let json: Record<string, unknown> | null = null;
  try {
    json = JSON.parse(last) as Record<string, unknown>;
  } catch {
    json = null;
  }
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, json };
}

const METRIC_KEYS = ["ndcg@10", "mrr@10", "recall@50", "recall@100", "map@100"];
/** An artifact with a trained sparse head and a fusion tuned over the three lists. */
const SPARSE_MODEL = "taesr-edge-small@0.4.0";

describe("npm run eval", () => {
  it("bm25: prints the metrics and settings as one JSON object last, writes --out and --run-file", () => {
    const out = path.join(scratch, "bm25.json");
    const runFile = path.join(scratch, "bm25.run");
    const { status, json, stderr } = run("bench/eval.ts", ["--dataset", dataset, "--mode", "bm25", "--out", out, "--run-file", runFile]);
    expect(status, stderr).toBe(0);
    expect(json).not.toBeNull();
    for (const key of [...METRIC_KEYS, "queries", "docs", "latency_ms", "mode", "dims", "depth", "quant", "model"]) expect(json).toHaveProperty(key);
    for (const key of METRIC_KEYS) {
      expect(json![key]).toBeGreaterThanOrEqual(0);
      expect(json![key]).toBeLessThanOrEqual(1);
    }
    expect(json).toMatchObject({ dataset: "beir-tiny", queries: 6, docs: 12, mode: "bm25", model: bundled });
    expect(Object.keys(json!.latency_ms as object)).toEqual(["p50", "p95"]);
    // Lexical search finds each query's document: every judged query here shares its words with it.
    expect(json!["recall@100"]).toBe(1);
    expect(JSON.parse(readFileSync(out, "utf8"))).toEqual(json);
    const lines = readFileSync(runFile, "utf8").trim().split("\n");
    expect(lines[0]).toMatch(/^q1 Q0 d1 1 [\d.e-]+ taesr-bm25$/);
  });

  it("binary vectors in hybrid mode: the Worker's graphs, sign bits + int8 rescoring, FLOPs and index bytes reported", () => {
    const { status, json, stderr } = run("bench/eval.ts", ["--dataset", dataset, "--mode", "hybrid", "--quant", "binary", "--dims", "64", "--depth", "1"]);
    expect(status, stderr).toBe(0);
    const served = edgeVariantFor(bundledManifest);
    expect(json).toMatchObject({ mode: "hybrid", quant: "binary", model_variant: served, vectors: "binary-rescore", dims: 64, depth: "1", mean_depth: 1 });
    expect(json!.flops_per_query).toBeGreaterThan(0);
    // 64 sign bits (8 bytes) + 64 int8 codes and a float32 scale (68 bytes), plus the BM25 postings.
    expect((json!.index_bytes_per_doc as { dense: number }).dense).toBe(76);
  });

  it("--mode sparse exits non-zero with a message naming the artifact and the missing head", () => {
    const withoutHead = "taesr-edge-small@0.3.0";
    const { status, stderr, json } = run("bench/eval.ts", ["--dataset", dataset, "--mode", "sparse", "--model", path.join(root, "model-artifacts", withoutHead)]);
    expect(status).not.toBe(0);
    expect(json).toBeNull();
    expect(stderr).toContain(`${withoutHead} has no sparse head`);
    expect(stderr).toMatch(/manifest\.json declares no sparse \(SPLADE\) output/);
  });

  it("hybrid with a sparse-head model fuses the learned list at the manifest's weight; --no-sparse leaves it out", () => {
    const withHead = path.join(root, "model-artifacts", SPARSE_MODEL);
    const manifest = JSON.parse(readFileSync(path.join(withHead, "manifest.json"), "utf8")) as {
      architecture: { sparseHead?: boolean };
      retrieval?: { fusion?: { weights: { lexical: number; dense: number; sparse?: number }; withoutSparse?: { method: string; weights: { lexical: number; dense: number } } } };
    };
    expect(manifest.architecture.sparseHead, `${SPARSE_MODEL} is expected to have the sparse head`).toBe(true);
    const tuned = manifest.retrieval!.fusion!.weights;
    expect(tuned.sparse).toBeGreaterThan(0);

    const three = run("bench/eval.ts", ["--dataset", dataset, "--mode", "hybrid", "--model", withHead]);
    expect(three.status, three.stderr).toBe(0);
    expect(three.json).toMatchObject({ fusion_default: "manifest", weights: tuned, sparse_terms: { max_terms: 256 } });
    const bytes = three.json!.index_bytes_per_doc as { dense: number; bm25: number; sparse?: number; total: number };
    expect(bytes.sparse).toBeGreaterThan(0);
    expect(bytes.total).toBeCloseTo(bytes.dense + bytes.bm25 + bytes.sparse!, 3);

    // Without the list, the manifest's two-list tuning applies (method and weights), as in the Worker.
    const twoLists = manifest.retrieval!.fusion!.withoutSparse!;
    const two = run("bench/eval.ts", ["--dataset", dataset, "--mode", "hybrid", "--no-sparse", "--model", withHead]);
    expect(two.status, two.stderr).toBe(0);
    expect(two.json).toMatchObject({ fusion: twoLists.method, weights: twoLists.weights });
    expect(two.json).not.toHaveProperty("sparse_terms");
    expect(two.json!.index_bytes_per_doc).not.toHaveProperty("sparse");

    const cut = run("bench/eval.ts", ["--dataset", dataset, "--mode", "hybrid", "--sparse-terms", "8", "--model", withHead]);
    expect(cut.status, cut.stderr).toBe(0);
    const terms = cut.json!.sparse_terms as { max_terms: number; mean_doc_terms: number };
    expect(terms.max_terms).toBe(8);
    expect(terms.mean_doc_terms).toBeLessThanOrEqual(8);
    expect((cut.json!.index_bytes_per_doc as { sparse: number }).sparse).toBeLessThanOrEqual(64);

    const refused = run("bench/eval.ts", ["--dataset", dataset, "--mode", "dense", "--no-sparse"]);
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain("--no-sparse needs --mode hybrid");
  });

  it("--passage-scoring max stores a vector per passage and scores a document by its best one", () => {
    // Passages of ≤ 16 pieces split the fixture's documents; each passage row costs a stored vector.
    const max = run("bench/eval.ts", ["--dataset", dataset, "--mode", "dense", "--depth", "1", "--passages", "16x8", "--passage-scoring", "max"]);
    expect(max.status, max.stderr).toBe(0);
    const passages = max.json!.document_passages as { max_pieces: number; max_passages: number; mean: number; scoring: string };
    expect(passages).toMatchObject({ max_pieces: 16, max_passages: 8, scoring: "max" });
    expect(passages.mean).toBeGreaterThan(1);
    // Every document is still ranked once (12 documents, all among the first 100).
    expect(max.json).toMatchObject({ docs: 12, "recall@100": 1 });
    const perVector = run("bench/eval.ts", ["--dataset", dataset, "--mode", "dense", "--depth", "1"]).json!.index_bytes_per_doc as { dense: number };
    expect((max.json!.index_bytes_per_doc as { dense: number }).dense).toBeCloseTo(perVector.dense * passages.mean, 1);

    // A document that fits one passage is its own single row: best-passage scoring then ranks exactly as the index does.
    const whole = run("bench/eval.ts", ["--dataset", dataset, "--mode", "dense", "--depth", "1"]);
    const onePassage = run("bench/eval.ts", ["--dataset", dataset, "--mode", "dense", "--depth", "1", "--passages", "120x8", "--passage-scoring", "max"]);
    expect(onePassage.status, onePassage.stderr).toBe(0);
    expect((onePassage.json!.document_passages as { mean: number }).mean).toBe(1);
    for (const key of METRIC_KEYS) expect(onePassage.json![key], key).toBeCloseTo(whole.json![key] as number, 4);

    const refused = run("bench/eval.ts", ["--dataset", dataset, "--mode", "dense", "--passage-scoring", "max"]);
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain("--passage-scoring max scores a document by its best passage: give --passages");
  });

  it("rejects an option the mode would silently ignore", () => {
    const { status, stderr } = run("bench/eval.ts", ["--dataset", dataset, "--mode", "dense", "--sweep"]);
    expect(status).not.toBe(0);
    expect(stderr).toContain("--sweep needs --mode hybrid");
  });
});

describe("npm run eval:context-length", () => {
  it("ranks by BM25 over each document's first N pieces and over whole documents", () => {
    const { status, json, stderr } = run("bench/context-length.ts", ["--dataset", dataset, "--cuts", "1000,2"]);
    expect(status, stderr).toBe(0);
    expect(json).toMatchObject({ dataset: "beir-tiny", split: "test", queries: 6, docs: 12, tokenizer: bundled, model_context: bundledManifest.architecture.maxLength });
    const cuts = json!["cuts"] as { pieces: number; truncated_share: number; "ndcg@10": number }[];
    // Sorted by length; two pieces cut every document, a thousand none, and reading more finds more.
    expect(cuts.map((c) => [c.pieces, c.truncated_share])).toEqual([
      [2, 1],
      [1000, 0],
    ]);
    expect(cuts[1]!["ndcg@10"]).toBe((json!["whole_document"] as { "ndcg@10": number })["ndcg@10"]);
    expect(cuts[0]!["ndcg@10"]).toBeLessThan(cuts[1]!["ndcg@10"]);
    expect(stderr).toContain("first 2 pieces: BM25 NDCG@10");
  });

  it("refuses a cut that is not a positive integer", () => {
    const { status, stderr, json } = run("bench/context-length.ts", ["--dataset", dataset, "--cuts", "2,x"]);
    expect(status).not.toBe(0);
    expect(json).toBeNull();
    expect(stderr).toContain('expected comma-separated positive integers (word pieces), got "2,x"');
  });
});

describe("npm run eval:ablations", () => {
  it("writes ablations.json, ablations.md and both charts, and prints the JSON last", () => {
    const outDir = path.join(scratch, "ablations");
    const { status, json, stderr } = run("bench/ablations.ts", ["--dataset", dataset, "--out-dir", outDir]);
    expect(status, stderr).toBe(0);
    const saved = JSON.parse(readFileSync(path.join(outDir, "ablations.json"), "utf8")) as { rows: { id: string; kind: string; note?: string; metrics?: object }[] };
    expect(json).toEqual(saved);
    const ids = saved.rows.map((row) => row.id);
    for (const id of ["mode-bm25", "mode-dense", "mode-hybrid-convex", "mode-hybrid-rrf", "mode-late", "depth-1", "depth-3", "depth-6", "depth-auto", "matryoshka-64", "matryoshka-384", "quant-fp32", "vectors-binary-rescore-128", "pca-64"]) {
      expect(ids).toContain(id);
    }
    const markdown = readFileSync(path.join(outDir, "ablations.md"), "utf8");
    expect(markdown).toContain("| group | setting | NDCG@10 |");
    // The sparse rows: measured for a model with the head (the list alone, and the Worker's three-list default),
    // listed as unavailable, saying why, for one without.
    const hasHead = (JSON.parse(readFileSync(path.join(root, "model-artifacts", bundled, "manifest.json"), "utf8")) as { architecture: { sparseHead?: boolean } }).architecture.sparseHead === true;
    const sparse = saved.rows.find((row) => row.id === "mode-sparse")!;
    if (hasHead) {
      expect(sparse).toMatchObject({ kind: "measured" });
    } else {
      expect(sparse).toMatchObject({ kind: "unavailable", note: `not available: ${bundled} has no sparse head` });
      expect(sparse.metrics).toBeUndefined();
      expect(markdown).toContain(`not available: ${bundled} has no sparse head`);
    }
    expect(stderr).toContain(`# Ablations: ${bundled} on beir-tiny`);
    for (const chart of ["quality-vs-dims.svg", "quality-vs-latency.svg"]) {
      const svg = readFileSync(path.join(outDir, chart), "utf8");
      expect(svg.startsWith("<svg")).toBe(true);
      expect(svg.trim().endsWith("</svg>")).toBe(true);
      expect(svg).toContain("<circle data-series=");
    }
  });
});

describe("npm run eval:ablations with a sparse-head model", () => {
  it("measures the sparse list alone and the three-list hybrid default as rows", () => {
    const outDir = path.join(scratch, "ablations-sparse");
    const { status, json, stderr } = run("bench/ablations.ts", ["--dataset", dataset, "--out-dir", outDir, "--model", path.join(root, "model-artifacts", SPARSE_MODEL)]);
    expect(status, stderr).toBe(0);
    const rows = (json as { rows: { id: string; kind: string; label: string; metrics?: { "ndcg@10": number } }[] }).rows;
    for (const id of ["mode-sparse", "mode-hybrid-sparse"]) {
      const row = rows.find((r) => r.id === id);
      expect(row, id).toMatchObject({ kind: "measured" });
      expect(row!.metrics!["ndcg@10"], id).toBeGreaterThanOrEqual(0);
    }
    expect(rows.find((r) => r.id === "mode-hybrid-sparse")!.label).toMatch(/the manifest's convex fusion/);
    expect(readFileSync(path.join(outDir, "ablations.md"), "utf8")).toContain("sparse (SPLADE head");
  });
});

describe("npm run eval:quantization", () => {
  interface QuantRow {
    name: string;
    "ndcg@10": number;
    retained: number;
    paired_se: number;
    changed_queries: number;
    query_cosine: { mean: number; min: number } | null;
    document_cosine: { mean: number; min: number } | null;
  }
  interface QuantReport {
    model: string;
    graph_bytes: Record<string, number>;
    datasets: { dataset: string; split: string; queries: number; fp32: number; rows: QuantRow[] }[];
    pooled: (QuantRow & { queries: number })[];
  }

  it("compares every compressed setting with fp32 per dataset and pooled, with embedding cosines", () => {
    const out = path.join(scratch, "quantization.json");
    const { status, json, stderr } = run("bench/quantization.ts", ["--dataset", dataset, "--dataset", `${dataset}:test`, "--out", out]);
    expect(status, stderr).toBe(0);
    const report = json as unknown as QuantReport;
    expect(JSON.parse(readFileSync(out, "utf8"))).toEqual(report);
    expect(report.model).toBe(bundled);
    expect(report.graph_bytes.fp32).toBeGreaterThan(report.graph_bytes.int8!);
    expect(report.graph_bytes.int8).toBeGreaterThan(report.graph_bytes.int4!);
    expect(report.datasets.map((d) => `${d.dataset}:${d.split}:${d.queries}`)).toEqual(["beir-tiny:test:6", "beir-tiny:test:6"]);
    // The rows of the variants the bundled artifact has (int4 and int8w came after the first artifacts).
    const has = (variant: "int4" | "int8w") => bundledManifest.variants[variant] !== undefined;
    const names = [
      "int8 graphs",
      ...(has("int4") ? ["int4 graphs"] : []),
      ...(has("int8w") ? ["int8w graphs"] : []),
      "int8 graphs + int8 vectors",
      "int8 graphs + sign bits, int8 rescoring",
      "int8 graphs + sign bits alone",
      ...(has("int8w") ? ["int8w graphs + int8 vectors", "int8w graphs + sign bits, int8 rescoring"] : []),
    ];
    for (const d of report.datasets) {
      expect(d.rows.map((r) => r.name)).toEqual(names);
      for (const r of d.rows) {
        expect(r.retained).toBeCloseTo(r["ndcg@10"] / d.fp32, 2);
        // Graph rows carry the cosines to fp32: a quantised graph stays close to, but not exactly on, the fp32 vectors.
        if (r.name.endsWith("graphs")) {
          for (const cos of [r.query_cosine!, r.document_cosine!]) {
            expect(cos.min).toBeGreaterThan(0.99);
            expect(cos.min).toBeLessThanOrEqual(cos.mean);
            expect(cos.mean).toBeLessThan(1);
          }
        } else {
          expect(r.query_cosine).toBeNull();
        }
      }
    }
    // The same set twice: pooled over 12 queries, with every per-dataset difference counted twice.
    expect(report.pooled.map((r) => r.queries)).toEqual(names.map(() => 12));
    for (const [i, r] of report.pooled.entries()) expect(r.changed_queries).toBe(2 * report.datasets[0]!.rows[i]!.changed_queries);
    expect(stderr).toContain("| set | setting | NDCG@10 | of fp32 |");
  });

  it("names a split whose qrels are missing and exits non-zero", () => {
    const { status, stderr, json } = run("bench/quantization.ts", ["--dataset", `${dataset}:nosuch`]);
    expect(status).not.toBe(0);
    expect(json).toBeNull();
    expect(stderr).toContain("cannot read the nosuch qrels");
  });
});
