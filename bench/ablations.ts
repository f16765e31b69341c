/**
 * `npm run eval:ablations`: the evaluation grid of a TAESR artifact on a BEIR dataset, one report.
 *
 *   npm run eval:ablations -- --dataset ../shared/datasets/scifact [--split test] [--model <artifact dir>]
 *                             [--out-dir bench/out/ablations] [--with-peers] [--limit-queries n]
 *
 * Rows (dense rows at 128-d float32 vectors, int8 graphs and router depth unless the row varies it):
 * - retrieval mode: bm25, dense (the baseline), hybrid (convex, the default), hybrid RRF, late (hybrid → MaxSim rerank
 *   of the top 100), sparse alone and hybrid + sparse at the manifest's tuned fusion (an artifact with the sparse head;
 *   listed as not available otherwise) — the other hybrid and late rows fuse dense and BM25 only, as labelled;
 * - recursion depth: 1, 3, 6 (= router off: full depth), router + early exit (the Worker's setting), router without
 *   early exit — fixed depths apply to documents and queries alike;
 * - Matryoshka width 64/128/256/384; fp32 vs int8 graphs; stored vectors float32 / int8 / sign bits / sign bits + int8
 *   rescoring; PCA 64/128 of the corpus vectors vs the prefix of the same width;
 * - with --with-peers, the USE-Lite quality peer (dense, and hybrid with BM25), its corpus embeddings cached;
 * - published SciFact figures as labelled references, never as rows of ours.
 * Each row: NDCG@10, MRR@10, Recall@100, MAP@100, latency p50/p95 per query (encode + search), mean depth, encoder
 * FLOPs per query, index bytes per document, and NDCG@10 relative to the baseline (int8 graphs, 128-d dense).
 *
 * Cost: the corpus is embedded once per (graphs, depth, early exit) — int8 at depth auto (with token vectors, for late
 * interaction), 1, 3, 6, auto without early exit, and fp32 auto — at 384 dims; every width, vector format and PCA is
 * derived from those vectors, and the BM25 index is built once. About 10 minutes for SciFact on 2 cores (plus ~7 for
 * the peer on its first run).
 *
 * Writes ablations.json, ablations.md (table, a short reading of it, memory and compute), quality-vs-dims.svg and
 * quality-vs-latency.svg to --out-dir; prints the Markdown on stderr at the end and the JSON last on stdout.
 *
 * The block-architecture ablation (self_attention vs mlp_mixer vs hybrid) needs three trained models rather than one
 * artifact: `npm run eval:architectures` (bench/architectures.ts) trains them with one config and budget and scores each
 * the same way (held-out validation, and `npm run eval` dense on --dataset).
 */
import { Command } from "commander";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { mean } from "../src/eval/metrics.js";
import { queryFlops } from "../src/model/index.js";
import { compressedBytesPerVector, explainedVariance } from "../src/retrieval/index.js";
import { defaultArtifactDir } from "./default-artifact.js";
import {
  DenseViews,
  SERVED_SPARSE_CUT,
  buildLexicalIndex,
  embedCorpus,
  indexedDocumentDepth,
  indexedDocumentPass,
  indexedDocumentPassages,
  passLabel,
  type CorpusPass,
  type DenseIndex,
  type Projection,
} from "./eval/corpus-index.js";
import { loadBeirDataset } from "./eval/dataset.js";
import { evaluate, round4, type EvalInputs, type EvalMode, type EvalOutcome, type EvalSetting, type VectorFormat } from "./eval/evaluate.js";
import { artifactBytes, openModel, sparseHeadDeclaration, sparseUnavailableReason } from "./eval/model.js";
import { openPeerSide } from "./eval/peer.js";
import { encodeQueries, type EncodedQuery } from "./eval/queries.js";
import {
  SCIFACT_PUBLISHED,
  qualityVsDimsSvg,
  qualityVsLatencySvg,
  renderMarkdown,
  type AblationGroup,
  type AblationReport,
  type AblationRow,
  type AblationSettings,
  type DimsSweepPoint,
  type MeasuredMetrics,
  type PassInfo,
} from "./report/ablation-report.js";
import { positiveInteger } from "./cli-options.js";

