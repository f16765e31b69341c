/**
 * Running the MiniLM-shaped speed peer (bench/peers/minilm-shaped.ts builds its graphs): its shape, the token ids it is
 * fed, and a small embed loop over any {@link OrtLike}. Platform-neutral on purpose (no Node APIs): the same code runs
 * in Node (bench/peers/speed.ts, on onnxruntime-node and onnxruntime-web) and inside workerd
 * (bench/workerd/peer-bench.ts), so the three runtimes time exactly the same per-call work.
 *
 * Token ids: the peer is a timing stand-in with random weights, so what it reads does not matter, only how much. For
 * each text it gets as many ids as *our* WordPiece tokenizer produces for the text, plus 2 ([CLS] and [SEP]), capped at
 * 256 (all-MiniLM-L6-v2's max_seq_length); the ids themselves are drawn deterministically (seeded by the text) from
 * the ordinary part of BERT's uncased vocabulary. MiniLM's own WordPiece (30,522 pieces) splits English into a
 * comparable number of pieces as ours, and a transformer's cost depends only on the count. Our tokenizer runs inside
 * the timed call, standing in for MiniLM's, just as our encoder tokenises inside its own embed().
 *
 * @module
 */
import type { OrtLike, OrtSessionLike, OrtSessionOptions, OrtTensorLike } from "../../src/model/ort-seam.js";
import { readFloat32 } from "../../src/model/ort-seam.js";
import { createRng, hashString } from "../../training/src/data/random.js";

/** A BERT encoder's dimensions (what all-MiniLM-L6-v2's config.json holds, minus what does not change cost). */
export interface BertShape {
  vocabSize: number;
  hidden: number;
  layers: number;
  heads: number;
  ffn: number;
  maxPositions: number;
  typeVocabSize: number;
}

/** sentence-transformers/all-MiniLM-L6-v2 (a 6-layer MiniLM-L12-H384 distillation of BERT). */
export const MINILM_L6_SHAPE: Readonly<BertShape> = {
  vocabSize: 30522,
  hidden: 384,
  layers: 6,
  heads: 12,
  ffn: 1536,
  maxPositions: 512,
  typeVocabSize: 2,
};

/** all-MiniLM-L6-v2's max_seq_length: sentence-transformers truncates longer inputs to this many tokens. */
export const PEER_MAX_SEQ_LENGTH = 256;
/** BERT uncased vocabulary: [PAD] 0, [CLS] 101, [SEP] 102; ids below 999 are [unused…] and specials. */
export const PEER_PAD_ID = 0;
export const PEER_CLS_ID = 101;
export const PEER_SEP_ID = 102;
const FIRST_ORDINARY_ID = 999;

/** The graphs' interface (the usual BERT export names). */
export const PEER_IO = { inputIds: "input_ids", attentionMask: "attention_mask", embedding: "embedding" } as const;

/** What the peer needs from a tokenizer: only how many pieces a text becomes (our WordPieceTokenizer satisfies it). */
export interface PieceCounter {
  encode(text: string, options: { maxLength: number }): number[];
}

/** Ids for one text: [CLS], `count − 2` ordinary ids seeded by the text, [SEP]. `count` includes the two specials. */
export function peerTokenIds(text: string, count: number, vocabSize = MINILM_L6_SHAPE.vocabSize): number[] {
  if (count < 2) throw new RangeError(`a peer input has at least [CLS] and [SEP], got count ${count}`);
  if (vocabSize <= FIRST_ORDINARY_ID) throw new RangeError(`vocabSize ${vocabSize} leaves no ordinary ids above ${FIRST_ORDINARY_ID}`);
  const rng = createRng(hashString(text));
  const ids = [PEER_CLS_ID];
  for (let i = 0; i < count - 2; i++) ids.push(FIRST_ORDINARY_ID + Math.floor(rng() * (vocabSize - FIRST_ORDINARY_ID)));
  ids.push(PEER_SEP_ID);
  return ids;
}

/** The peer's token count for a text: our piece count + [CLS] + [SEP], capped at {@link PEER_MAX_SEQ_LENGTH}. */
export function peerTokenCount(text: string, tokenizer: PieceCounter): number {
  // Truncating the pieces at 254 gives the same count as encoding everything and capping afterwards, only cheaper.
  return tokenizer.encode(text, { maxLength: PEER_MAX_SEQ_LENGTH - 2 }).length + 2;
}

