/**
 * Dynamic micro-batching: requests' texts wait in one bounded queue and run together, one `run` call per batch, so a
 * burst of small requests costs one pass through the model instead of one each.
 *
 * - A batch starts when `maxBatch` texts are waiting, or `maxWaitMs` after the oldest waiting text arrived, whichever
 *   comes first; while a batch runs, new texts accumulate and the next batch starts as soon as it ends (the model is
 *   the bottleneck, so waiting longer would only add latency).
 * - One batch runs at a time: the encoder serialises its calls anyway, and on one GPU overlapping batches would only
 *   compete for it.
 * - Texts batch only with texts of the same `key` (the options a batch runs with, e.g. dims and depth); a request
 *   larger than `maxBatch` is split across consecutive batches and answered when its last part has run.
 * - The queue is bounded in texts (`maxQueue`): a request that would overflow it is refused at once with
 *   {@link OverloadedError}, so overload sheds load instead of growing latency without limit.
 * - A failed batch fails only the requests that had texts in it.
 * - {@link MicroBatcher.drain} refuses new work ({@link DrainingError}) and runs everything already accepted.
 *
 * @module
 * @example
 *   const batcher = new MicroBatcher<Float32Array, string>({ maxBatch: 32, maxWaitMs: 5, maxQueue: 1024,
 *     run: (key, texts) => embedAll(texts, key) });
 *   const rows = await batcher.submit(["a", "b"], "384:6");
 */

export interface MicroBatcherOptions<Row, Key extends string | number> {
  /** Most texts per `run` call. */
  maxBatch: number;
  /** Longest a text waits for company before its batch starts anyway. */
  maxWaitMs: number;
  /** Most texts waiting (not yet running) at once; more are refused. */
  maxQueue: number;
  /** Runs one batch: one row per text, in order. */
  run(key: Key, texts: string[]): Promise<Row[]>;
}

/** The queue is full: the caller should retry later (HTTP 429). */
export class OverloadedError extends Error {
  constructor(
    readonly queued: number,
    readonly maxQueue: number,
    /** A hint for Retry-After: a second is ample for a queue of model-sized batches to move on. */
    readonly retryAfterSeconds = 1,
  ) {
    super(`the embedding queue is full (${queued} texts waiting, at most ${maxQueue}); retry shortly`);
    this.name = "OverloadedError";
  }
}

/** The batcher is draining for shutdown and accepts no new work (HTTP 503). */
export class DrainingError extends Error {
  constructor() {
    super("the origin is shutting down and accepts no new requests");
    this.name = "DrainingError";
  }
}

export interface BatcherStats {
  /** Texts waiting for a batch. */
  queuedTexts: number;
  /** Requests with at least one text waiting. */
  queuedRequests: number;
  /** Texts in the batch running now (0 when idle). */
  runningTexts: number;
  batchesRun: number;
  batchesFailed: number;
  textsRun: number;
  largestBatch: number;
  draining: boolean;
}

interface Job<Row, Key extends string | number> {
  key: Key;
  texts: readonly string[];
  rows: Row[];
  /** Texts handed to batches so far (texts[scheduled…] still wait). */
  scheduled: number;
  /** Texts whose rows have come back. */
  done: number;
  arrivedAt: number;
  failed: boolean;
  resolve(rows: Row[]): void;
  reject(error: unknown): void;
}

interface Slice<Row, Key extends string | number> {
  job: Job<Row, Key>;
  start: number;
  count: number;
}

export class MicroBatcher<Row, Key extends string | number = string> {
  private readonly options: MicroBatcherOptions<Row, Key>;
  /** Jobs with texts still waiting, oldest first. */
  private readonly waiting: Job<Row, Key>[] = [];
  private queuedTexts = 0;
  private running: Promise<void> | null = null;
  private runningTexts = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private draining = false;
  private idleWaiters: (() => void)[] = [];
  private counters = { batchesRun: 0, batchesFailed: 0, textsRun: 0, largestBatch: 0 };

  constructor(options: MicroBatcherOptions<Row, Key>) {
    for (const name of ["maxBatch", "maxQueue"] as const) {
      if (!(Number.isInteger(options[name]) && options[name] >= 1)) throw new RangeError(`${name} must be a positive integer, got ${options[name]}`);
    }
    if (!(Number.isFinite(options.maxWaitMs) && options.maxWaitMs >= 0)) throw new RangeError(`maxWaitMs must be ≥ 0, got ${options.maxWaitMs}`);
    this.options = options;
  }

