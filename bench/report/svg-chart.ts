/**
 * Hand-written SVG line and scatter charts for the evaluation reports, with no charting library: the reports should
 * open anywhere (a browser, GitHub's file view, an editor preview) and a dependency for two charts would weigh more
 * than the charts. What makes a chart readable is kept: a title and subtitle that say what is plotted, axes with
 * "nice" ticks (1/2/5 × 10^k, or 1-2-5 decades on a log axis) and labels with units, light grid lines, one colour per
 * series (the Okabe–Ito palette, readable by colour-blind viewers) with a legend, labelled points (placed greedily so
 * they do not overlap; a label with no free spot is left out), dashed horizontal reference lines (named in the legend,
 * and beside the line where there is room), and notes under the plot for what did not fit on it.
 *
 * Every point is a `<circle>` carrying `data-series`, `data-x` and `data-y`, so tests (and scripts) can check what was
 * drawn without parsing geometry.
 *
 * @example
 *   const svg = renderChart({
 *     title: "Quality vs dimensions", x: { label: "dimensions", scale: "log", ticks: [64, 128, 256, 384] },
 *     y: { label: "NDCG@10", min: 0 }, series: [{ name: "Matryoshka", points: [{ x: 64, y: 0.01 }, { x: 128, y: 0.02 }] }],
 *   });
 */

export interface ChartPoint {
  x: number;
  y: number;
  /** Drawn beside the point. */
  label?: string;
}

export interface ChartSeries {
  name: string;
  points: ChartPoint[];
  /** Join the points with a line (in x order). Default true; false draws a scatter. */
  line?: boolean;
  /** Override the palette colour. */
  color?: string;
  dashed?: boolean;
}

export interface ChartAxis {
  label: string;
  scale?: "linear" | "log";
  /** Tick positions; default: nice ticks over the domain. */
  ticks?: number[];
  /** Domain bounds; default: the data's (and references') extent, widened to nice values. */
  min?: number;
  max?: number;
  /** Upper limit for the automatic maximum (e.g. 1 for a metric that cannot exceed 1); ignored when `max` is given. */
  ceiling?: number;
  /** Tick label text; default: a compact number. */
  format?: (value: number) => string;
}

export interface ChartReference {
  /** A horizontal line at this y. */
  y: number;
  label: string;
}

export interface ChartSpec {
  title: string;
  subtitle?: string;
  x: ChartAxis;
  y: ChartAxis;
  series: ChartSeries[];
  references?: ChartReference[];
  /** Lines of small text under the plot. */
  notes?: string[];
  width?: number;
  height?: number;
}

/** Okabe–Ito, without its yellow (too faint on white), then two greys. */
export const PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#7F7F7F", "#B0B0B0"];

const FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif";
const TITLE_SIZE = 18;
const TEXT_SIZE = 13;
const SMALL_SIZE = 11;
/** Legend column width bounds; within them it fits the longest entry. */
const LEGEND_MIN_WIDTH = 140;
const LEGEND_MAX_WIDTH = 320;

export interface Layout {
  width: number;
  height: number;
  plot: { left: number; top: number; width: number; height: number };
  xDomain: [number, number];
  yDomain: [number, number];
  xTicks: number[];
  yTicks: number[];
  /** Data → pixel. */
  x(value: number): number;
  y(value: number): number;
}

/** Where everything goes: plot rectangle, domains, ticks and the data → pixel maps. */
export function chartLayout(spec: ChartSpec): Layout {
  const width = spec.width ?? 880;
  const notes = spec.notes?.length ?? 0;
  const height = spec.height ?? 520 + notes * 16;
  const top = 28 + TITLE_SIZE + (spec.subtitle ? 20 : 0);
  const longest = Math.max(
    0,
    ...spec.series.map((s) => textWidth(s.name, TEXT_SIZE)),
    ...(spec.references ?? []).map((r) => textWidth(referenceText(r), SMALL_SIZE)),
  );
  const legendWidth = Math.min(LEGEND_MAX_WIDTH, Math.max(LEGEND_MIN_WIDTH, Math.ceil(longest) + 48));
  const plot = { left: 78, top, width: width - 78 - legendWidth - 12, height: height - top - 62 - notes * 16 };

  const xs = spec.series.flatMap((s) => s.points.map((p) => p.x));
  const ys = [...spec.series.flatMap((s) => s.points.map((p) => p.y)), ...(spec.references ?? []).map((r) => r.y)];
  const xDomain = domain(spec.x, xs);
  const yDomain = domain(spec.y, ys);
  const xMap = axisMap(spec.x.scale ?? "linear", xDomain, plot.left, plot.left + plot.width);
  const yMap = axisMap(spec.y.scale ?? "linear", yDomain, plot.top + plot.height, plot.top);
  const inside = (d: [number, number]) => (t: number) => t >= d[0] - 1e-12 && t <= d[1] + 1e-12;
  return {
    width,
    height,
    plot,
    xDomain,
    yDomain,
    xTicks: (spec.x.ticks ?? niceTicks(spec.x.scale ?? "linear", xDomain)).filter(inside(xDomain)),
    yTicks: (spec.y.ticks ?? niceTicks(spec.y.scale ?? "linear", yDomain)).filter(inside(yDomain)),
    x: xMap,
    y: yMap,
  };
}

