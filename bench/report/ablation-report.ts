/**
 * The ablation report: the shape of `ablations.json`, the Markdown table with a short reading of it, and the two SVG
 * charts (quality vs dense width per stored format; quality vs per-query latency for every measured row). Pure
 * functions of the measured data, so the report can be re-rendered from a saved ablations.json.
 *
 * Published figures are kept apart from measurements: they are rows of kind "reference", shown in their own table and
 * as dashed lines on the latency chart, always labelled as published (source named), never mixed into our rows.
 */
import type { IndexBytesPerDoc } from "../eval/evaluate.js";
import { renderChart, type ChartSeries } from "./svg-chart.js";

export type AblationGroup = "mode" | "depth" | "matryoshka" | "model quant" | "vectors" | "pca" | "peer";

export interface AblationSettings {
  encoder: string;
  model_variant: string | null;
  depth: string | null;
  early_exit: boolean | null;
  mode: string;
  fusion: string | null;
  dims: number | null;
  vectors: string | null;
  projection: string | null;
}

export interface MeasuredMetrics {
  "ndcg@10": number;
  "mrr@10": number;
  "recall@50": number;
  "recall@100": number;
  "map@100": number;
  latency_ms: { p50: number; p95: number };
  mean_depth: number | null;
  mean_query_tokens: number | null;
  flops_per_query: number | null;
  index_bytes_per_doc: IndexBytesPerDoc;
}

export interface AblationRow {
  /** Stable key, e.g. "depth-1", "vectors-binary-rescore-128". */
  id: string;
  group: AblationGroup;
  label: string;
  /** Short name for chart labels. */
  short: string;
  kind: "measured" | "unavailable";
  settings: AblationSettings;
  metrics?: MeasuredMetrics;
  /** NDCG@10 / the baseline's NDCG@10. */
  retained?: number;
  /** Why a row has no numbers, or what to know about it. */
  note?: string;
}

export interface DimsSweepPoint {
  series: "matryoshka-float" | "matryoshka-int8" | "binary" | "binary-rescore" | "pca-float";
  dims: number;
  "ndcg@10": number;
  "recall@100": number;
  latency_p50_ms: number;
  index_bytes_per_doc: number;
}

export interface PublishedReference {
  name: string;
  "ndcg@10": number;
  source: string;
}

export interface PassInfo {
  label: string;
  encoder: string;
  variant: string | null;
  depth: string | null;
  early_exit: boolean | null;
  embed_seconds: number;
  mean_doc_depth: number | null;
  token_vectors: boolean;
  peak_rss_bytes_after: number;
}

export interface AblationReport {
  dataset: string;
  split: string;
  queries: number;
  docs: number;
  model: string;
  baseline: { id: string; label: string; "ndcg@10": number };
  rows: AblationRow[];
  dims_sweep: DimsSweepPoint[];
  passes: PassInfo[];
  memory: {
    artifact_bytes: { int8: number; fp32: number };
    peak_rss_bytes: number;
    index_bytes_per_doc: Record<string, number>;
  };
  /** Share of the corpus vectors' variance held by the leading k principal components, by k. */
  pca_explained_variance: Record<string, number>;
  flops_by_depth: { depth: string; mean_query_tokens: number; flops_per_query: number }[];
  references: PublishedReference[];
  notes: string[];
  files?: Record<string, string>;
  elapsed_seconds?: number;
}

/** Published SciFact test NDCG@10 figures (BEIR leaderboard / model cards) — references, not our measurements. */
export const SCIFACT_PUBLISHED: readonly PublishedReference[] = [
  { name: "BM25 (Pyserini)", "ndcg@10": 0.679, source: "BEIR (Thakur et al., 2021), Pyserini multifield BM25" },
  { name: "all-MiniLM-L6-v2", "ndcg@10": 0.645, source: "sentence-transformers / MTEB" },
  { name: "bge-small-en-v1.5", "ndcg@10": 0.713, source: "BAAI model card / MTEB" },
  { name: "SPLADE++ (ED)", "ndcg@10": 0.704, source: "Formal et al., 2022 / BEIR" },
];

const f3 = (value: number) => value.toFixed(3);
const f2 = (value: number) => value.toFixed(2);
const thousands = (value: number) => Math.round(value).toLocaleString("en-US");

export function formatFlops(flops: number | null): string {
  if (flops === null) return "—";
  return `${(flops / 1e6).toFixed(1)} M`;
}

