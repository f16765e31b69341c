/**
 * Principal component analysis of stored embeddings, hand-written so it runs wherever the index does (no BLAS, no
 * `node:` imports): centre, covariance, then the cyclic Jacobi eigen-decomposition of the symmetric covariance.
 *
 * Why Jacobi: the covariance is small (384 × 384 for TAESR), symmetric and dense; Jacobi rotations are a few lines,
 * converge quadratically once the matrix is nearly diagonal, need no tuning, and return every eigenpair to full
 * precision at once — power iteration with deflation would lose accuracy on the trailing components and needs a
 * convergence rule per component. Cost for n = 384: about ten sweeps of n²/2 rotations, a second or two in JS.
 *
 * PCA here is the comparison point for Matryoshka prefixes: both reduce 384 dimensions to 64 or 128, PCA by the
 * directions of largest variance of this corpus (fitted after the fact), Matryoshka by training the first components
 * to stand alone. Queries are centred with the corpus mean and projected with the same components; projected vectors
 * are L2-normalised so that dot product stays cosine.
 *
 * @module
 * @example
 *   const pca = fitPca(docMatrix, 384, 128);           // mean + 128 components, variances descending
 *   const docs = pcaProjectRows(pca, docMatrix);        // rows × 128, unit length
 *   const q = pcaProject(pca, queryVector);             // 128, unit length
 */

/** A fitted projection: `components` row c is the c-th principal direction (unit length), largest variance first. */
export interface PcaModel {
  inputDims: number;
  outputDims: number;
  mean: Float64Array<ArrayBuffer>;
  /** outputDims × inputDims, row-major. */
  components: Float64Array<ArrayBuffer>;
  /** Variance along each kept component (the covariance's eigenvalues, population: divided by N), descending. */
  variances: Float64Array<ArrayBuffer>;
  /** Total variance (trace of the covariance), so that Σ variances / totalVariance is the explained share. */
  totalVariance: number;
}

export interface SymmetricEigen {
  /** Eigenvalues, descending. */
  values: Float64Array<ArrayBuffer>;
  /** n × n row-major; row i is the unit eigenvector of values[i], signed so that its largest-magnitude component is positive. */
  vectors: Float64Array<ArrayBuffer>;
  sweeps: number;
}

/**
 * Eigen-decomposition of a symmetric n × n matrix (row-major; only symmetry is assumed, the input is not modified) by
 * cyclic Jacobi rotations, until the off-diagonal mass is below `tolerance` × the matrix's Frobenius norm.
 */
export function symmetricEigen(matrix: ArrayLike<number>, n: number, options: { tolerance?: number; maxSweeps?: number } = {}): SymmetricEigen {
  if (!Number.isInteger(n) || n <= 0) throw new RangeError(`n must be a positive integer, got ${n}`);
  if (matrix.length !== n * n) throw new RangeError(`matrix has ${matrix.length} entries, ${n} × ${n} needs ${n * n}`);
  const tolerance = options.tolerance ?? 1e-12;
  const maxSweeps = options.maxSweeps ?? 100;
  const a = Float64Array.from(matrix as ArrayLike<number>);
  // v accumulates the rotations: A = V · diag · Vᵀ, eigenvectors in v's columns.
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;

  let total = 0;
  for (let i = 0; i < n * n; i++) total += a[i]! * a[i]!;
  const threshold = tolerance * tolerance * total;

  let sweeps = 0;
  for (; sweeps < maxSweeps; sweeps++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += 2 * a[p * n + q]! * a[p * n + q]!;
    if (off <= threshold) break;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q]!;
        if (apq === 0) continue;
        // Rotation angle φ that zeroes a_pq: cot 2φ = θ, t = tan φ, the smaller root for stability.
        const theta = (a[q * n + q]! - a[p * n + p]!) / (2 * apq);
        const t = (theta >= 0 ? 1 : -1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        // A ← A·J (columns p, q), then A ← Jᵀ·A (rows p, q); V ← V·J.
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p]!;
          const akq = a[k * n + q]!;
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k]!;
          const aqk = a[q * n + k]!;
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p]!;
          const vkq = v[k * n + q]!;
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }

  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => a[j * n + j]! - a[i * n + i]! || i - j);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  order.forEach((column, row) => {
    values[row] = a[column * n + column]!;
    let largest = 0;
    for (let k = 0; k < n; k++) if (Math.abs(v[k * n + column]!) > Math.abs(largest)) largest = v[k * n + column]!;
    const sign = largest < 0 ? -1 : 1;
    for (let k = 0; k < n; k++) vectors[row * n + k] = sign * v[k * n + column]!;
  });
  return { values, vectors, sweeps };
}

