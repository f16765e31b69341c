/**
 * Every config committed in training/configs/ is one a user can pass to `npm run train -- -c`: it validates, and the
 * tokenizer it names resolves to a file. A config that drifts from the schema (a renamed field, a head without its
 * objective) fails here instead of an hour into someone's run.
 */
import { access, readdir } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { loadConfig, resolveFromConfig } from "../src/train/config.js";

const configsDir = path.join(path.dirname(fileURLToPath(import.meta.url)), "../configs");
const configFiles = (await readdir(configsDir)).filter((f) => f.endsWith(".json")).sort();

describe("training/configs", () => {
  it("holds the configs the README and the artifacts' changelog name", () => {
    expect(configFiles).toEqual(expect.arrayContaining(["tiny.json", "edge-small-v3.json", "edge-small-v3-sparse.json", "adapt.json", "adapt-distill.json"]));
  });

  it.each(configFiles)("%s validates and its tokenizer exists", async (file) => {
    const loaded = await loadConfig(path.join(configsDir, file));
    expect(loaded.config.arch.hidden).toBeGreaterThan(0);
    await expect(access(resolveFromConfig(loaded, loaded.config.tokenizer))).resolves.toBeUndefined();
  });
});
