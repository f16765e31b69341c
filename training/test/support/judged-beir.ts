/**
 * test/fixtures/beir-tiny with train and dev qrels added, written to a temp directory: a corpus that adaptation and
 * retrieval probes can read judged train queries from. Train: q3 → d3, q6 → d7, q5 → d6 (score 2); q7 has only a
 * score-0 judgement and one of an unknown document. Dev: q2 → d2. Test: beir-tiny's own.
 */
import { copyFile, mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const BEIR_TINY = fileURLToPath(new URL("../../../test/fixtures/beir-tiny", import.meta.url));

/** Writes the corpus into `<dir>/<name>` and returns that directory. */
export async function writeJudgedBeir(dir: string, name = "minibeir"): Promise<string> {
  const out = path.join(dir, name);
  await mkdir(path.join(out, "qrels"), { recursive: true });
  for (const f of ["corpus.jsonl", "queries.jsonl", "qrels/test.tsv"]) await copyFile(path.join(BEIR_TINY, f), path.join(out, f));
  await writeFile(path.join(out, "qrels/train.tsv"), "query-id\tcorpus-id\tscore\nq3\td3\t1\nq6\td7\t1\nq5\td6\t2\nq7\td8\t0\nq7\tnope\t1\n");
  await writeFile(path.join(out, "qrels/dev.tsv"), "query-id\tcorpus-id\tscore\nq2\td2\t1\n");
  return out;
}
