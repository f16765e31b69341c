/**
 * The variant `npm run bundle` ships (workers/edge/dev/bundle-variant.ts), against the committed random-weight fixture
 * as it is (fp32, int8, int4, int8w) and as an artifact exported before int4 and int8w existed.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parseManifest, type ArtifactManifest } from "../../src/model/index.js";
import { bundleVariant, EDGE_VARIANTS } from "../../workers/edge/dev/bundle-variant.js";

async function fixtureManifests(): Promise<{ current: ArtifactManifest; older: ArtifactManifest }> {
  const text = await readFile(path.resolve(import.meta.dirname, "../fixtures/taesr-random@0.0.0-test/manifest.json"), "utf8");
  const raw = JSON.parse(text) as { files: Record<string, unknown>; variants: Record<string, unknown> };
  for (const [variant, file] of [["int4", "int4/embed.onnx"], ["int8w", "int8w/step.onnx"]] as const) {
    delete raw.variants[variant];
    delete raw.files[file];
  }
  return { current: parseManifest(text), older: parseManifest(raw) };
}

describe("the variant npm run bundle ships", () => {
  it("is int8w unasked for an artifact that has it, int8 for one exported before it", async () => {
    const { current, older } = await fixtureManifests();
    expect(bundleVariant({ manifest: current })).toBe("int8w");
    expect(bundleVariant({ manifest: older })).toBe("int8");
  });

  it("keeps the previous bundle's variant when the artifact has it, and falls back to the edge's choice when not", async () => {
    const { current, older } = await fixtureManifests();
    expect(bundleVariant({ manifest: current, previous: "int4" })).toBe("int4");
    expect(bundleVariant({ manifest: current, previous: "int8" })).toBe("int8");
    expect(bundleVariant({ manifest: older, previous: "int8w" })).toBe("int8");
    // fp32 is never an edge variant, whatever an edited bundled.json says.
    expect(bundleVariant({ manifest: current, previous: "fp32" })).toBe("int8w");
  });

  it("ships an asked variant, refuses fp32 and unknown names, and names the fix for one the artifact lacks", async () => {
    const { current, older } = await fixtureManifests();
    expect(EDGE_VARIANTS).toEqual(["int8", "int4", "int8w"]);
    expect(bundleVariant({ manifest: older, asked: "int8", previous: "int4" })).toBe("int8");
    expect(() => bundleVariant({ manifest: current, asked: "fp32" })).toThrow(/--variant must be int8 or int4 or int8w, got "fp32"/);
    expect(() => bundleVariant({ manifest: current, asked: "int16" })).toThrow(/got "int16"/);
    expect(() => bundleVariant({ manifest: older, asked: "int8w" })).toThrow(/has no int8w variant .*npm run export -- --add-variant int8w/);
  });
});
