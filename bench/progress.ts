/**
 * The progress bars of the eval and bench CLIs: on stderr, so stdout keeps only the JSON result a script can parse.
 * A long ETA buffer steadies the estimate when items vary in cost (documents of different lengths, batches).
 */
import { Presets, SingleBar } from "cli-progress";

/** A started bar: "<label> [████░░] 120/5183 docs  1m 3s left". */
export function progressBar(label: string, total: number, unit: "docs" | "queries", options: { etaBuffer?: number } = {}): SingleBar {
  const bar = new SingleBar(
    { format: `${label} [{bar}] {value}/{total} ${unit}  {eta_formatted} left`, stream: process.stderr, etaBuffer: options.etaBuffer ?? 64 },
    Presets.shades_classic,
  );
  bar.start(total, 0);
  return bar;
}
