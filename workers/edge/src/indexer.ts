/**
 * Document indexing: content hash → ask the index what changed → embed and tokenize only those → store.
 *
 * Idempotency is by (id, content hash, model version). The hash covers title, text and metadata (canonical JSON, so
 * key order does not matter); the model version is checked beside it so that a model switch re-embeds everything it
 * touches. Unchanged documents cost one hash and one index lookup — never a model call.
 *
 * Document-side embedding: title + "\n" + text (src/retrieval/documents.ts) at {@link DOCUMENT_EMBEDDING}. 128 dims are stored because search
 * serves 64 and 128 (a prefix of a stored unit vector renormalises to the 64-d embedding). Depth is the model's
 * `documentDepth` when its manifest chose one (bench/document-depth.ts: the router sends every document-length input to
 * the full depth, and for taesr-edge-small@0.2.0 depth 1 ranks as well at a fifth of the cost), else the router's. A
 * model whose manifest chose `documentPassages` (bench/document-passages.ts) embeds each document longer than its window
 * as passages pooled into one vector: one stored vector per document still, one model pass per passage. Batches of ≤ 16 documents are sorted by length first: a batch runs at the depth of its longest text and is
 * padded to it, so grouping similar lengths wastes the least compute.
 *
 * A model with a trained late-interaction head (`model.late`) also yields each document's token vectors, stored int8
 * (src/retrieval/late.ts quantizeTokenMatrix) for the rerank stage; a model without one stores none. Likewise a model
 * with the sparse head (`model.sparse`) yields each document's sparse terms, for the sparse list of an index that stores
 * them (`index.learnedSparse`); for any other index they would be computed only to be dropped.
 *
 * Who embeds and where the prepared documents are written are options: the synchronous routes embed with the edge's
 * model and write to the index; the queue consumer (index-consumer.ts) embeds origin first and writes through its
 * ordering ledger.
 *
 * @module
 */
import { sha256Hex } from "../../../src/digest.js";
import { documentText, lexicalTerms, quantizeTokenMatrix, sparsePairs, termFrequencies } from "../../../src/retrieval/index.js";
import type { EdgeModel } from "./contracts.js";
import { localEmbedder, type DocumentEmbedder, type EmbeddingSource } from "./document-embedder.js";
import type { DocumentInput, Metadata } from "./schemas.js";
import type { SearchIndex } from "./search-index.js";
import type { PreparedDocument, StoredDocument, UpsertOutcome } from "./shard-api.js";

export const DOCUMENT_EMBEDDING = { dims: 128, depth: "auto", batchSize: 16 } as const;

export interface IndexOutcome {
  upserted: string[];
  unchanged: string[];
  /** Ids the store refused because a newer write of them was already applied (the queue's ordering ledger). */
  stale: string[];
  /** Documents embedded by each source (the origin or the edge's model). */
  embeddedBy: Record<EmbeddingSource, number>;
}

/** What a store answers: the index's own outcome, plus the ids an ordering-aware store refused as stale. */
export type StoreOutcome = UpsertOutcome & { stale?: string[] };

export interface IndexOptions {
  /** Who embeds the changed documents; default the edge's model. */
  embedder?: DocumentEmbedder;
  /** Where prepared documents are written; default `index.upsert` (the queue consumer writes through its ledger). */
  store?: (documents: PreparedDocument[]) => Promise<StoreOutcome>;
}

/** JSON with object keys sorted at every level, so equal values always serialise to equal strings. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

export async function contentHash(document: { title: string; text: string; metadata?: Metadata | null }): Promise<string> {
  const canonical = canonicalJson({ title: document.title, text: document.text, metadata: document.metadata ?? null });
  return sha256Hex(canonical);
}

export async function indexDocuments(
  model: EdgeModel,
  index: SearchIndex,
  documents: readonly DocumentInput[],
  options: IndexOptions = {},
): Promise<IndexOutcome> {
  const embedder = options.embedder ?? localEmbedder(model);
  const store: (prepared: PreparedDocument[]) => Promise<StoreOutcome> = options.store ?? ((prepared) => index.upsert(prepared));
  const modelVersion = model.info.version;
  const hashed = await Promise.all(
    documents.map(async (document) => ({
      ...document,
      metadataJson: document.metadata === undefined ? null : JSON.stringify(document.metadata),
      contentHash: await contentHash(document),
      modelVersion,
    })),
  );
  return embedAndStore(model, index, hashed, embedder, store);
}

/** A document as the pipeline carries it once hashed: stored fields, its content hash and the model that will embed it. */
interface HashedDocument {
  id: string;
  title: string;
  text: string;
  metadataJson: string | null;
  contentHash: string;
  modelVersion: string;
}