const program = new Command()
  .name("npm run eval:ablations --")
  .description("Run the ablation grid (depth, Matryoshka width, quantisation, PCA, modes, peers) and write a report.")
  .requiredOption("--dataset <dir>", "BEIR folder with corpus.jsonl, queries.jsonl, qrels/<split>.tsv")
  .option("--split <name>", "qrels split", "test")
  .option("--model <dir>", "artifact directory (default: the one the Worker bundles)")
  .option("--out-dir <dir>", "where the report files go", "bench/out/ablations")
  .option("--with-peers", "also evaluate the USE-Lite quality peer (slow on first run; its corpus embeddings are cached)")
  .option("--limit-queries <n>", "evaluate only the first n judged queries (quick checks)", positiveInteger)
  .parse();

const options = program.opts<{ dataset: string; split: string; model?: string; outDir: string; withPeers?: boolean; limitQueries?: number }>();
const log = (message: string) => process.stderr.write(`[ablations] ${message}\n`);
const peakRss = () => process.resourceUsage().maxRSS * 1024;

/** The widths every stored format is measured at (the dims chart). */
const SWEEP_DIMS = [64, 128, 256, 384] as const;
const BASE_DIMS = 128;

const GROUP_ORDER: AblationGroup[] = ["mode", "depth", "matryoshka", "model quant", "vectors", "pca", "peer"];

interface PassData {
  pass: CorpusPass;
  views: DenseViews;
  queries: EncodedQuery[];
  tokenQueries?: EncodedQuery[];
}

function metricsOf(outcome: EvalOutcome): MeasuredMetrics {
  const orNull = (value: number | null) => (value === null ? null : round4(value));
  const bytes = outcome.index_bytes_per_doc;
  return {
    "ndcg@10": round4(outcome["ndcg@10"]),
    "mrr@10": round4(outcome["mrr@10"]),
    "recall@50": round4(outcome["recall@50"]),
    "recall@100": round4(outcome["recall@100"]),
    "map@100": round4(outcome["map@100"]),
    latency_ms: { p50: round4(outcome.latency_ms.p50), p95: round4(outcome.latency_ms.p95) },
    mean_depth: orNull(outcome.mean_depth),
    mean_query_tokens: orNull(outcome.mean_query_tokens),
    flops_per_query: outcome.flops_per_query === null ? null : Math.round(outcome.flops_per_query),
    index_bytes_per_doc: { dense: orNull(bytes.dense), bm25: orNull(bytes.bm25), late: orNull(bytes.late), total: round4(bytes.total) },
  };
}