function domain(axis: ChartAxis, values: number[]): [number, number] {
  const log = axis.scale === "log";
  const usable = values.filter((v) => Number.isFinite(v) && (!log || v > 0));
  let lo = axis.min ?? (usable.length ? Math.min(...usable) : log ? 1 : 0);
  let hi = axis.max ?? (usable.length ? Math.max(...usable) : log ? 10 : 1);
  if (log) {
    if (axis.min === undefined) lo = lo / 1.25;
    if (axis.max === undefined) hi = axis.ceiling !== undefined ? Math.min(hi * 1.25, axis.ceiling) : hi * 1.25;
    if (lo <= 0) lo = hi / 10;
  } else {
    if (hi === lo) {
      lo -= 0.5;
      hi += 0.5;
    }
    const step = niceStep((hi - lo) / 5);
    if (axis.min === undefined) lo = Math.floor((lo - step * 0.25) / step) * step;
    if (axis.max === undefined) hi = Math.ceil((hi + step * 0.25) / step) * step;
    if (axis.max === undefined && axis.ceiling !== undefined) hi = Math.max(Math.min(hi, axis.ceiling), lo + step);
    // A quality axis should not dip below 0 just for padding.
    if (axis.min === undefined && lo < 0 && usable.every((v) => v >= 0)) lo = 0;
  }
  return [lo, hi];
}

function axisMap(scale: "linear" | "log", [lo, hi]: [number, number], from: number, to: number): (value: number) => number {
  if (scale === "log") {
    const a = Math.log(lo);
    const b = Math.log(hi);
    return (value) => from + ((Math.log(value) - a) / (b - a)) * (to - from);
  }
  return (value) => from + ((value - lo) / (hi - lo)) * (to - from);
}