export function formatBytes(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${Math.round(bytes)} B`;
}

function indexBytes(bytes: IndexBytesPerDoc): string {
  const parts: string[] = [];
  if (bytes.dense !== null) parts.push(`${thousands(bytes.dense)} dense`);
  if (bytes.bm25 !== null) parts.push(`${thousands(bytes.bm25)} BM25`);
  if (bytes.late !== null) parts.push(`${thousands(bytes.late)} tokens`);
  return parts.length > 1 ? `${thousands(bytes.total)} (${parts.join(" + ")})` : thousands(bytes.total);
}

function percent(ratio: number | undefined): string {
  if (ratio === undefined || !Number.isFinite(ratio)) return "—";
  return `${thousands(ratio * 100)}%`;
}

const GROUP_TITLES: Record<AblationGroup, string> = {
  mode: "retrieval mode",
  depth: "recursion depth",
  matryoshka: "Matryoshka width",
  "model quant": "model graphs",
  vectors: "stored vectors",
  pca: "PCA vs prefix",
  peer: "quality peer",
};

export function markdownTable(rows: readonly AblationRow[]): string {
  const header =
    "| group | setting | NDCG@10 | MRR@10 | R@100 | MAP@100 | p50 ms | p95 ms | mean depth | encoder FLOPs/query | index bytes/doc | NDCG vs baseline |";
  const rule = "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |";
  const lines = rows.map((row) => {
    const group = GROUP_TITLES[row.group];
    if (row.kind === "unavailable" || !row.metrics) {
      return `| ${group} | ${row.label} | ${row.note ?? "not available"} | | | | | | | | | |`;
    }
    const m = row.metrics;
    return [
      "",
      group,
      row.label,
      f3(m["ndcg@10"]),
      f3(m["mrr@10"]),
      f3(m["recall@100"]),
      f3(m["map@100"]),
      f2(m.latency_ms.p50),
      f2(m.latency_ms.p95),
      m.mean_depth === null ? "—" : f2(m.mean_depth),
      formatFlops(m.flops_per_query),
      indexBytes(m.index_bytes_per_doc),
      percent(row.retained),
      "",
    ].join(" | ").trim();
  });
  return [header, rule, ...lines].join("\n");
}

const SWEEP_TITLES: Record<DimsSweepPoint["series"], string> = {
  "matryoshka-float": "Matryoshka prefix, float32",
  "matryoshka-int8": "Matryoshka prefix, int8",
  binary: "sign bits only (Hamming)",
  "binary-rescore": "sign bits + int8 rescoring",
  "pca-float": "PCA of the corpus, float32",
};

export function dimsSweepTable(points: readonly DimsSweepPoint[]): string {
  const dims = [...new Set(points.map((p) => p.dims))].sort((a, b) => a - b);
  const series = Object.keys(SWEEP_TITLES) as DimsSweepPoint["series"][];
  const lines = [`| stored vectors | ${dims.map((d) => `${d}-d`).join(" | ")} |`, `| --- | ${dims.map(() => "---:").join(" | ")} |`];
  for (const name of series) {
    const cells = dims.map((d) => {
      const point = points.find((p) => p.series === name && p.dims === d);
      return point ? `${f3(point["ndcg@10"])} (${thousands(point.index_bytes_per_doc)} B)` : "—";
    });
    if (cells.every((c) => c === "—")) continue;
    lines.push(`| ${SWEEP_TITLES[name]} | ${cells.join(" | ")} |`);
  }
  return lines.join("\n");
}

function row(report: AblationReport, id: string): AblationRow | undefined {
  return report.rows.find((r) => r.id === id && r.kind === "measured");
}

function ndcg(report: AblationReport, id: string): number | undefined {
  return row(report, id)?.metrics?.["ndcg@10"];
}

/** A few sentences that say what the table shows, computed from it (so they stay true when the numbers move). */
export function readingOf(report: AblationReport): string[] {
  const lines: string[] = [];
  const base = report.baseline["ndcg@10"];
  const bm25 = ndcg(report, "mode-bm25");
  const hybrid = ndcg(report, "mode-hybrid-convex");
  const late = ndcg(report, "mode-late");
  const measured = report.rows.filter((r) => r.kind === "measured" && r.metrics);
  const best = [...measured].sort((a, b) => b.metrics!["ndcg@10"] - a.metrics!["ndcg@10"])[0];
  if (best) lines.push(`Best measured NDCG@10: ${f3(best.metrics!["ndcg@10"])} (${GROUP_TITLES[best.group]}: ${best.label}).`);
  if (bm25 !== undefined && hybrid !== undefined) {
    const better = Math.max(bm25, base);
    const verdict =
      hybrid >= better - 0.0005
        ? `at or above the better of its two lists (${f3(better)})`
        : `${f3(better - hybrid)} below the better of its two lists (${f3(better)})`;
    lines.push(`Dense baseline ${f3(base)}, BM25 ${f3(bm25)}; hybrid (convex) ${f3(hybrid)} is ${verdict}.`);
  }
  if (late !== undefined && hybrid !== undefined) {
    const delta = late - hybrid;
    lines.push(
      `Late interaction (MaxSim over untrained token vectors, top 100 of hybrid) ${delta >= 0 ? "adds" : "costs"} ${f3(Math.abs(delta))} NDCG@10 ` +
        `against hybrid, for ${thousands(row(report, "mode-late")?.metrics?.index_bytes_per_doc.late ?? 0)} bytes of int8 token matrices per document.`,
    );
  }
  const lateDepths = [1, 3, 6].map((d) => [d, ndcg(report, `depth-${d}-late`)] as const).filter(([, v]) => v !== undefined);
  if (late !== undefined && lateDepths.length) {
    lines.push(
      `Late interaction with the same depth on both sides: ${lateDepths.map(([d, v]) => `depth ${d} ${f3(v!)}`).join(", ")} ` +
        `(router: ${f3(late)}); recall@100 cannot change, since only the top 100 is reordered.`,
    );
  }
  const d1 = ndcg(report, "depth-1");
  const d6 = ndcg(report, "depth-6");
  const router = row(report, "depth-auto");
  const routerPass = report.passes.find((p) => p.variant === "int8" && p.depth === "auto" && p.early_exit === true);
  if (router?.metrics?.mean_depth != null && routerPass?.mean_doc_depth != null) {
    lines.push(
      `With the router, documents run at ${f2(routerPass.mean_doc_depth)} steps on average (long texts, batches of 16) and queries at ` +
        `${f2(router.metrics.mean_depth)}: the two sides of a comparison come from different depths, unlike in the fixed-depth rows.`,
    );
  }
  if (d1 !== undefined && d6 !== undefined && router?.metrics) {
    lines.push(
      `Depth: 1 step ${f3(d1)}, 3 steps ${f3(ndcg(report, "depth-3") ?? Number.NaN)}, 6 steps ${f3(d6)}; the router averages ` +
        `${f2(router.metrics.mean_depth ?? Number.NaN)} steps per query at ${formatFlops(router.metrics.flops_per_query)}FLOPs ` +
        `(depth 6: ${formatFlops(row(report, "depth-6")?.metrics?.flops_per_query ?? null)}FLOPs) for NDCG@10 ${f3(router.metrics["ndcg@10"])}.`,
    );
  }
  const m64 = ndcg(report, "matryoshka-64");
  const m384 = ndcg(report, "matryoshka-384");
  if (m64 !== undefined && m384 !== undefined && m384 > 0) {
    lines.push(`Matryoshka: 64 dims keep ${percent(m64 / m384)} of the 384-d NDCG@10 (${f3(m64)} vs ${f3(m384)}) at a sixth of the bytes.`);
  }
  const float128 = ndcg(report, "vectors-float-128");
  const bin = ndcg(report, "vectors-binary-128");
  const binr = ndcg(report, "vectors-binary-rescore-128");
  const i8 = ndcg(report, "vectors-int8-128");
  if (float128 !== undefined && bin !== undefined && binr !== undefined && i8 !== undefined && float128 > 0) {
    lines.push(
      `Stored vectors at 128-d: int8 keeps ${percent(i8 / float128)} of float32, sign bits alone ${percent(bin / float128)}, ` +
        `sign bits + int8 rescoring of the top 1,000 ${percent(binr / float128)}.`,
    );
  }
  const p64 = ndcg(report, "pca-64");
  const p128 = ndcg(report, "pca-128");
  const m128 = ndcg(report, "matryoshka-128");
  if (p64 !== undefined && p128 !== undefined && m64 !== undefined && m128 !== undefined) {
    lines.push(`PCA vs prefix: 64-d ${f3(p64)} vs ${f3(m64)}, 128-d ${f3(p128)} vs ${f3(m128)} (PCA fitted on this corpus's 384-d vectors).`);
  }
  const explained = Object.entries(report.pca_explained_variance);
  if (explained.length) {
    const concentrated = (explained[0]![1] ?? 0) > 0.9;
    lines.push(
      `The corpus vectors are ${concentrated ? "strongly anisotropic" : "spread out"}: the leading principal components hold ` +
        `${explained.map(([k, v]) => `${(v * 100).toFixed(1)}% (${k})`).join(", ")} of their variance` +
        `${concentrated ? ", so PCA at 64 dims or more keeps nearly everything: the model spreads the corpus over few of its 384 dimensions" : ""}.`,
    );
  }
  const fp32 = ndcg(report, "quant-fp32");
  if (fp32 !== undefined) lines.push(`fp32 graphs: ${f3(fp32)} vs int8 ${f3(base)} at the same settings.`);
  const peers = report.rows.filter((r) => r.group === "peer" && r.metrics);
  for (const peer of peers) lines.push(`Peer ${peer.label}: NDCG@10 ${f3(peer.metrics!["ndcg@10"])}, p50 ${f2(peer.metrics!.latency_ms.p50)} ms per query.`);
  return lines;
}

