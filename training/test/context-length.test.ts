import { describe, expect, it } from "vitest";
import { contextChangeRefusal, resizePositionTable } from "../src/model/context-length.js";
import { tinyArchitecture } from "./support/architectures.js";

describe("changing a model's context", () => {
  // Three positions of width 2: row p is [10p, 10p + 1].
  const table = Float32Array.from([0, 1, 10, 11, 20, 21]);

  it("tiles the learned rows into a longer table (row p = row p mod L)", () => {
    expect(Array.from(resizePositionTable(table, 3, 7, 2))).toEqual([0, 1, 10, 11, 20, 21, 0, 1, 10, 11, 20, 21, 0, 1]);
  });

  it("keeps the first rows for a shorter table, and the table itself for the same length", () => {
    expect(Array.from(resizePositionTable(table, 3, 2, 2))).toEqual([0, 1, 10, 11]);
    expect(Array.from(resizePositionTable(table, 3, 3, 2))).toEqual(Array.from(table));
  });

  it("refuses a table of the wrong size and a length that is not a positive integer", () => {
    expect(() => resizePositionTable(table, 4, 8, 2)).toThrow(/6 values, expected 4 × 2/);
    expect(() => resizePositionTable(table, 3, 0, 2)).toThrow(/positive integer, got 0/);
    expect(() => resizePositionTable(table, 3, 2.5, 2)).toThrow(/positive integer/);
  });

  it("allows a self-attention model only: a token mixer's matrices are sized by the context", () => {
    const attention = tinyArchitecture(300);
    expect(contextChangeRefusal(attention, { ...attention, maxLength: 64 })).toBeUndefined();
    expect(contextChangeRefusal(tinyArchitecture(300, { block: "mlp_mixer" }), { ...attention, block: "mlp_mixer", maxLength: 64 })).toMatch(
      /the source has a mlp_mixer block, whose token-mixing matrices are sized by maxLength/,
    );
    expect(contextChangeRefusal(attention, { ...attention, block: "hybrid", maxLength: 64 })).toMatch(/this config has a hybrid block/);
  });
});
