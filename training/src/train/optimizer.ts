/**
 * AdamW (decoupled weight decay), global-norm gradient clipping and the warmup + cosine learning-rate schedule,
 * written on plain tf ops so the optimizer state is ours to checkpoint and restore bit-exactly.
 *
 * Weight decay policy (`decays`): only the 2-D weight matrices of the block and the output projection decay.
 * LayerNorm gammas/betas and biases are scale/offset parameters whose decay towards 0 would fight their function;
 * token and position embeddings are excluded because rows that rarely get a gradient (rare word pieces, late
 * positions) would otherwise be shrunk towards zero by decay alone over a long run.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

export interface AdamWOptions {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** Whether a parameter receives weight decay (see the module comment). */
export function decays(name: string, shape: readonly number[]): boolean {
  return shape.length === 2 && !name.startsWith("embed.");
}

export class AdamW {
  readonly m: Record<string, tf.Variable> = {};
  readonly v: Record<string, tf.Variable> = {};
  /** Number of updates applied (Adam's t); drives bias correction. */
  t = 0;

  constructor(
    private readonly params: Record<string, tf.Variable>,
    private readonly opts: AdamWOptions,
  ) {
    for (const [name, p] of Object.entries(params)) {
      // Unnamed: tfjs variable names are global, and a process may hold several optimizers (tests, teacher models).
      // tidy disposes the zero tensors; the variables keep their own reference to the data.
      this.m[name] = tf.tidy(() => tf.variable(tf.zerosLike(p), false));
      this.v[name] = tf.tidy(() => tf.variable(tf.zerosLike(p), false));
    }
  }

  /** One update with learning rate `lr`. Gradients missing for a parameter (unused) leave it unchanged. */
  apply(grads: Record<string, tf.Tensor>, lr: number): void {
    this.t += 1;
    const { beta1, beta2, eps, weightDecay } = this.opts;
    // Bias corrections folded into the step size (Adam paper, section 2): cheaper than correcting m and v tensors.
    const c1 = 1 - beta1 ** this.t;
    const c2 = 1 - beta2 ** this.t;
    const stepSize = (lr * Math.sqrt(c2)) / c1;
    const epsHat = eps * Math.sqrt(c2);
    tf.tidy(() => {
      for (const [name, p] of Object.entries(this.params)) {
        const g = grads[name];
        if (!g) continue;
        const m = this.m[name] as tf.Variable;
        const v = this.v[name] as tf.Variable;
        const mNew = tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1));
        const vNew = tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2));
        let update = tf.mul(tf.div(mNew, tf.add(tf.sqrt(vNew), epsHat)), stepSize);
        if (weightDecay > 0 && decays(name, p.shape)) {
          // Decoupled: decay is lr·λ·p, independent of the gradient statistics (Loshchilov & Hutter).
          update = tf.add(update, tf.mul(p, lr * weightDecay));
        }
        m.assign(mNew);
        v.assign(vNew);
        p.assign(tf.sub(p, update));
      }
    });
  }

  /**
   * Starts over: moments zero, t = 0. For weights that sat out updates (training.newRowsFirst): Adam's bias correction
   * assumes every update fed the moments, so weights joining at t = N with empty moments would step ~3× too far for
   * hundreds of updates; restarting everyone gives each the corrected first steps of a fresh run.
   */
  reset(): void {
    tf.tidy(() => {
      for (const t of [...Object.values(this.m), ...Object.values(this.v)]) t.assign(tf.zerosLike(t));
    });
    this.t = 0;
  }

  dispose(): void {
    for (const t of [...Object.values(this.m), ...Object.values(this.v)]) t.dispose();
  }
}

/**
 * Scales gradients so their global L2 norm is at most maxNorm. Returns new tensors (the inputs are disposed) and the
 * norm before clipping, which the metrics log (a rising norm is the first sign of a diverging run).
 */
export function clipByGlobalNorm(
  grads: Record<string, tf.Tensor>,
  maxNorm: number,
): { grads: Record<string, tf.Tensor>; norm: number } {
  const norm = tf.tidy(() => {
    const squares = Object.values(grads).map((g) => tf.sum(tf.square(g)));
    return tf.sqrt(tf.addN(squares)).dataSync()[0] as number;
  });
  if (!Number.isFinite(norm)) return { grads, norm };
  const scale = norm > maxNorm ? maxNorm / (norm + 1e-6) : 1;
  if (scale === 1) return { grads, norm };
  const clipped: Record<string, tf.Tensor> = {};
  for (const [name, g] of Object.entries(grads)) {
    clipped[name] = tf.mul(g, scale);
    g.dispose();
  }
  return { grads: clipped, norm };
}

export interface ScheduleOptions {
  lr: number;
  warmupSteps: number;
  totalSteps: number;
  /** The cosine ends at lr·minLrRatio. */
  minLrRatio: number;
}

/** Learning rate for update number `step` (0-based): linear warmup to lr, then cosine down to lr·minLrRatio. */
export function learningRate(step: number, o: ScheduleOptions): number {
  if (o.warmupSteps > 0 && step < o.warmupSteps) return (o.lr * (step + 1)) / o.warmupSteps;
  const span = Math.max(1, o.totalSteps - o.warmupSteps);
  const progress = Math.min(1, (step - o.warmupSteps) / span);
  const floor = o.lr * o.minLrRatio;
  return floor + (o.lr - floor) * 0.5 * (1 + Math.cos(Math.PI * progress));
}
