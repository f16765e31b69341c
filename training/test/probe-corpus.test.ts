/**
 * `training.probeCorpus`: a general run ranks a corpus for its train queries (which it never trains on) at each
 * validation and after its last update, with the weights exported as the edge serves them; and the config errors:
 * with heldOutRetrieval, on a corpus without train qrels, on the corpus the run adapts to.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../src/train/config.js";
import { train } from "../src/train/trainer.js";
import { BEIR_TINY, writeJudgedBeir } from "./support/judged-beir.js";
import { TINY_CONFIG, writeTinyConfig } from "./support/tiny-config.js";

let tmp: string;
/** beir-tiny with train qrels: q3 → d3, q6 → d7, q5 → d6 judged relevant; q7's only judgements are score 0 or unknown. */
let judged: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "taesr-probe-"));
  judged = await writeJudgedBeir(tmp, "judged");
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const metricsOf = async (runDir: string): Promise<Record<string, any>[]> =>
  (await readFile(path.join(runDir, "metrics.jsonl"), "utf8"))
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as Record<string, any>);

describe("training.probeCorpus", () => {
  it("ranks the probe corpus for every judged train query at each validation and after the last update", async () => {
    const config = await writeTinyConfig(tmp, "general-probe", { training: { steps: 3, batchSize: 8, warmupSteps: 1, evalEvery: 2, probeCorpus: judged } });
    const lines: string[] = [];
    const runDir = path.join(tmp, "general-probe-run");
    const result = await train({ config, runDir, progress: false, log: (line) => lines.push(line) });
    expect(result.stoppedBy).toBe("done");
    const probes = (await metricsOf(runDir)).filter((m) => m["type"] === "heldOutRetrieval");
    // Step 2's validation and the end (step 3): a general run's export ranks nothing itself.
    expect(probes.map((m) => m["step"])).toEqual([2, 3]);
    for (const m of probes) {
      expect(m).toMatchObject({ probe: "judged train queries", queries: 3, documents: 12, dims: 128, bm25: { ndcg10: expect.any(Number) } });
      expect(m["dense"]["ndcg10"]).toBeGreaterThanOrEqual(0);
      expect(m["dense"]["ndcg10"]).toBeLessThanOrEqual(1);
    }
    expect(lines.filter((l) => /^step [23] judged train queries \(3\) against all 12 documents, 128-d \w+: dense NDCG@10 /.test(l))).toHaveLength(2);
    // The scratch artifact is removed after each probe.
    await expect(readFile(path.join(runDir, "held-out-probe", "held-out-probe@0.0.3", "manifest.json"))).rejects.toThrow();
  });

  it("refuses a corpus without judged train queries before the first update", async () => {
    const config = await writeTinyConfig(tmp, "no-qrels", { training: { steps: 3, batchSize: 8, probeCorpus: BEIR_TINY } });
    await expect(train({ config, runDir: path.join(tmp, "no-qrels-run"), progress: false, log: () => {} })).rejects.toThrow(
      /training\.probeCorpus: .*beir-tiny has no train query that judges one of its documents relevant \(qrels\/train\.tsv with score > 0\)/,
    );
  });

  it("refuses the corpus the run adapts to, whose train queries it trains on", async () => {
    const config = await writeTinyConfig(tmp, "adapt-probe", {
      top: { data: { sources: { adapt: { dir: judged } }, validationFraction: 0.05, maxValidationPairs: 128 } },
      training: { steps: 3, batchSize: 8, probeCorpus: judged },
    });
    await expect(train({ config, runDir: path.join(tmp, "adapt-probe-run"), progress: false, log: () => {} })).rejects.toThrow(
      /is the corpus this run adapts to, and it trains on that corpus's train queries; set training\.heldOutRetrieval/,
    );
  });

  it("is one probe per run: not beside heldOutRetrieval", async () => {
    const raw = JSON.parse(await readFile(TINY_CONFIG, "utf8")) as Record<string, any>;
    const adapting: Record<string, any> = { ...raw, data: { ...raw["data"], sources: { adapt: { dir: judged, holdoutQueries: 0.5 } } } };
    expect(parseConfig({ ...raw, training: { ...raw["training"], probeCorpus: judged } }).training.probeCorpus).toBe(judged);
    expect(() => parseConfig({ ...adapting, training: { ...adapting["training"], heldOutRetrieval: true, probeCorpus: judged } })).toThrow(
      /one retrieval probe per run/,
    );
  });
});