/** 1, 2 or 5 × 10^k, the smallest not below `raw`. */
export function niceStep(raw: number): number {
  if (!(raw > 0) || !Number.isFinite(raw)) return 1;
  const power = 10 ** Math.floor(Math.log10(raw));
  const fraction = raw / power;
  return (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * power;
}

/** About five evenly spaced round ticks (linear), or 1-2-5 per decade (log). */
export function niceTicks(scale: "linear" | "log", [lo, hi]: [number, number]): number[] {
  if (scale === "log") {
    const ticks: number[] = [];
    for (let power = Math.floor(Math.log10(lo)); power <= Math.ceil(Math.log10(hi)); power++) {
      for (const m of [1, 2, 5]) {
        const t = m * 10 ** power;
        if (t >= lo && t <= hi) ticks.push(Number(t.toPrecision(12)));
      }
    }
    return ticks;
  }
  const step = niceStep((hi - lo) / 5);
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

function formatNumber(value: number): string {
  const abs = Math.abs(value);
  if (abs !== 0 && (abs >= 1e5 || abs < 1e-3)) return value.toExponential(1);
  return String(Number(value.toPrecision(4)));
}

export function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&apos;");
}

const px = (value: number) => (Math.round(value * 100) / 100).toString();

/** Rough width of a text run in pixels (average glyph ≈ 0.56 em for the sans-serif stack above). */
function textWidth(text: string, size: number): number {
  return text.length * size * 0.56;
}

interface Box {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

function referenceText(ref: ChartReference): string {
  return `${ref.label}: ${formatNumber(ref.y)}`;
}

const overlaps = (a: Box, b: Box) => a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1;

export function renderChart(spec: ChartSpec): string {
  const layout = chartLayout(spec);
  const { width, height, plot } = layout;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${escapeXml(FONT)}" font-size="${TEXT_SIZE}">`,
  );
  out.push(`<title>${escapeXml(spec.title)}</title>`);
  out.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="${plot.left}" y="${28}" font-size="${TITLE_SIZE}" font-weight="600" fill="#111111">${escapeXml(spec.title)}</text>`);
  if (spec.subtitle) out.push(`<text x="${plot.left}" y="${28 + 20}" fill="#444444">${escapeXml(spec.subtitle)}</text>`);

  // Grid and ticks.
  const bottom = plot.top + plot.height;
  const right = plot.left + plot.width;
  const fx = spec.x.format ?? formatNumber;
  const fy = spec.y.format ?? formatNumber;
  out.push(`<g class="grid" stroke="#e3e3e3" stroke-width="1">`);
  for (const t of layout.xTicks) out.push(`<line x1="${px(layout.x(t))}" y1="${plot.top}" x2="${px(layout.x(t))}" y2="${bottom}"/>`);
  for (const t of layout.yTicks) out.push(`<line x1="${plot.left}" y1="${px(layout.y(t))}" x2="${right}" y2="${px(layout.y(t))}"/>`);
  out.push(`</g>`);
  out.push(`<rect x="${plot.left}" y="${plot.top}" width="${plot.width}" height="${plot.height}" fill="none" stroke="#333333" stroke-width="1"/>`);
  out.push(`<g class="x-ticks" fill="#333333" text-anchor="middle">`);
  for (const t of layout.xTicks) {
    out.push(`<line x1="${px(layout.x(t))}" y1="${bottom}" x2="${px(layout.x(t))}" y2="${bottom + 5}" stroke="#333333"/>`);
    out.push(`<text x="${px(layout.x(t))}" y="${bottom + 19}">${escapeXml(fx(t))}</text>`);
  }
  out.push(`</g>`);
  out.push(`<g class="y-ticks" fill="#333333" text-anchor="end">`);
  for (const t of layout.yTicks) {
    out.push(`<line x1="${plot.left - 5}" y1="${px(layout.y(t))}" x2="${plot.left}" y2="${px(layout.y(t))}" stroke="#333333"/>`);
    out.push(`<text x="${plot.left - 8}" y="${px(layout.y(t) + 4)}">${escapeXml(fy(t))}</text>`);
  }
  out.push(`</g>`);
  out.push(`<text x="${px(plot.left + plot.width / 2)}" y="${bottom + 42}" text-anchor="middle" fill="#111111">${escapeXml(spec.x.label)}</text>`);
  const yLabelX = 20;
  const yLabelY = plot.top + plot.height / 2;
  out.push(`<text x="${yLabelX}" y="${px(yLabelY)}" text-anchor="middle" fill="#111111" transform="rotate(-90 ${yLabelX} ${px(yLabelY)})">${escapeXml(spec.y.label)}</text>`);

  const placed: Box[] = [];
  const inPlot = (p: ChartPoint) => {
    const [x0, x1] = layout.xDomain;
    const [y0, y1] = layout.yDomain;
    const logOk = (spec.x.scale !== "log" || p.x > 0) && (spec.y.scale !== "log" || p.y > 0);
    return logOk && p.x >= x0 && p.x <= x1 && p.y >= y0 && p.y <= y1;
  };

  const lineBoxes: Box[] = [];
  // Reference lines, labelled at the right end inside the plot.
  for (const ref of spec.references ?? []) {
    if (ref.y < layout.yDomain[0] || ref.y > layout.yDomain[1]) continue;
    const y = layout.y(ref.y);
    out.push(`<line class="reference" x1="${plot.left}" y1="${px(y)}" x2="${right}" y2="${px(y)}" stroke="#777777" stroke-width="1.2" stroke-dasharray="6 4"/>`);
    // Point labels keep off the line itself, not only off its label.
    lineBoxes.push({ x0: plot.left, y0: y - 1.5, x1: right, y1: y + 1.5 });
    // Labelled at the plot's right end when that spot is free; the legend names every reference in any case.
    const text = referenceText(ref);
    const w = textWidth(text, SMALL_SIZE);
    const box = { x0: right - 6 - w, y0: y - 4 - SMALL_SIZE, x1: right - 6, y1: y - 2 };
    if (placed.some((b) => overlaps(b, box))) continue;
    placed.push(box);
    out.push(`<text x="${px(right - 6)}" y="${px(y - 5)}" text-anchor="end" font-size="${SMALL_SIZE}" fill="#555555">${escapeXml(text)}</text>`);
  }

  // Series: lines first, then points, then labels on top.
  const labels: string[] = [];
  spec.series.forEach((series, index) => {
    const color = series.color ?? PALETTE[index % PALETTE.length]!;
    const points = series.points.filter(inPlot);
    if ((series.line ?? true) && points.length > 1) {
      const path = [...points].sort((a, b) => a.x - b.x).map((p) => `${px(layout.x(p.x))},${px(layout.y(p.y))}`).join(" ");
      out.push(
        `<polyline data-series="${escapeXml(series.name)}" points="${path}" fill="none" stroke="${color}" stroke-width="2.2"${series.dashed ? ' stroke-dasharray="7 4"' : ""}/>`,
      );
    }
    for (const p of points) {
      const cx = layout.x(p.x);
      const cy = layout.y(p.y);
      out.push(
        `<circle data-series="${escapeXml(series.name)}" data-x="${p.x}" data-y="${p.y}" cx="${px(cx)}" cy="${px(cy)}" r="4.5" fill="${color}" stroke="#ffffff" stroke-width="1.2"/>`,
      );
      placed.push({ x0: cx - 5, y0: cy - 5, x1: cx + 5, y1: cy + 5 });
    }
  });
  spec.series.forEach((series, index) => {
    const color = series.color ?? PALETTE[index % PALETTE.length]!;
    for (const p of series.points.filter(inPlot)) {
      if (!p.label) continue;
      const cx = layout.x(p.x);
      const cy = layout.y(p.y);
      const w = textWidth(p.label, SMALL_SIZE);
      const h = SMALL_SIZE + 2;
      // Candidate spots around the point, nearest first; the first that overlaps nothing drawn so far and stays in the plot wins.
      const spots = [
        { x: cx + 7, y: cy + 4, anchor: "start" },
        { x: cx + 7, y: cy - 8, anchor: "start" },
        { x: cx + 7, y: cy + 15, anchor: "start" },
        { x: cx - 7, y: cy + 4, anchor: "end" },
        { x: cx - 7, y: cy - 8, anchor: "end" },
        { x: cx - 7, y: cy + 15, anchor: "end" },
        { x: cx, y: cy - 10, anchor: "middle" },
        { x: cx, y: cy + 19, anchor: "middle" },
        { x: cx + 7, y: cy - 20, anchor: "start" },
        { x: cx + 7, y: cy + 27, anchor: "start" },
      ];
      const boxOf = (s: { x: number; y: number; anchor: string }): Box => {
        const x0 = s.anchor === "start" ? s.x : s.anchor === "end" ? s.x - w : s.x - w / 2;
        return { x0, y0: s.y - h + 2, x1: x0 + w, y1: s.y + 2 };
      };
      const fits = (b: Box) => b.x0 >= plot.left && b.x1 <= right && b.y0 >= plot.top && b.y1 <= bottom;
      // No free spot: leave the label out rather than print it over another (the legend still names the series).
      const spot = spots.find((s) => fits(boxOf(s)) && !placed.some((b) => overlaps(b, boxOf(s))) && !lineBoxes.some((b) => overlaps(b, boxOf(s))));
      if (!spot) continue;
      placed.push(boxOf(spot));
      labels.push(`<text x="${px(spot.x)}" y="${px(spot.y)}" text-anchor="${spot.anchor}" font-size="${SMALL_SIZE}" fill="${color}">${escapeXml(p.label)}</text>`);
    }
  });
  out.push(`<g class="labels">`, ...labels, `</g>`);

  // Legend to the right of the plot.
  const legendX = right + 18;
  out.push(`<g class="legend">`);
  spec.series.forEach((series, index) => {
    const color = series.color ?? PALETTE[index % PALETTE.length]!;
    const y = plot.top + 8 + index * 22;
    if (series.line ?? true) {
      out.push(`<line x1="${legendX}" y1="${y}" x2="${legendX + 22}" y2="${y}" stroke="${color}" stroke-width="2.2"${series.dashed ? ' stroke-dasharray="7 4"' : ""}/>`);
    }
    out.push(`<circle cx="${legendX + 11}" cy="${y}" r="4.5" fill="${color}" stroke="#ffffff" stroke-width="1.2"/>`);
    out.push(`<text x="${legendX + 30}" y="${y + 4}" fill="#222222">${escapeXml(series.name)}</text>`);
  });
  // References, highest first, under the series.
  [...(spec.references ?? [])]
    .sort((a, b) => b.y - a.y)
    .forEach((ref, index) => {
      const y = plot.top + 8 + spec.series.length * 22 + 6 + index * 18;
      out.push(`<line x1="${legendX}" y1="${y}" x2="${legendX + 22}" y2="${y}" stroke="#777777" stroke-width="1.2" stroke-dasharray="6 4"/>`);
      out.push(`<text x="${legendX + 30}" y="${y + 4}" font-size="${SMALL_SIZE}" fill="#444444">${escapeXml(referenceText(ref))}</text>`);
    });
  out.push(`</g>`);

  (spec.notes ?? []).forEach((note, index) => {
    out.push(`<text x="${plot.left}" y="${px(bottom + 62 + index * 16)}" font-size="${SMALL_SIZE}" fill="#555555">${escapeXml(note)}</text>`);
  });
  out.push(`</svg>`);
  return `${out.join("\n")}\n`;
}
