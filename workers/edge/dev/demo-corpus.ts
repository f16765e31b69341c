/**
 * The demo corpus that `npm start` indexes: the project's own short demo documents, plus (when the shared datasets
 * sit beside the project) a slice of the Debian package descriptions — real text a person can search.
 */
import { createReadStream, existsSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export interface DemoDocument {
  id: string;
  title: string;
  text: string;
  metadata: Record<string, string>;
}

const here = path.dirname(fileURLToPath(import.meta.url));
export const builtInCorpusPath = path.join(here, "demo-corpus.jsonl");
export const debianPackagesPath = path.resolve(here, "../../../../shared/datasets/debian-packages/pairs.jsonl");

async function* readJsonLines(file: string): AsyncGenerator<unknown> {
  const lines = createInterface({ input: createReadStream(file, "utf8"), crlfDelay: Infinity });
  for await (const line of lines) if (line.trim()) yield JSON.parse(line);
}

export async function loadDemoCorpus(debianLimit: number): Promise<DemoDocument[]> {
  const documents: DemoDocument[] = [];
  for await (const record of readJsonLines(builtInCorpusPath)) documents.push(record as DemoDocument);
  if (debianLimit > 0 && existsSync(debianPackagesPath)) {
    for await (const record of readJsonLines(debianPackagesPath)) {
      const { id, title, text } = record as { id: string; title: string; text: string };
      documents.push({ id: `debian:${id}`, title: `${id}: ${title}`, text, metadata: { source: "debian-packages" } });
      if (documents.length >= debianLimit + 12) break;
    }
  }
  return documents;
}