export function renderMarkdown(report: AblationReport): string {
  const lines: string[] = [];
  lines.push(`# Ablations: ${report.model} on ${report.dataset} (${report.split})`);
  lines.push("");
  lines.push(
    `${report.queries} judged queries, ${thousands(report.docs)} documents. Baseline: ${report.baseline.label} (NDCG@10 ${f3(report.baseline["ndcg@10"])}); ` +
      `"NDCG vs baseline" is each row's NDCG@10 over it. Latency is per query: encode (measured once per corpus pass, one query per call) ` +
      `plus that setting's search, on this machine's CPU (onnxruntime-node, 1 thread). Encoder FLOPs follow src/model/flops.ts at each query's ` +
      `token count and depth. Index bytes are per document as stored.`,
  );
  lines.push("");
  lines.push(markdownTable(report.rows));
  lines.push("");
  lines.push("## Reading");
  lines.push("");
  for (const sentence of readingOf(report)) lines.push(`- ${sentence}`);
  lines.push("");
  lines.push("## Dense width × stored vectors (NDCG@10, bytes per document)");
  lines.push("");
  lines.push(dimsSweepTable(report.dims_sweep));
  lines.push("");
  lines.push("![quality vs dimensions](quality-vs-dims.svg)");
  lines.push("");
  lines.push("![quality vs latency](quality-vs-latency.svg)");
  lines.push("");
  lines.push("## Memory and compute");
  lines.push("");
  lines.push(
    `- Artifact: ${formatBytes(report.memory.artifact_bytes.int8)} int8, ${formatBytes(report.memory.artifact_bytes.fp32)} fp32 (graphs + tokenizer, from the manifest).`,
  );
  lines.push(`- Peak RSS of this run: ${formatBytes(report.memory.peak_rss_bytes)} (all passes, including the int8 token matrices of the corpus).`);
  lines.push(
    `- Index bytes per document: ${Object.entries(report.memory.index_bytes_per_doc)
      .map(([name, bytes]) => `${name} ${thousands(bytes)}`)
      .join(", ")}.`,
  );
  if (report.flops_by_depth.length) {
    lines.push(
      `- Encoder FLOPs per query: ${report.flops_by_depth
        .map((f) => `depth ${f.depth} ${formatFlops(f.flops_per_query)} (mean ${f2(f.mean_query_tokens)} tokens)`)
        .join("; ")}.`,
    );
  }
  lines.push("");
  lines.push("| corpus pass | embed time | mean doc depth | peak RSS so far |");
  lines.push("| --- | ---: | ---: | ---: |");
  for (const pass of report.passes) {
    lines.push(
      `| ${pass.label}${pass.token_vectors ? " + token vectors" : ""} | ${f2(pass.embed_seconds)} s | ${pass.mean_doc_depth === null ? "—" : f2(pass.mean_doc_depth)} | ${formatBytes(pass.peak_rss_bytes_after)} |`,
    );
  }
  lines.push("");
  if (report.references.length) {
    lines.push(`## Published references (${report.dataset} test NDCG@10 — not measured here)`);
    lines.push("");
    lines.push("| model | NDCG@10 | source |");
    lines.push("| --- | ---: | --- |");
    for (const ref of report.references) lines.push(`| ${ref.name} | ${f3(ref["ndcg@10"])} | ${ref.source} |`);
    lines.push("");
  }
  if (report.notes.length) {
    lines.push("## Notes");
    lines.push("");
    for (const note of report.notes) lines.push(`- ${note}`);
    lines.push("");
  }
  return `${lines.join("\n")}\n`;
}

