/**
 * BEIR dataset layout, parsed from text so that it works wherever the bytes come from (files in Node, R2 in Workers):
 * corpus.jsonl ({_id, title, text}), queries.jsonl ({_id, text}), qrels/<split>.tsv (query-id, corpus-id, score; header row).
 */
import type { Judgements } from "./metrics.js";

export interface BeirDocument {
  id: string;
  title: string;
  text: string;
}

export interface BeirQuery {
  id: string;
  text: string;
}

function parseJsonLines(source: string, what: string): unknown[] {
  const records: unknown[] = [];
  source.split("\n").forEach((line, index) => {
    if (!line.trim()) return;
    try {
      records.push(JSON.parse(line));
    } catch {
      throw new Error(`${what}: line ${index + 1} is not valid JSON`);
    }
  });
  return records;
}

function requireString(record: Record<string, unknown>, field: string, what: string, line: number): string {
  const value = record[field];
  if (typeof value !== "string") throw new Error(`${what}: record ${line} has no string "${field}"`);
  return value;
}

export function parseCorpus(source: string): BeirDocument[] {
  return parseJsonLines(source, "corpus.jsonl").map((raw, index) => {
    const record = raw as Record<string, unknown>;
    return {
      id: requireString(record, "_id", "corpus.jsonl", index + 1),
      title: typeof record.title === "string" ? record.title : "",
      text: requireString(record, "text", "corpus.jsonl", index + 1),
    };
  });
}

export function parseQueries(source: string): BeirQuery[] {
  return parseJsonLines(source, "queries.jsonl").map((raw, index) => {
    const record = raw as Record<string, unknown>;
    return { id: requireString(record, "_id", "queries.jsonl", index + 1), text: requireString(record, "text", "queries.jsonl", index + 1) };
  });
}

/** query id → (doc id → relevance). The header row ("query-id corpus-id score") is skipped. */
export function parseQrels(source: string): Map<string, Map<string, number>> {
  const qrels = new Map<string, Map<string, number>>();
  source.split("\n").forEach((line, index) => {
    const fields = line.trim().split(/\t| +/);
    if (fields.length < 3 || (index === 0 && !/^-?\d+(\.\d+)?$/.test(fields[2]!))) return;
    const [queryId, docId, score] = fields as [string, string, string];
    const relevance = Number(score);
    if (!Number.isFinite(relevance)) throw new Error(`qrels: line ${index + 1} has a non-numeric score "${score}"`);
    let judgements = qrels.get(queryId);
    if (!judgements) qrels.set(queryId, (judgements = new Map()));
    judgements.set(docId, relevance);
  });
  return qrels;
}

export type { Judgements };