/**
 * Copies stored documents (another index's, read by `SearchIndex.documents`) into `index`, embedded by `model`: the
 * background re-embedding of a model switch (model-rollout.ts). The source's content hash is kept as it is, so the copy
 * compares equal to its source by (id, content hash); documents the target already holds from this model are skipped.
 */
export function copyDocuments(model: EdgeModel, index: SearchIndex, stored: readonly StoredDocument[]): Promise<IndexOutcome> {
  const modelVersion = model.info.version;
  const hashed = stored.map(({ id, title, text, metadataJson, contentHash }) => ({ id, title, text, metadataJson, contentHash, modelVersion }));
  return embedAndStore(model, index, hashed, localEmbedder(model), (prepared) => index.upsert(prepared));
}

async function embedAndStore(
  model: EdgeModel,
  index: SearchIndex,
  hashed: readonly HashedDocument[],
  embedder: DocumentEmbedder,
  store: (prepared: PreparedDocument[]) => Promise<StoreOutcome>,
): Promise<IndexOutcome> {
  const pending = new Set(await index.pending(hashed.map(({ id, contentHash, modelVersion }) => ({ id, contentHash, modelVersion }))));
  const outcome: IndexOutcome = {
    upserted: [],
    unchanged: hashed.filter((d) => !pending.has(d.id)).map((d) => d.id),
    stale: [],
    embeddedBy: { origin: 0, local: 0 },
  };

  const sparse = index.learnedSparse === true ? model.sparse : undefined;
  const work = hashed.filter((d) => pending.has(d.id)).map((d) => ({ ...d, input: documentText(d) }));
  work.sort((a, b) => a.input.length - b.input.length);
  for (let start = 0; start < work.length; start += DOCUMENT_EMBEDDING.batchSize) {
    const batch = work.slice(start, start + DOCUMENT_EMBEDDING.batchSize);
    const tokenVectors = model.late !== undefined;
    const { vectors: embeddings, tokenVectors: tokens, sparse: sparseTerms, source } = await embedder.embed(
      batch.map((d) => d.input),
      {
        dims: DOCUMENT_EMBEDDING.dims,
        depth: model.documentDepth ?? DOCUMENT_EMBEDDING.depth,
        ...(model.documentPassages ? { passages: model.documentPassages } : {}),
        ...(tokenVectors ? { tokenVectors } : {}),
        ...(sparse ? { sparse } : {}),
      },
    );
    if (tokenVectors && tokens?.length !== batch.length) throw new Error("the embedder returned no token vectors for the documents");
    if (sparse && sparseTerms?.length !== batch.length) throw new Error("the embedder returned no sparse terms for the documents");
    outcome.embeddedBy[source] += batch.length;
    const prepared: PreparedDocument[] = batch.map((d, i) => {
      const counts = termFrequencies(lexicalTerms(model.tokenizer.tokenize(d.input)));
      let length = 0;
      for (const tf of counts.values()) length += tf;
      return {
        id: d.id,
        title: d.title,
        text: d.text,
        metadataJson: d.metadataJson,
        contentHash: d.contentHash,
        modelVersion: d.modelVersion,
        vector: embeddings[i]!,
        terms: [...counts],
        length,
        ...(tokens ? { tokens: quantizeTokenMatrix(tokens[i]!) } : {}),
        ...(sparse && sparseTerms ? { sparse: sparsePairs(sparseTerms[i]!, `sparse terms of document ${d.id}`) } : {}),
      };
    });
    // Stored batch by batch: a failure part-way keeps what was done, and a retry skips it as unchanged.
    const stored = await store(prepared);
    outcome.upserted.push(...stored.upserted);
    outcome.unchanged.push(...stored.unchanged);
    outcome.stale.push(...(stored.stale ?? []));
  }
  return outcome;
}
