/**
 * Query embedding for the evaluation: every judged query embedded once per corpus pass, one at a time as the edge serves
 * them, at the full width (narrower settings take the renormalised prefix or the PCA projection of it, see
 * corpus-index.ts), with the wall time of each call kept. A setting's per-query latency is this encode time plus the
 * time of its own search, so settings that share a pass share the encode measurement instead of re-running the
 * encoder for every width and vector format.
 *
 * A few untimed calls come first: the first calls into a fresh ONNX session are slower (allocation, kernel choice),
 * and that would be charged to whichever query happened to be first.
 */
import { progressBar } from "../progress.js";
import type { BeirQuery } from "../../src/eval/beir.js";
import type { EmbeddingRanking, TaesrEncoder, TokenVectors } from "../../src/model/index.js";
import type { SparseVector } from "../../src/retrieval/index.js";
import type { PeerTextEncoder } from "../peers/types.js";
import type { CorpusPass, SparseCut } from "./corpus-index.js";

export interface EncodedQuery {
  id: string;
  text: string;
  /** Full-width unit vector. */
  vector: Float32Array;
  /** Recursion steps run (TAESR), null for a peer. */
  depth: number | null;
  /** Word pieces the encoder read (0 for a text that encodes to nothing: it runs as one [UNK]), null for a peer. */
  tokens: number | null;
  /** Wall time of the embed call, ms. */
  encodeMs: number;
  /** Late interaction: the query's token vectors, when asked for. */
  tokenVectors?: TokenVectors;
  /** The query's learned sparse terms, when asked for (from the same embed call, as the Worker computes them). */
  sparse?: SparseVector;
}

const WARMUP_CALLS = 3;

export async function encodeQueries(
  encoder: TaesrEncoder,
  queries: readonly BeirQuery[],
  pass: CorpusPass,
  options: {
    tokenVectors?: boolean;
    /** Also the sparse head's terms, cut like the documents'. */
    sparse?: SparseCut;
    tokenizer: { encode(text: string, options: { maxLength: number }): number[] };
    /** The ranking the queries are searched in (encoder.ts `ranking`: which router depth auto consults); default dense. */
    ranking?: EmbeddingRanking;
  },
): Promise<EncodedQuery[]> {
  const dims = encoder.architecture.outputDim;
  const maxLength = encoder.architecture.maxLength;
  const embedOptions = {
    dims,
    depth: pass.depth,
    earlyExit: pass.earlyExit,
    tokenVectors: Boolean(options.tokenVectors),
    ranking: options.ranking ?? "dense",
    ...(options.sparse ? { sparse: { ...options.sparse } } : {}),
  };
  for (const query of queries.slice(0, WARMUP_CALLS)) await encoder.embed([query.text], embedOptions);
  const extras = [options.tokenVectors ? "token vectors" : "", options.sparse ? "sparse terms" : ""].filter(Boolean).join(", ");
  const bar = progressBar(`embedding queries${extras ? ` (${extras})` : ""}`, queries.length, "queries");
  const encoded: EncodedQuery[] = [];
  for (const query of queries) {
    const started = performance.now();
    const result = await encoder.embed([query.text], embedOptions);
    const encodeMs = performance.now() - started;
    const tokenVectors = result.tokenVectors?.[0];
    if (options.tokenVectors && !tokenVectors) throw new Error("the encoder returned no token vectors (src/model/encoder.ts tokenVectors)");
    const sparse = result.sparse?.[0];
    if (options.sparse && !sparse) throw new Error("the encoder returned no sparse terms (src/model/encoder.ts sparse)");
    encoded.push({
      id: query.id,
      text: query.text,
      vector: result.embeddings[0]!,
      depth: result.depth,
      tokens: options.tokenizer.encode(query.text, { maxLength }).length,
      encodeMs,
      ...(tokenVectors ? { tokenVectors } : {}),
      ...(sparse ? { sparse } : {}),
    });
    bar.increment();
  }
  bar.stop();
  return encoded;
}

export async function encodeQueriesWithPeer(peer: PeerTextEncoder, queries: readonly BeirQuery[]): Promise<EncodedQuery[]> {
  for (const query of queries.slice(0, WARMUP_CALLS)) await peer.embed([query.text]);
  const bar = progressBar(`embedding queries (${peer.name})`, queries.length, "queries");
  const encoded: EncodedQuery[] = [];
  for (const query of queries) {
    const started = performance.now();
    const [vector] = await peer.embed([query.text]);
    const encodeMs = performance.now() - started;
    if (!vector || vector.length !== peer.dims) throw new Error(`${peer.name} returned no ${peer.dims}-d vector for query ${query.id}`);
    encoded.push({ id: query.id, text: query.text, vector, depth: null, tokens: null, encodeMs });
    bar.increment();
  }
  bar.stop();
  return encoded;
}