/** Fits a `components`-wide PCA to the rows of a row-major `rows × dims` matrix (population covariance, divided by N). */
export function fitPca(matrix: ArrayLike<number>, dims: number, components: number): PcaModel {
  if (!Number.isInteger(dims) || dims <= 0) throw new RangeError(`dims must be a positive integer, got ${dims}`);
  if (!Number.isInteger(components) || components <= 0 || components > dims) {
    throw new RangeError(`components must be an integer from 1 to ${dims}, got ${components}`);
  }
  if (matrix.length === 0 || matrix.length % dims !== 0) throw new RangeError(`matrix length ${matrix.length} is not a positive multiple of ${dims}`);
  const rows = matrix.length / dims;
  const mean = new Float64Array(dims);
  for (let r = 0; r < rows; r++) for (let i = 0; i < dims; i++) mean[i]! += matrix[r * dims + i]!;
  for (let i = 0; i < dims; i++) mean[i]! /= rows;

  // Upper triangle of Σ (x − μ)(x − μ)ᵀ, mirrored afterwards.
  const covariance = new Float64Array(dims * dims);
  const centred = new Float64Array(dims);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < dims; i++) centred[i] = matrix[r * dims + i]! - mean[i]!;
    for (let i = 0; i < dims; i++) {
      const xi = centred[i]!;
      if (xi === 0) continue;
      const base = i * dims;
      for (let j = i; j < dims; j++) covariance[base + j]! += xi * centred[j]!;
    }
  }
  let totalVariance = 0;
  for (let i = 0; i < dims; i++) {
    for (let j = i; j < dims; j++) {
      const value = covariance[i * dims + j]! / rows;
      covariance[i * dims + j] = value;
      covariance[j * dims + i] = value;
    }
    totalVariance += covariance[i * dims + i]!;
  }

  const eigen = symmetricEigen(covariance, dims);
  return {
    inputDims: dims,
    outputDims: components,
    mean,
    components: eigen.vectors.slice(0, components * dims),
    // A covariance is positive semi-definite; a tiny negative eigenvalue is rounding.
    variances: eigen.values.slice(0, components).map((value) => Math.max(0, value)),
    totalVariance,
  };
}

/** Share of the total variance the kept components explain, in [0, 1]. */
export function explainedVariance(model: PcaModel): number {
  if (model.totalVariance <= 0) return 0;
  let kept = 0;
  for (const value of model.variances) kept += value;
  return kept / model.totalVariance;
}

/** (vector − mean) projected on the components; L2-normalised unless `normalize: false` (a zero result stays zero). */
export function pcaProject(model: PcaModel, vector: ArrayLike<number>, options: { normalize?: boolean } = {}): Float32Array<ArrayBuffer> {
  const { inputDims: n, outputDims: k, mean, components } = model;
  if (vector.length !== n) throw new RangeError(`vector has ${vector.length} components, the PCA was fitted on ${n}`);
  const out = new Float32Array(k);
  let sumSquares = 0;
  for (let c = 0; c < k; c++) {
    let dot = 0;
    for (let i = 0; i < n; i++) dot += components[c * n + i]! * (vector[i]! - mean[i]!);
    out[c] = dot;
    sumSquares += dot * dot;
  }
  if (options.normalize !== false && sumSquares > 0) {
    const scale = 1 / Math.sqrt(sumSquares);
    for (let c = 0; c < k; c++) out[c]! *= scale;
  }
  return out;
}

/** {@link pcaProject} of every row of a row-major matrix: rows × outputDims, row-major. */
export function pcaProjectRows(model: PcaModel, matrix: ArrayLike<number>, options: { normalize?: boolean } = {}): Float32Array<ArrayBuffer> {
  const n = model.inputDims;
  if (matrix.length % n !== 0) throw new RangeError(`matrix length ${matrix.length} is not a multiple of ${n}`);
  const rows = matrix.length / n;
  const out = new Float32Array(rows * model.outputDims);
  const row = new Float64Array(n);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < n; i++) row[i] = matrix[r * n + i]!;
    out.set(pcaProject(model, row, options), r * model.outputDims);
  }
  return out;
}