  /**
   * Queues `texts` (at least one) under `key` and resolves with their rows in order once every one has run.
   * Rejects at once with {@link OverloadedError} when they would overflow the queue, or {@link DrainingError}.
   */
  submit(texts: readonly string[], key: Key): Promise<Row[]> {
    if (this.draining) return Promise.reject(new DrainingError());
    if (texts.length === 0) return Promise.resolve([]);
    // A request larger than the whole queue could never be accepted; let it through when the queue is empty rather
    // than refusing it forever (it still runs in maxBatch-sized parts).
    if (this.queuedTexts > 0 && this.queuedTexts + texts.length > this.options.maxQueue) {
      return Promise.reject(new OverloadedError(this.queuedTexts, this.options.maxQueue));
    }
    return new Promise<Row[]>((resolve, reject) => {
      this.waiting.push({ key, texts, rows: new Array<Row>(texts.length), scheduled: 0, done: 0, arrivedAt: Date.now(), failed: false, resolve, reject });
      this.queuedTexts += texts.length;
      this.schedule();
    });
  }

  stats(): BatcherStats {
    return {
      queuedTexts: this.queuedTexts,
      queuedRequests: this.waiting.length,
      runningTexts: this.runningTexts,
      ...this.counters,
      draining: this.draining,
    };
  }

  /** Refuses new work from now on and resolves once every accepted request has been answered. */
  drain(): Promise<void> {
    this.draining = true;
    this.schedule();
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private isIdle(): boolean {
    return this.running === null && this.waiting.length === 0;
  }

  /** Starts a batch now if one is due, else arms the timer for the oldest waiting text. */
  private schedule(): void {
    if (this.running || this.waiting.length === 0) return;
    const oldest = this.waiting[0]!;
    const waitLeft = oldest.arrivedAt + this.options.maxWaitMs - Date.now();
    // Draining: nothing else will arrive, so waiting for company would only delay shutdown.
    if (this.queuedTexts >= this.options.maxBatch || waitLeft <= 0 || this.draining) {
      this.clearTimer();
      this.startBatch();
    } else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.schedule();
      }, waitLeft);
    }
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Takes up to maxBatch waiting texts sharing the oldest job's key, oldest first, and runs them. */
  private startBatch(): void {
    const key = this.waiting[0]!.key;
    const slices: Slice<Row, Key>[] = [];
    let taken = 0;
    for (let i = 0; i < this.waiting.length && taken < this.options.maxBatch; ) {
      const job = this.waiting[i]!;
      if (job.key !== key) {
        i++;
        continue;
      }
      const count = Math.min(job.texts.length - job.scheduled, this.options.maxBatch - taken);
      slices.push({ job, start: job.scheduled, count });
      job.scheduled += count;
      taken += count;
      if (job.scheduled === job.texts.length) this.waiting.splice(i, 1);
      else i++;
    }
    this.queuedTexts -= taken;
    this.runningTexts = taken;
    const texts = slices.flatMap(({ job, start, count }) => job.texts.slice(start, start + count));
    this.running = this.runBatch(key, texts, slices).finally(() => {
      this.running = null;
      this.runningTexts = 0;
      if (this.isIdle()) {
        for (const resolve of this.idleWaiters.splice(0)) resolve();
      } else {
        this.schedule();
      }
    });
  }

  private async runBatch(key: Key, texts: string[], slices: Slice<Row, Key>[]): Promise<void> {
    let rows: Row[];
    try {
      rows = await this.options.run(key, texts);
      if (rows.length !== texts.length) throw new Error(`a batch of ${texts.length} texts returned ${rows.length} rows`);
    } catch (error) {
      this.counters.batchesFailed++;
      for (const { job } of slices) this.fail(job, error);
      return;
    }
    this.counters.batchesRun++;
    this.counters.textsRun += texts.length;
    this.counters.largestBatch = Math.max(this.counters.largestBatch, texts.length);
    let offset = 0;
    for (const { job, start, count } of slices) {
      for (let i = 0; i < count; i++) job.rows[start + i] = rows[offset + i]!;
      offset += count;
      job.done += count;
      if (!job.failed && job.done === job.texts.length) job.resolve(job.rows);
    }
  }

  /** Rejects a job and drops whatever of it still waits, so a failed request does not keep using the model. */
  private fail(job: Job<Row, Key>, error: unknown): void {
    if (job.failed) return;
    job.failed = true;
    const index = this.waiting.indexOf(job);
    if (index >= 0) {
      this.waiting.splice(index, 1);
      this.queuedTexts -= job.texts.length - job.scheduled;
    }
    job.reject(error);
  }
}