export function qualityVsDimsSvg(report: AblationReport): string {
  const names = Object.keys(SWEEP_TITLES) as DimsSweepPoint["series"][];
  const series: ChartSeries[] = names
    .map((name) => ({
      name: SWEEP_TITLES[name],
      dashed: name === "pca-float" || name === "binary",
      points: report.dims_sweep
        .filter((p) => p.series === name)
        .map((p) => ({ x: p.dims, y: p["ndcg@10"] })),
    }))
    .filter((s) => s.points.length > 0);
  const dims = [...new Set(report.dims_sweep.map((p) => p.dims))].sort((a, b) => a - b);
  const top = Math.max(0, ...report.dims_sweep.map((p) => p["ndcg@10"]));
  const bm25 = ndcg(report, "mode-bm25");
  const hybrid = ndcg(report, "mode-hybrid-convex");
  // BM25 is an order of magnitude above the dense model today; drawing it would flatten every dense line, so it is
  // drawn only when it is within reach of the plot, and otherwise stated under it.
  const drawable = (y: number | undefined) => y !== undefined && y <= Math.max(0.05, 3 * top);
  const notes: string[] = [];
  const offScale = [bm25 !== undefined && !drawable(bm25) ? `BM25 ${f3(bm25)}` : "", hybrid !== undefined && !drawable(hybrid) ? `hybrid ${f3(hybrid)}` : ""].filter(Boolean);
  if (offScale.length) notes.push(`Off the scale (same queries): ${offScale.join(", ")}.`);
  notes.push(`Dense retrieval only, ${report.model} int8 graphs, router depth; bytes per document: float32 4·d, int8 d + 4, sign bits d/8.`);
  return renderChart({
    title: `Quality vs dimensions — ${report.dataset} ${report.split}`,
    subtitle: `NDCG@10 of dense retrieval by vector width and stored format (${report.queries} queries, ${thousands(report.docs)} docs)`,
    x: { label: "dimensions (log scale)", scale: "log", ticks: dims, min: Math.min(...dims) / 1.15, max: Math.max(...dims) * 1.15, format: (v) => String(v) },
    y: { label: "NDCG@10", min: 0, ceiling: 1 },
    series,
    references: [
      ...(drawable(bm25) ? [{ y: bm25!, label: "BM25, measured" }] : []),
      ...(drawable(hybrid) ? [{ y: hybrid!, label: "hybrid, measured" }] : []),
    ],
    notes,
  });
}

