/**
 * Reads a corpus for `npm run load`: a BEIR directory (its corpus.jsonl: `_id`, `title`, `text`, `metadata`) or a
 * JSONL file of either shape (plain: `id`, `title?`, `text`, `metadata?`). Every line is checked before anything is
 * sent, so a bad corpus fails whole with the file and line named, instead of half-loading.
 */
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import path from "node:path";
import { createInterface } from "node:readline";

export interface CorpusDocument {
  id: string;
  title: string;
  text: string;
  metadata?: Record<string, unknown>;
}

/** A problem with the input, said in terms of the file (and line) so the user can fix it. */
export class CorpusError extends Error {
  override name = "CorpusError";
}

/** The JSONL file a path names: the path itself, or a BEIR directory's corpus.jsonl. */
export async function corpusFile(input: string): Promise<string> {
  const info = await stat(input).catch(() => null);
  if (!info) throw new CorpusError(`${input}: no such file or directory`);
  if (!info.isDirectory()) return input;
  const file = path.join(input, "corpus.jsonl");
  if (!(await stat(file).catch(() => null))?.isFile()) throw new CorpusError(`${input} is a directory without corpus.jsonl (a BEIR corpus has one)`);
  return file;
}

function documentOf(record: unknown, where: string): CorpusDocument {
  if (record === null || typeof record !== "object" || Array.isArray(record)) throw new CorpusError(`${where}: expected a JSON object`);
  const fields = record as Record<string, unknown>;
  const id = fields._id ?? fields.id;
  if (typeof id === "number") return documentOf({ ...fields, _id: String(id), id: undefined }, where);
  if (typeof id !== "string" || id === "") throw new CorpusError(`${where}: no "_id" (BEIR) or "id" string`);
  if (typeof fields.text !== "string" || fields.text.trim() === "") throw new CorpusError(`${where}: document "${id}" has no "text" string`);
  if (fields.title !== undefined && typeof fields.title !== "string") throw new CorpusError(`${where}: document "${id}": "title" must be a string`);
  const metadata = fields.metadata;
  if (metadata !== undefined && (metadata === null || typeof metadata !== "object" || Array.isArray(metadata))) {
    throw new CorpusError(`${where}: document "${id}": "metadata" must be an object`);
  }
  return {
    id,
    title: (fields.title as string | undefined) ?? "",
    text: fields.text,
    // BEIR corpora carry `metadata: {}` on every line: an empty object says nothing, so it is not sent.
    ...(metadata && Object.keys(metadata).length > 0 ? { metadata: metadata as Record<string, unknown> } : {}),
  };
}

/** Every document of the file (the first `limit`), checked; duplicate ids are an error (the second would win silently). */
export async function readCorpus(file: string, limit = Infinity): Promise<CorpusDocument[]> {
  const documents: CorpusDocument[] = [];
  const seen = new Map<string, number>();
  const lines = createInterface({ input: createReadStream(file, "utf8"), crlfDelay: Infinity });
  let number = 0;
  try {
    for await (const line of lines) {
      number++;
      if (documents.length >= limit) break;
      if (line.trim() === "") continue;
      const where = `${file}:${number}`;
      let record: unknown;
      try {
        record = JSON.parse(line);
      } catch (error) {
        throw new CorpusError(`${where}: not valid JSON (${(error as Error).message})`);
      }
      const document = documentOf(record, where);
      const first = seen.get(document.id);
      if (first !== undefined) throw new CorpusError(`${where}: id "${document.id}" already appeared on line ${first}`);
      seen.set(document.id, number);
      documents.push(document);
    }
  } finally {
    lines.close();
  }
  if (documents.length === 0) throw new CorpusError(`${file}: no documents`);
  return documents;
}
