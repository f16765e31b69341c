/**
 * Partial top-k selection with a bounded min-heap: O(n log k) and O(k) memory instead of sorting all n scores.
 * Ties break towards the smaller key so that results are deterministic across runs and storage orders.
 *
 * @module
 * @example
 *   const best = new TopK<number>(10);
 *   for (let i = 0; i < scores.length; i++) best.push(i, scores[i]);
 *   best.sorted(); // [{ key, score }] best first
 */

export interface Scored<Key> {
  key: Key;
  score: number;
}

/** `a` ranks below `b` — lower score, or equal score and a larger key. */
function worse<Key extends string | number>(a: Scored<Key>, b: Scored<Key>): boolean {
  return a.score < b.score || (a.score === b.score && a.key > b.key);
}

export class TopK<Key extends string | number> {
  /** Min-heap on rank: heap[0] is the worst item kept so far, the one a better newcomer evicts. */
  private readonly heap: Scored<Key>[] = [];

  constructor(readonly k: number) {
    if (!Number.isInteger(k) || k < 0) throw new RangeError(`top-k needs a non-negative integer k, got ${k}`);
  }

  get size(): number {
    return this.heap.length;
  }

  /**
   * The score a newcomer must beat once the heap is full (−∞ before). Lets hot loops skip the call entirely; kept in a
   * field, updated by push, because loops over tens of thousands of scores read it once per score.
   */
  get threshold(): number {
    return this.limit;
  }

  private limit = Number.NEGATIVE_INFINITY;

  push(key: Key, score: number): void {
    if (this.k === 0 || Number.isNaN(score)) return;
    const item = { key, score };
    const heap = this.heap;
    if (heap.length < this.k) {
      heap.push(item);
      this.siftUp(heap.length - 1);
      if (heap.length === this.k) this.limit = heap[0]!.score;
      return;
    }
    const root = heap[0]!;
    if (!worse(root, item)) return;
    heap[0] = item;
    this.siftDown(0);
    this.limit = heap[0]!.score;
  }

  /** The kept items, best first. */
  sorted(): Scored<Key>[] {
    return [...this.heap].sort((a, b) => (worse(a, b) ? 1 : worse(b, a) ? -1 : 0));
  }

  private siftUp(index: number): void {
    const heap = this.heap;
    let child = index;
    while (child > 0) {
      const parent = (child - 1) >> 1;
      if (!worse(heap[child]!, heap[parent]!)) break;
      [heap[child], heap[parent]] = [heap[parent]!, heap[child]!];
      child = parent;
    }
  }

  private siftDown(index: number): void {
    const heap = this.heap;
    let parent = index;
    for (;;) {
      const left = 2 * parent + 1;
      const right = left + 1;
      let smallest = parent;
      if (left < heap.length && worse(heap[left]!, heap[smallest]!)) smallest = left;
      if (right < heap.length && worse(heap[right]!, heap[smallest]!)) smallest = right;
      if (smallest === parent) return;
      [heap[parent], heap[smallest]] = [heap[smallest]!, heap[parent]!];
      parent = smallest;
    }
  }
}