export function qualityVsLatencySvg(report: AblationReport): string {
  const measured = report.rows.filter((r) => r.kind === "measured" && r.metrics);
  // One point per distinct measurement: rows that repeat the baseline in several groups are drawn once, in their first group.
  const seen = new Set<string>();
  const groups = [...new Set(measured.map((r) => r.group))];
  const series: ChartSeries[] = groups.map((group) => ({
    name: GROUP_TITLES[group],
    line: false,
    points: measured
      .filter((r) => r.group === group)
      .filter((r) => {
        const key = `${r.metrics!["ndcg@10"]}:${r.metrics!.latency_ms.p50}`;
        if (seen.has(key)) return false;
        seen.add(key);
        return true;
      })
      .map((r) => ({ x: Math.max(r.metrics!.latency_ms.p50, 1e-3), y: r.metrics!["ndcg@10"], label: r.short })),
  }));
  const ys = measured.map((r) => r.metrics!["ndcg@10"]).filter((y) => y > 0);
  const spread = ys.length ? Math.max(...ys) / Math.min(...ys) : 1;
  const logY = spread > 10;
  return renderChart({
    title: `Quality vs latency — ${report.dataset} ${report.split}`,
    subtitle: `NDCG@10 against p50 latency per query (encode + search, 1 CPU thread)${logY ? "; both axes log scale" : "; log latency axis"}`,
    x: { label: "p50 latency per query, ms (log scale)", scale: "log" },
    y: { label: logY ? "NDCG@10 (log scale)" : "NDCG@10", scale: logY ? "log" : "linear", ceiling: 1, ...(logY ? {} : { min: 0 }) },
    series,
    references: report.references.map((ref) => ({ y: ref["ndcg@10"], label: `published ${ref.name}` })),
    notes: report.references.length
      ? ["Dashed lines: published NDCG@10 of other systems on this dataset, as references (not measured here; no latency on this machine)."]
      : [],
    height: 600,
  });
}
