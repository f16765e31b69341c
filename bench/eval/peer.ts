/**
 * Quality peers in the evaluation: an outside encoder (USE-Lite, bench/peers/use-lite.ts) embedding the same corpus
 * and queries, so our figures sit beside a known model measured on the same data and machine. The corpus goes through
 * the peer once and is cached (bench/peers/embedding-cache.ts, under bench/out/cache): USE-Lite manages ~12 docs/s
 * here, about 7 minutes for SciFact, so a second run reads the cache instead. Documents are the same text the Worker
 * indexes ({@link documentText}); queries are embedded one per call, timed, as for our encoder.
 */
import type { SingleBar } from "cli-progress";
import { progressBar } from "../progress.js";
import { documentText } from "../../src/retrieval/index.js";
import { cachedEmbed } from "../peers/embedding-cache.js";
import type { PeerTextEncoder } from "../peers/types.js";
import { createUseLitePeer } from "../peers/use-lite.js";
import { denseIndexFromVectors, type DenseIndex } from "./corpus-index.js";
import type { EvalDataset } from "./dataset.js";
import { encodeQueriesWithPeer, type EncodedQuery } from "./queries.js";

export const PEER_ENCODERS = ["use-lite"] as const;
export type PeerEncoderName = (typeof PEER_ENCODERS)[number];

/** Short names for tables and charts; the peer's own `name` (with versions and backend) goes into the JSON. */
export const PEER_SHORT_NAMES: Record<PeerEncoderName, string> = { "use-lite": "USE-Lite" };

export interface PeerSide {
  /** The peer's full name (model package, version, backend). */
  name: string;
  shortName: string;
  dims: number;
  index: DenseIndex;
  /** Whether the corpus vectors came from the cache (then index.embedSeconds is the original run's time). */
  fromCache: boolean;
  queries: EncodedQuery[];
  release(): Promise<void>;
}

async function createPeer(name: PeerEncoderName): Promise<PeerTextEncoder> {
  switch (name) {
    case "use-lite":
      return createUseLitePeer();
  }
}

/** Starts the peer, embeds (or reads from the cache) the corpus and embeds the judged queries. */
export async function openPeerSide(name: PeerEncoderName, dataset: EvalDataset): Promise<PeerSide> {
  const peer = await createPeer(name);
  try {
    // Started on the first progress report only: a cache hit embeds nothing and shows no bar.
    let bar: SingleBar | undefined;
    const corpus = await cachedEmbed(peer, dataset.corpus.map(documentText), `${dataset.name}-corpus`, undefined, {
      onProgress(done, total) {
        bar ??= progressBar(`embedding corpus (${PEER_SHORT_NAMES[name]})`, total, "docs", { etaBuffer: 512 });
        bar.update(done);
      },
    });
    if (bar) bar.stop();
    else process.stderr.write(`[eval] ${PEER_SHORT_NAMES[name]} corpus embeddings read from ${corpus.file}\n`);
    const queries = await encodeQueriesWithPeer(peer, dataset.queries);
    return {
      name: peer.name,
      shortName: PEER_SHORT_NAMES[name],
      dims: peer.dims,
      index: denseIndexFromVectors(corpus.vectors, peer.dims, corpus.embedSeconds),
      fromCache: corpus.fromCache,
      queries,
      release: () => peer.release(),
    };
  } catch (error) {
    await peer.release();
    throw error;
  }
}
