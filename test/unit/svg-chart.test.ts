/**
 * The hand-written SVG charts of the evaluation reports (bench/report/svg-chart.ts): the output is well-formed XML with
 * one <svg> root, every point is drawn where the axes say it should be, text is escaped, and the tick helpers give
 * round numbers.
 */
import { describe, expect, it } from "vitest";
import { chartLayout, escapeXml, niceStep, niceTicks, renderChart, type ChartSpec } from "../../bench/report/svg-chart.js";

/**
 * A small well-formedness check, enough for generated SVG: tags nest and close properly, there is exactly one root,
 * attributes are name="value" pairs, and no raw "<" or stray "&" appears in text or attribute values.
 */
function checkWellFormed(xml: string): void {
  const stack: string[] = [];
  let roots = 0;
  const tag = /<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+="[^"]*")*)\s*(\/?)>/y;
  const entity = /^&(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/;
  let i = 0;
  while (i < xml.length) {
    if (xml[i] === "<") {
      tag.lastIndex = i;
      const match = tag.exec(xml);
      if (!match) throw new Error(`malformed tag at ${i}: ${xml.slice(i, i + 60)}`);
      const [, closing, name, attributes, selfClosing] = match;
      for (const value of attributes!.matchAll(/="([^"]*)"/g)) {
        if (value[1]!.includes("<")) throw new Error(`raw "<" in an attribute of <${name}>`);
        for (const amp of value[1]!.matchAll(/&/g)) if (!entity.test(value[1]!.slice(amp.index))) throw new Error(`stray "&" in <${name}>`);
      }
      if (closing) {
        const open = stack.pop();
        if (open !== name) throw new Error(`</${name}> closes <${open}>`);
      } else if (!selfClosing) {
        if (stack.length === 0) roots++;
        stack.push(name!);
      } else if (stack.length === 0) {
        roots++;
      }
      i = tag.lastIndex;
    } else {
      if (xml[i] === "&" && !entity.test(xml.slice(i))) throw new Error(`stray "&" in text at ${i}`);
      if (stack.length === 0 && xml[i]!.trim()) throw new Error(`text outside the root at ${i}`);
      i++;
    }
  }
  if (stack.length) throw new Error(`unclosed <${stack.join("> <")}>`);
  if (roots !== 1) throw new Error(`${roots} root elements`);
}

const spec: ChartSpec = {
  title: "Quality vs dims <test> & more",
  subtitle: "NDCG@10",
  x: { label: "dimensions", scale: "linear", min: 0, max: 400, ticks: [0, 100, 200, 300, 400] },
  y: { label: "NDCG@10", min: 0, max: 1 },
  series: [
    { name: "prefix", points: [{ x: 64, y: 0.2 }, { x: 128, y: 0.4, label: "128-d" }, { x: 384, y: 0.5 }] },
    { name: "binary \"bits\"", line: false, points: [{ x: 128, y: 0.1 }] },
  ],
  references: [{ y: 0.68, label: "BM25" }],
  notes: ["a note with <angle brackets>"],
  width: 800,
  height: 500,
};

describe("renderChart", () => {
  const svg = renderChart(spec);

  it("produces well-formed SVG with one root, a title and escaped text", () => {
    expect(() => checkWellFormed(svg)).not.toThrow();
    expect(svg.startsWith("<svg xmlns=\"http://www.w3.org/2000/svg\"")).toBe(true);
    expect(svg).toContain("<title>Quality vs dims &lt;test&gt; &amp; more</title>");
    expect(svg).toContain("a note with &lt;angle brackets&gt;");
    expect(svg).toContain('data-series="binary &quot;bits&quot;"');
  });

  it("draws every point where the axes put it", () => {
    const layout = chartLayout(spec);
    const circles = [...svg.matchAll(/<circle data-series="([^"]*)" data-x="([^"]*)" data-y="([^"]*)" cx="([^"]*)" cy="([^"]*)"/g)];
    expect(circles.map((c) => [c[1], Number(c[2]), Number(c[3])])).toEqual([
      ["prefix", 64, 0.2],
      ["prefix", 128, 0.4],
      ["prefix", 384, 0.5],
      ["binary &quot;bits&quot;", 128, 0.1],
    ]);
    const { left, top, width, height } = layout.plot;
    for (const c of circles) {
      // Linear axes with explicit domains: x from [0, 400] onto [left, left + width], y from [0, 1] onto [bottom, top].
      expect(Number(c[4])).toBeCloseTo(left + (Number(c[2]) / 400) * width, 1);
      expect(Number(c[5])).toBeCloseTo(top + height - Number(c[3]) * height, 1);
    }
    // One polyline for the line series, none for the scatter; the point label and the reference line are drawn.
    expect(svg.match(/<polyline /g)).toHaveLength(1);
    expect(svg).toContain(">128-d</text>");
    expect(svg).toContain('class="reference"');
    expect(svg).toContain("BM25: 0.68");
    // Ticks and both axis labels.
    for (const tick of ["0", "100", "200", "300", "400"]) expect(svg).toContain(`>${tick}</text>`);
    expect(svg).toContain(">dimensions</text>");
  });

  it("maps a log axis by the logarithm, and keeps points off the domain out", () => {
    const log: ChartSpec = {
      title: "latency",
      x: { label: "ms", scale: "log", min: 1, max: 100 },
      y: { label: "q", min: 0, max: 1 },
      series: [{ name: "s", points: [{ x: 10, y: 0.5 }, { x: 1000, y: 0.5 }] }],
    };
    const layout = chartLayout(log);
    expect(layout.x(10)).toBeCloseTo(layout.plot.left + layout.plot.width / 2, 6);
    const drawn = renderChart(log);
    expect(() => checkWellFormed(drawn)).not.toThrow();
    expect(drawn.match(/<circle data-series/g)).toHaveLength(1);
    expect(layout.xTicks).toEqual([1, 2, 5, 10, 20, 50, 100]);
  });

  it("caps an automatic maximum at the ceiling", () => {
    const layout = chartLayout({ title: "t", x: { label: "x" }, y: { label: "y", min: 0, ceiling: 1 }, series: [{ name: "s", points: [{ x: 1, y: 0.99 }, { x: 2, y: 0.5 }] }] });
    expect(layout.yDomain).toEqual([0, 1]);
  });
});

describe("tick helpers", () => {
  it("rounds steps to 1, 2 or 5 × 10^k and lays ticks on them", () => {
    expect(niceStep(0.13)).toBe(0.2);
    expect(niceStep(3)).toBe(5);
    expect(niceStep(7)).toBe(10);
    expect(niceTicks("linear", [0, 1])).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks("log", [0.3, 30])).toEqual([0.5, 1, 2, 5, 10, 20]);
    expect(escapeXml(`a<b>&"c'`)).toBe("a&lt;b&gt;&amp;&quot;c&apos;");
  });
});
