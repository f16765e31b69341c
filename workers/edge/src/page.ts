/**
 * The search page: server-rendered HTML that works without JavaScript (the form GETs `/?q=…` and the server renders
 * the results), plus a small inline script that searches through `POST /v1/search` without a reload. No external
 * assets; the inline script runs under a per-response CSP nonce, so nothing else can.
 *
 * @module
 */
import type { SearchResponse } from "./search-service.js";

export interface PageState {
  query: string;
  mode: "hybrid" | "dense" | "lexical";
  response?: SearchResponse;
  error?: string;
  nonce: string;
}

const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => ESCAPES[char]!);
}

/** "route easy · depth 1 · 128-d · cache hit · embed 0.4 ms · search 1.2 ms · total 2.1 ms" — shared with the script. */
export function summaryLine(response: SearchResponse): string {
  const { model, timings, results } = response;
  const route = model.route === "none" ? "lexical only" : `route ${model.route} · depth ${model.depth}${model.earlyExit ? " (early exit)" : ""} · ${model.dims}-d`;
  return `${results.length} result${results.length === 1 ? "" : "s"} · ${route} · cache ${timings.cache} · embed ${timings.embedMs} ms · search ${timings.searchMs} ms · total ${timings.totalMs} ms`;
}

function renderResults(response: SearchResponse): string {
  if (response.results.length === 0) return `<p class="empty">No documents matched.</p>`;
  return response.results
    .map(
      (result) => `<li>
  <div class="head"><span class="title">${escapeHtml(result.title || result.id)}</span><span class="score">${result.score.toFixed(4)}</span></div>
  <p class="snippet">${escapeHtml(result.snippet)}</p>
  <div class="meta">${escapeHtml(result.id)}${result.ranks.dense ? ` · dense #${result.ranks.dense}` : ""}${result.ranks.lexical ? ` · lexical #${result.ranks.lexical}` : ""}</div>
</li>`,
    )
    .join("\n");
}

const STYLE = `
:root { color-scheme: light dark; --fg: #1b1f24; --muted: #5b6470; --bg: #f7f8fa; --card: #fff; --line: #dde1e6; --accent: #2f6fed; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e8eb; --muted: #9aa3ae; --bg: #14171b; --card: #1c2026; --line: #2c323a; --accent: #6c9bff; } }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
main { max-width: 760px; margin: 0 auto; padding: 48px 20px; }
h1 { font-size: 1.6rem; margin: 0 0 4px; letter-spacing: -0.01em; }
.tagline { color: var(--muted); margin: 0 0 24px; }
form { display: flex; gap: 8px; flex-wrap: wrap; }
input[type=search] { flex: 1 1 320px; font: inherit; padding: 10px 14px; border: 1px solid var(--line); border-radius: 10px; background: var(--card); color: var(--fg); }
input[type=search]:focus { outline: 2px solid var(--accent); outline-offset: 1px; }
select, button { font: inherit; padding: 10px 14px; border-radius: 10px; border: 1px solid var(--line); background: var(--card); color: var(--fg); }
button { background: var(--accent); border-color: var(--accent); color: #fff; cursor: pointer; }
#summary { color: var(--muted); font-size: 0.85rem; margin: 18px 0 8px; min-height: 1.3em; font-variant-numeric: tabular-nums; }
#error { color: #d33; }
ol { list-style: none; padding: 0; margin: 0; }
li { background: var(--card); border: 1px solid var(--line); border-radius: 12px; padding: 14px 16px; margin-bottom: 10px; }
.head { display: flex; justify-content: space-between; gap: 12px; align-items: baseline; }
.title { font-weight: 600; }
.score { color: var(--muted); font-size: 0.8rem; font-variant-numeric: tabular-nums; }
.snippet { margin: 6px 0; }
.meta, .empty { color: var(--muted); font-size: 0.8rem; }
`;

/** The client half: same rendering as the server, through textContent (never innerHTML with data). */
const SCRIPT = `
const form = document.getElementById("search");
const list = document.getElementById("results");
const summary = document.getElementById("summary");
const errorBox = document.getElementById("error");
function el(tag, cls, text) { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; }
function line(r) {
  const m = r.model, t = r.timings, n = r.results.length;
  const route = m.route === "none" ? "lexical only" : "route " + m.route + " · depth " + m.depth + (m.earlyExit ? " (early exit)" : "") + " · " + m.dims + "-d";
  return n + " result" + (n === 1 ? "" : "s") + " · " + route + " · cache " + t.cache + " · embed " + t.embedMs + " ms · search " + t.searchMs + " ms · total " + t.totalMs + " ms";
}
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const query = form.q.value.trim();
  if (!query) return;
  const mode = form.mode.value;
  history.replaceState(null, "", "?q=" + encodeURIComponent(query) + (mode === "hybrid" ? "" : "&mode=" + mode));
  summary.textContent = "Searching…"; errorBox.textContent = "";
  try {
    const response = await fetch("/v1/search", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query, mode, topK: 10 }) });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error ? body.error.message : "HTTP " + response.status);
    list.replaceChildren(...body.results.map((hit) => {
      const item = el("li");
      const head = el("div", "head");
      head.append(el("span", "title", hit.title || hit.id), el("span", "score", hit.score.toFixed(4)));
      const ranks = (hit.ranks.dense ? " · dense #" + hit.ranks.dense : "") + (hit.ranks.lexical ? " · lexical #" + hit.ranks.lexical : "");
      item.append(head, el("p", "snippet", hit.snippet), el("div", "meta", hit.id + ranks));
      return item;
    }));
    if (body.results.length === 0) list.replaceChildren(el("p", "empty", "No documents matched."));
    summary.textContent = line(body);
  } catch (error) {
    summary.textContent = ""; errorBox.textContent = error.message;
  }
});
`;

export function renderSearchPage(state: PageState): string {
  const option = (value: PageState["mode"], label: string) =>
    `<option value="${value}"${state.mode === value ? " selected" : ""}>${label}</option>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${state.query ? `${escapeHtml(state.query)} · ` : ""}TAESR Edge search</title>
<style>${STYLE}</style>
</head>
<body>
<main>
  <h1>TAESR Edge</h1>
  <p class="tagline">Semantic search at the edge — an adaptive-depth embedding model fused with BM25.</p>
  <form id="search" method="get" action="/" role="search">
    <input type="search" name="q" value="${escapeHtml(state.query)}" placeholder="Search the index…" aria-label="Search query" autofocus required maxlength="2000">
    <select name="mode" aria-label="Search mode">${option("hybrid", "Hybrid")}${option("dense", "Dense")}${option("lexical", "Lexical")}</select>
    <button type="submit">Search</button>
  </form>
  <div id="summary">${state.response ? escapeHtml(summaryLine(state.response)) : ""}</div>
  <div id="error" role="alert">${state.error ? escapeHtml(state.error) : ""}</div>
  <ol id="results">${state.response ? renderResults(state.response) : ""}</ol>
</main>
<script nonce="${state.nonce}">${SCRIPT}</script>
</body>
</html>`;
}

/** Allows only this response's inline script and style; the page talks to its own origin only. */
export function pageSecurityPolicy(nonce: string): string {
  return [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    "style-src 'unsafe-inline'",
    "connect-src 'self'",
    "form-action 'self'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
}
