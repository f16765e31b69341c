/**
 * The terminal progress bar (cli-progress) on stderr: step, loss, tokens/s, lr and ETA.
 * When stderr is not a terminal (a background run logging to a file) it prints a plain line every 30 s instead of
 * redrawing, so the log stays readable.
 *
 * @module
 */
import cliProgress from "cli-progress";

export interface Progress {
  update(step: number, values: { loss: number; tokensPerSec: number; lr: number }): void;
  stop(): void;
}

export function createProgress(total: number, start: number): Progress {
  const bar = new cliProgress.SingleBar(
    {
      format: "train |{bar}| {value}/{total} | loss {loss} | {tps} tok/s | lr {lr} | eta {eta_formatted}",
      stream: process.stderr,
      noTTYOutput: !process.stderr.isTTY,
      notTTYSchedule: 30_000,
      etaBuffer: 50,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, start, { loss: "-", tps: "-", lr: "-" });
  return {
    update(step, v) {
      bar.update(step, { loss: v.loss.toFixed(4), tps: Math.round(v.tokensPerSec), lr: v.lr.toExponential(2) });
    },
    stop() {
      bar.stop();
    },
  };
}