export interface PeerEmbedResult {
  /** One unit-length vector per text (the graph's masked mean, L2-normalised here as our encoder does). */
  embeddings: Float32Array[];
  /** Tokens fed per text, [CLS]/[SEP] included. */
  tokenCounts: number[];
}

export interface MinilmShapedRunnerInit {
  ort: OrtLike;
  model: Uint8Array;
  tokenizer: PieceCounter;
  vocabSize?: number;
  hidden?: number;
  sessionOptions?: OrtSessionOptions;
}

/** tokenise (count) → ids → one session run → L2-normalise: the peer's whole per-call path. */
export class MinilmShapedRunner {
  private constructor(
    private readonly ort: OrtLike,
    private readonly session: OrtSessionLike,
    private readonly tokenizer: PieceCounter,
    private readonly vocabSize: number,
    private readonly hidden: number,
  ) {}

  static async create(init: MinilmShapedRunnerInit): Promise<MinilmShapedRunner> {
    const session = await init.ort.InferenceSession.create(init.model, init.sessionOptions);
    const missing = [PEER_IO.inputIds, PEER_IO.attentionMask].filter((n) => !session.inputNames.includes(n));
    if (missing.length > 0 || !session.outputNames.includes(PEER_IO.embedding)) {
      await session.release();
      throw new Error(
        `not a MiniLM-shaped peer graph: inputs [${session.inputNames.join(", ")}], outputs [${session.outputNames.join(", ")}]; ` +
          `expected inputs input_ids, attention_mask and output embedding`,
      );
    }
    const { vocabSize, hidden } = MINILM_L6_SHAPE;
    return new MinilmShapedRunner(init.ort, session, init.tokenizer, init.vocabSize ?? vocabSize, init.hidden ?? hidden);
  }

  async embed(texts: readonly string[]): Promise<PeerEmbedResult> {
    if (texts.length === 0) throw new TypeError("embed() needs a non-empty array of texts");
    const rows = texts.map((text) => peerTokenIds(text, peerTokenCount(text, this.tokenizer), this.vocabSize));
    return { embeddings: await this.embedIds(rows), tokenCounts: rows.map((r) => r.length) };
  }

  /** Runs given id rows (padded to the longest with [PAD], mask 0 there). Exposed for tests of the mask. */
  async embedIds(rows: readonly (readonly number[])[]): Promise<Float32Array[]> {
    const B = rows.length;
    const T = rows.reduce((max, r) => Math.max(max, r.length), 1);
    const ids = new BigInt64Array(B * T).fill(BigInt(PEER_PAD_ID));
    const mask = new BigInt64Array(B * T);
    rows.forEach((row, r) => {
      for (let i = 0; i < row.length; i++) {
        ids[r * T + i] = BigInt(row[i]!);
        mask[r * T + i] = 1n;
      }
    });
    const out = await this.session.run({
      [PEER_IO.inputIds]: new this.ort.Tensor("int64", ids, [B, T]),
      [PEER_IO.attentionMask]: new this.ort.Tensor("int64", mask, [B, T]),
    });
    const embedding: OrtTensorLike | undefined = out[PEER_IO.embedding];
    const H = this.hidden;
    if (!embedding || embedding.dims.length !== 2 || embedding.dims[0] !== B || embedding.dims[1] !== H) {
      throw new Error(`peer output "embedding" has shape [${embedding?.dims.join(", ") ?? ""}], expected [${B}, ${H}]`);
    }
    const data = readFloat32(embedding, PEER_IO.embedding);
    return Array.from({ length: B }, (_, r) => l2Normalize(data.slice(r * H, (r + 1) * H)));
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

function l2Normalize(v: Float32Array): Float32Array {
  let sumSquares = 0;
  for (const x of v) sumSquares += x * x;
  if (sumSquares > 0) {
    const scale = 1 / Math.sqrt(sumSquares);
    for (let i = 0; i < v.length; i++) v[i]! *= scale;
  }
  return v;
}