async function main(): Promise<void> {
  const started = performance.now();
  const modelDir = options.model ?? (await defaultArtifactDir());
  const dataset = await loadBeirDataset(options.dataset, options.split, { limitQueries: options.limitQueries });
  const model = await openModel(modelDir, ["int8", "fp32"]);
  const tokenizer = model.tokenizer;
  const architecture = model.manifest.architecture;
  log(`${model.label} on ${dataset.name} (${options.split}): ${dataset.queries.length} judged queries, ${dataset.corpus.length} documents`);
  const lexical = buildLexicalIndex(tokenizer, dataset.corpus);

  const rows: AblationRow[] = [];
  const passes: PassInfo[] = [];
  const sweep: DimsSweepPoint[] = [];
  /** Outcomes by (pass, setting), so a setting that appears in several groups (the baseline does) is measured once. */
  const memo = new Map<string, EvalOutcome>();

  const run = (key: string, inputs: EvalInputs, setting: EvalSetting): EvalOutcome => {
    const memoKey = `${key}|${JSON.stringify(setting)}`;
    let outcome = memo.get(memoKey);
    if (!outcome) {
      outcome = evaluate(inputs, setting);
      memo.set(memoKey, outcome);
    }
    return outcome;
  };

  const settingsOf = (pass: CorpusPass | null, setting: EvalSetting, encoder = "taesr"): AblationSettings => {
    const dense = setting.mode !== "bm25";
    return {
      encoder,
      model_variant: dense && pass ? pass.variant : null,
      depth: dense && pass ? String(pass.depth) : null,
      early_exit: dense && pass ? pass.earlyExit : null,
      mode: setting.mode,
      fusion: setting.mode === "hybrid" || setting.mode === "late" ? setting.fusion : null,
      dims: dense ? setting.dims : null,
      vectors: dense ? setting.vectors : null,
      projection: dense ? setting.projection : null,
    };
  };

  const addRow = (
    id: string,
    group: AblationGroup,
    label: string,
    short: string,
    pass: PassData | null,
    setting: EvalSetting,
    extra: { encoder?: string; inputs?: EvalInputs; note?: string; later?: AblationRow[] } = {},
  ) => {
    const inputs: EvalInputs = extra.inputs ?? {
      dataset,
      tokenizer,
      lexical,
      ...(pass ? { dense: pass.views, queries: setting.mode === "late" ? pass.tokenQueries : pass.queries, architecture } : {}),
    };
    const key = extra.encoder ?? (pass ? passLabel(pass.pass) + (setting.mode === "late" ? "+tokens" : "") : "lexical");
    const outcome = run(key, inputs, setting);
    const metrics = metricsOf(outcome);
    // `later`: measured now (while the pass's data is in memory) but listed after rows still to come.
    (extra.later ?? rows).push({ id, group, label, short, kind: "measured", settings: settingsOf(pass?.pass ?? null, setting, extra.encoder), metrics, ...(extra.note ? { note: extra.note } : {}) });
    log(`${group} · ${label}: NDCG@10 ${metrics["ndcg@10"].toFixed(4)}, p50 ${metrics.latency_ms.p50.toFixed(2)} ms`);
    return outcome;
  };

  const dense = (dims: number, vectors: VectorFormat = "float", projection: Projection = "matryoshka"): EvalSetting => ({
    mode: "dense",
    dims,
    vectors,
    projection,
    fusion: "convex",
  });
  // Fused rows are the two-list fusion their labels name (sparse weight 0): the learned list has rows of its own.
  const withMode = (mode: EvalMode, fusion: "convex" | "rrf" = "convex"): EvalSetting => ({
    ...dense(BASE_DIMS),
    mode,
    fusion,
    ...(mode === "hybrid" || mode === "late" ? { weights: { sparse: 0 } } : {}),
  });

  // The Worker's setting indexes documents at the manifest's document depth when it chose one (depth auto only).
  const documentDepth = indexedDocumentDepth("auto", model.manifest);
  const runPass = async (pass: CorpusPass, tokenVectors = false, sparse = false): Promise<PassData> => {
    const encoder = await model.encoder(pass.variant);
    const documentPass = indexedDocumentPass(pass, model.manifest);
    const documents = documentPass === pass ? "" : ` (documents as the Worker indexes them: ${passLabel(documentPass)})`;
    log(`corpus pass: ${passLabel(pass)}${documents}${tokenVectors ? " + token vectors" : ""}${sparse ? " + sparse terms" : ""}`);
    const cut = sparse ? { sparse: { ...SERVED_SPARSE_CUT } } : {};
    const index: DenseIndex = await embedCorpus(encoder, dataset.corpus, documentPass, { tokenVectors, ...cut });
    const queries = await encodeQueries(encoder, dataset.queries, pass, { tokenizer, ...cut });
    const tokenQueries = tokenVectors ? await encodeQueries(encoder, dataset.queries, pass, { tokenizer, tokenVectors: true }) : undefined;
    passes.push({
      label: passLabel(pass),
      encoder: model.label,
      variant: pass.variant,
      depth: String(pass.depth),
      early_exit: pass.earlyExit,
      embed_seconds: round4(index.embedSeconds),
      mean_doc_depth: index.meanDocDepth === null ? null : round4(index.meanDocDepth),
      token_vectors: tokenVectors,
      peak_rss_bytes_after: peakRss(),
    });
    return { pass, views: new DenseViews(index), queries, ...(tokenQueries ? { tokenQueries } : {}) };
  };

  // 1. The Worker's setting: int8 graphs, router depth, early exit on — with token vectors for late interaction.
  const basePass: CorpusPass = { variant: "int8", depth: "auto", earlyExit: true };
  const withSparse = (await model.encoder("int8")).hasSparse;
  let base: PassData | undefined = await runPass(basePass, true, withSparse);
  const baseline = addRow("mode-dense", "mode", `dense (int8 graphs, ${BASE_DIMS}-d, router)`, "dense", base, dense(BASE_DIMS));
  addRow("mode-bm25", "mode", "bm25 (word pieces)", "bm25", null, withMode("bm25"));
  addRow("mode-hybrid-convex", "mode", "hybrid, convex 0.7/0.3 (built-in)", "hybrid", base, withMode("hybrid"));
  addRow("mode-hybrid-rrf", "mode", "hybrid, RRF 3:1", "hybrid RRF", base, withMode("hybrid", "rrf"));
  addRow("mode-late", "mode", "late: hybrid → MaxSim rerank of top 100 (int8 token matrices)", "late", base, withMode("late"));
  const sparseReason = withSparse ? undefined : sparseUnavailableReason(model);
  if (withSparse) {
    addRow("mode-sparse", "mode", `sparse (SPLADE head, ≤ ${SERVED_SPARSE_CUT.maxTerms} terms per text)`, "sparse", base, withMode("sparse"));
    const tuned = model.manifest.retrieval?.fusion;
    const label = tuned ? `hybrid + sparse, the manifest's ${tuned.method} fusion (Worker default)` : "hybrid + sparse, built-in weights (sparse = lexical)";
    addRow("mode-hybrid-sparse", "mode", label, "hybrid+sparse", base, { ...withMode("hybrid", tuned?.method ?? "convex"), weights: undefined, ...(tuned ? { defaults: tuned } : {}) });
  } else {
    rows.push({
      id: "mode-sparse",
      group: "mode",
      label: "sparse (SPLADE head)",
      short: "sparse",
      kind: "unavailable",
      settings: settingsOf(basePass, withMode("sparse")),
      note: `not available: ${sparseHeadDeclaration(model.rawManifest) ? sparseReason : `${model.label} has no sparse head`}`,
    });
  }
  // Late interaction's token matrices are the largest thing in memory; nothing else needs them.
  delete base.views.index.tokens;
  delete base.tokenQueries;

  addRow("depth-auto", "depth", "router + early exit (Worker setting)", "auto", base, dense(BASE_DIMS));
  for (const dims of SWEEP_DIMS) addRow(`matryoshka-${dims}`, "matryoshka", `prefix ${dims}-d`, `${dims}`, base, dense(dims));
  addRow("quant-int8", "model quant", "int8 graphs", "int8", base, dense(BASE_DIMS));
  for (const vectors of ["float", "int8", "binary", "binary-rescore"] as const) {
    const label = { float: "float32", int8: "int8 (per-vector scale)", binary: "sign bits only (Hamming)", "binary-rescore": "sign bits → int8 rescoring of top 1,000" }[vectors];
    const short = { float: "f32", int8: "i8", binary: "bits", "binary-rescore": "bits+i8" }[vectors];
    addRow(`vectors-${vectors}-${BASE_DIMS}`, "vectors", `${label}, ${BASE_DIMS}-d`, short, base, dense(BASE_DIMS, vectors));
  }
  for (const dims of [64, 128] as const) {
    addRow(`pca-prefix-${dims}`, "pca", `Matryoshka prefix ${dims}-d`, `prefix ${dims}`, base, dense(dims));
    addRow(`pca-${dims}`, "pca", `PCA ${dims}-d (fitted on the corpus)`, `PCA ${dims}`, base, dense(dims, "float", "pca"));
  }
  // The width × format grid behind the dims chart.
  for (const dims of SWEEP_DIMS) {
    const formats: [DimsSweepPoint["series"], VectorFormat, Projection][] = [
      ["matryoshka-float", "float", "matryoshka"],
      ["matryoshka-int8", "int8", "matryoshka"],
      ["binary", "binary", "matryoshka"],
      ["binary-rescore", "binary-rescore", "matryoshka"],
      ["pca-float", "float", "pca"],
    ];
    for (const [series, vectors, projection] of formats) {
      const setting = dense(dims, vectors, projection);
      const outcome = run(passLabel(basePass), { dataset, tokenizer, dense: base.views, queries: base.queries, architecture }, setting);
      sweep.push({
        series,
        dims,
        "ndcg@10": round4(outcome["ndcg@10"]),
        "recall@100": round4(outcome["recall@100"]),
        latency_p50_ms: round4(outcome.latency_ms.p50),
        index_bytes_per_doc: round4(outcome.index_bytes_per_doc.dense ?? 0),
      });
    }
    log(`width ${dims}: ${sweep.filter((p) => p.dims === dims).map((p) => `${p.series} ${p["ndcg@10"].toFixed(4)}`).join(", ")}`);
  }
  // How much of the corpus vectors' variance the leading principal components hold (how anisotropic the space is).
  const pcaExplained = Object.fromEntries([16, 64, 128].map((d) => [String(d), round4(explainedVariance(base!.views.pca(d)))]));
  const baseQueries = base.queries;
  const lateBytes = rows.find((r) => r.id === "mode-late")?.metrics?.index_bytes_per_doc.late ?? null;
  base = undefined;

  // 2. Fixed depths (documents and queries alike, no early exit) and the router without early exit. Late interaction
  //    is measured at each fixed depth too: with the router, query and document token vectors come from different
  //    steps (queries mostly 1–3, documents 6), and the fixed-depth rows show what that mismatch costs.
  const lateByDepth: AblationRow[] = [];
  for (const depth of [1, 3, 6] as const) {
    const pass = await runPass({ variant: "int8", depth, earlyExit: false }, true);
    const label = depth === 6 ? "depth 6 = router off (full depth), docs and queries" : `depth ${depth}, docs and queries`;
    addRow(`depth-${depth}`, "depth", label, `d${depth}`, pass, dense(BASE_DIMS));
    addRow(`depth-${depth}-late`, "depth", `late (hybrid → MaxSim top 100), depth ${depth}, docs and queries`, `late d${depth}`, pass, withMode("late"), {
      later: lateByDepth,
    });
  }
  const noExit = await runPass({ variant: "int8", depth: "auto", earlyExit: false });
  addRow("depth-auto-no-exit", "depth", "router, early exit off", "auto, no exit", noExit, dense(BASE_DIMS));
  rows.push(...lateByDepth);

  // 3. fp32 graphs at the Worker's setting.
  const fp32 = await runPass({ variant: "fp32", depth: "auto", earlyExit: true });
  addRow("quant-fp32", "model quant", "fp32 graphs", "fp32", fp32, dense(BASE_DIMS));
  await model.release();

  // 4. Peers, when asked.
  const notes: string[] = [];
  if (options.withPeers) {
    const peer = await openPeerSide("use-lite", dataset);
    const inputs: EvalInputs = { dataset, tokenizer, lexical, dense: new DenseViews(peer.index), queries: peer.queries };
    passes.push({
      label: `${peer.shortName} (${peer.dims}-d)${peer.fromCache ? ", corpus from cache" : ""}`,
      encoder: peer.name,
      variant: null,
      depth: null,
      early_exit: null,
      embed_seconds: round4(peer.index.embedSeconds),
      mean_doc_depth: null,
      token_vectors: false,
      peak_rss_bytes_after: peakRss(),
    });
    const peerDense: EvalSetting = { ...dense(peer.dims), mode: "dense" };
    const short = peer.shortName;
    addRow("peer-dense", "peer", `${short}, dense ${peer.dims}-d float32`, `${short} dense`, null, peerDense, { encoder: peer.name, inputs });
    addRow("peer-hybrid", "peer", `${short} + BM25, hybrid convex 0.7/0.3`, `${short} hybrid`, null, { ...peerDense, mode: "hybrid" }, { encoder: peer.name, inputs });
    await peer.release();
    notes.push(
      `Peer: ${peer.name}. Its corpus embeddings ${peer.fromCache ? "were read from the cache under bench/out/cache (embed time: the run that filled it)" : "were computed in this run and cached under bench/out/cache"}; its queries are embedded one per call like ours.`,
    );
  } else {
    notes.push("Quality peers (USE-Lite) not run: add --with-peers.");
  }

  // Retained quality against the baseline, then the table order.
  const baselineNdcg = baseline["ndcg@10"];
  for (const row of rows) if (row.metrics && baselineNdcg > 0) row.retained = round4(row.metrics["ndcg@10"] / baselineNdcg);
  rows.sort((a, b) => GROUP_ORDER.indexOf(a.group) - GROUP_ORDER.indexOf(b.group));

  const meanTokens = mean(baseQueries.map((q) => q.tokens ?? 0));
  const flopsAt = (depth: number) => mean(baseQueries.map((q) => queryFlops(architecture, Math.min(Math.max(1, q.tokens ?? 1), architecture.maxLength), depth).total));
  const sizes = compressedBytesPerVector(BASE_DIMS);
  const references = dataset.name.toLowerCase() === "scifact" ? [...SCIFACT_PUBLISHED] : [];
  if (!references.length) notes.push(`Published reference figures are SciFact's; none are shown for ${dataset.name}.`);
  const passages = indexedDocumentPassages(model.manifest);
  if (passages) {
    notes.push(`Every pass embeds documents as the manifest's passages (≤ ${passages.maxPieces} pieces, ≤ ${passages.maxPassages}, pooled: retrieval.documentPassages), as the Worker indexes them.`);
  }
  notes.push(
    documentDepth !== undefined
      ? `Depth rows embed documents and queries at the same fixed depth with early exit off; the Worker indexes documents at the manifest's document depth (${documentDepth}) and routes queries (depth auto, early exit on), as the baseline and every other depth-auto pass do.`
      : "Depth rows embed documents and queries at the same fixed depth with early exit off; the Worker indexes documents with the router (depth auto, early exit on), as the baseline does.",
    "Latency: each query's encode time is measured once per corpus pass (one query per call, after 3 warm-up calls) and added to each setting's own measured search time; the machine has 2 cores shared with other work, so small differences are noise.",
    (await model.encoder("int8")).tokenVectorSource.kind === "late-head"
      ? "Late interaction uses the artifact's trained late-interaction head (late.onnx) for token vectors; document matrices are stored int8 with a float32 scale per token."
      : "Late interaction uses the encoder's centred, L2-normalised final hidden states as token vectors (the artifact has no late-interaction head); document matrices are stored int8 with a float32 scale per token.",
    withSparse
      ? `Sparse: the artifact's SPLADE-style head, every weight above 0 and at most ${SERVED_SPARSE_CUT.maxTerms} terms per text (the Worker's cut), documents at the base pass's depth; "hybrid + sparse" is the Worker's default fusion of all three lists.`
      : `Sparse: ${sparseReason}.`,
    "Binary + rescoring: Hamming scan over sign bits for the top 1,000 (10 × k, k = 100), rescored with int8 document vectors against the float query; bytes count both the bits and the int8 codes.",
    "PCA: fitted on the corpus's 384-d int8-graph vectors (centred, covariance, Jacobi eigen-decomposition); queries centred with the corpus mean; the projection's bytes are spread over the documents.",
  );
  const report: AblationReport = {
    dataset: dataset.name,
    split: options.split,
    queries: dataset.queries.length,
    docs: dataset.corpus.length,
    model: model.label,
    baseline: { id: "mode-dense", label: `int8 graphs, ${BASE_DIMS}-d float32 dense, router + early exit`, "ndcg@10": round4(baselineNdcg) },
    rows,
    dims_sweep: sweep,
    passes,
    memory: {
      artifact_bytes: { int8: artifactBytes(model.manifest, "int8"), fp32: artifactBytes(model.manifest, "fp32") },
      peak_rss_bytes: peakRss(),
      index_bytes_per_doc: {
        [`dense float32 ${BASE_DIMS}-d`]: sizes.float32,
        [`dense int8 ${BASE_DIMS}-d`]: sizes.int8,
        [`sign bits ${BASE_DIMS}-d`]: sizes.binary,
        "BM25 postings (uncompressed estimate)": round4(lexical.bytesPerDoc),
        ...(lateBytes !== null ? { "late token matrices (int8)": lateBytes } : {}),
      },
    },
    pca_explained_variance: pcaExplained,
    flops_by_depth: [
      ...[1, 3, 6].map((depth) => ({ depth: String(depth), mean_query_tokens: round4(meanTokens), flops_per_query: Math.round(flopsAt(depth)) })),
      { depth: "auto (router)", mean_query_tokens: round4(meanTokens), flops_per_query: Math.round(baseline.flops_per_query ?? 0) },
    ],
    references,
    notes,
  };

  await mkdir(options.outDir, { recursive: true });
  const files = {
    json: path.join(options.outDir, "ablations.json"),
    markdown: path.join(options.outDir, "ablations.md"),
    dims_chart: path.join(options.outDir, "quality-vs-dims.svg"),
    latency_chart: path.join(options.outDir, "quality-vs-latency.svg"),
  };
  report.files = files;
  report.elapsed_seconds = round4((performance.now() - started) / 1000);
  const markdown = renderMarkdown(report);
  await writeFile(files.markdown, markdown);
  await writeFile(files.dims_chart, qualityVsDimsSvg(report));
  await writeFile(files.latency_chart, qualityVsLatencySvg(report));
  await writeFile(files.json, `${JSON.stringify(report, null, 2)}\n`);
  process.stderr.write(`\n${markdown}\n`);
  console.log(JSON.stringify(report));
}

main().catch((error: unknown) => {
  console.error(`eval:ablations failed: ${(error as Error).message}`);
  process.exit(1);
});
