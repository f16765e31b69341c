/**
 * Waits for every promise, then rethrows the first failure: a write to several indexes never leaves one running
 * behind an answer or a retry (writes are idempotent, so the retry completes only what is missing).
 *
 * @module
 */
export async function settleAll<T>(work: readonly Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(work);
  const failure = settled.find((result): result is PromiseRejectedResult => result.status === "rejected");
  if (failure) throw failure.reason;
  return settled.map((result) => (result as PromiseFulfilledResult<T>).value);
}
