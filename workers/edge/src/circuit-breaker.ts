/**
 * A circuit breaker for calls to a dependency that may be slow or down (the GPU origin): after `failureThreshold`
 * consecutive failures it opens and refuses calls at once for `cooldownMs`, so a dead origin costs the edge nothing
 * per query instead of a timeout each; then it lets a single probe through (half-open) — success closes it, failure
 * opens it for another cooldown.
 *
 * The clock is injected so tests drive the cooldown without waiting. In a Worker the breaker lives as long as its
 * isolate: each isolate learns about the origin on its own, which is what a per-isolate fallback decision needs.
 *
 * @module
 * @example
 *   const breaker = new CircuitBreaker({ failureThreshold: 3, cooldownMs: 30_000 });
 *   if (!breaker.tryAcquire()) return fallback("circuit_open");
 *   try { const r = await call(); breaker.recordSuccess(); return r; } catch (e) { breaker.recordFailure(); throw e; }
 */

export type CircuitState = "closed" | "open" | "half_open";

export interface CircuitBreakerOptions {
  /** Consecutive failures that open the circuit. Default 3. */
  failureThreshold?: number;
  /** How long an open circuit refuses calls before a probe. Default 30 s. */
  cooldownMs?: number;
  /** Milliseconds since some epoch; default Date.now. */
  now?: () => number;
}

export class CircuitBreaker {
  private readonly failureThreshold: number;
  private readonly cooldownMs: number;
  private readonly now: () => number;
  private consecutiveFailures = 0;
  private openedAt: number | null = null;
  private probeInFlight = false;

  constructor(options: CircuitBreakerOptions = {}) {
    this.failureThreshold = options.failureThreshold ?? 3;
    this.cooldownMs = options.cooldownMs ?? 30_000;
    this.now = options.now ?? Date.now;
    if (!(Number.isInteger(this.failureThreshold) && this.failureThreshold >= 1)) {
      throw new RangeError(`failureThreshold must be a positive integer, got ${this.failureThreshold}`);
    }
    if (!(Number.isFinite(this.cooldownMs) && this.cooldownMs >= 0)) throw new RangeError(`cooldownMs must be ≥ 0, got ${this.cooldownMs}`);
  }

  /** The state as of now: an open circuit whose cooldown has passed reads as half-open. */
  get state(): CircuitState {
    if (this.openedAt === null) return "closed";
    return this.now() - this.openedAt >= this.cooldownMs ? "half_open" : "open";
  }

  /**
   * Whether a call may go ahead now. Closed: yes. Open: no. Half-open: yes for exactly one caller (the probe) until
   * its outcome is recorded; everyone else is refused meanwhile, so a recovering origin is not hit by the backlog.
   */
  tryAcquire(): boolean {
    const state = this.state;
    if (state === "closed") return true;
    if (state === "open" || this.probeInFlight) return false;
    this.probeInFlight = true;
    return true;
  }

  recordSuccess(): void {
    this.consecutiveFailures = 0;
    this.openedAt = null;
    this.probeInFlight = false;
  }

  recordFailure(): void {
    this.consecutiveFailures++;
    // A failed probe reopens at once: one failure after a cooldown says the origin is still down.
    if (this.probeInFlight || this.consecutiveFailures >= this.failureThreshold) this.openedAt = this.now();
    this.probeInFlight = false;
  }
}
