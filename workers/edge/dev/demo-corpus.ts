/**
 * The demo corpus that `npm start` indexes: the project's own short demo documents, plus (when the shared datasets
 * sit beside the project) a slice of the Debian package descriptions — real text a person can search.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { readJsonl } from "../../../training/src/data/corpora.js";

export interface DemoDocument {
  id: string;
  title: string;
  text: string;
  metadata: Record<string, string>;
}

const here = path.dirname(fileURLToPath(import.meta.url));
export const builtInCorpusPath = path.join(here, "demo-corpus.jsonl");
export const debianPackagesPath = path.resolve(here, "../../../../shared/datasets/debian-packages/pairs.jsonl");

export async function loadDemoCorpus(debianLimit: number): Promise<DemoDocument[]> {
  const documents: DemoDocument[] = [];
  for await (const record of readJsonl<DemoDocument>(builtInCorpusPath)) documents.push(record);
  if (debianLimit > 0 && existsSync(debianPackagesPath)) {
    for await (const { id, title, text } of readJsonl<{ id: string; title: string; text: string }>(debianPackagesPath, { limit: debianLimit })) {
      documents.push({ id: `debian:${id}`, title: `${id}: ${title}`, text, metadata: { source: "debian-packages" } });
    }
  }
  return documents;
}
