/**
 * Tokenizer tests: normalisation, pre-tokenisation, WordPiece encode/decode, the JSON format, and the real vocabulary
 * trainer (training/src/tokenizer/train-vocab.ts) on tiny in-test corpora.
 *
 * Round trip, precisely: for a text x none of whose words becomes [UNK] and which is not truncated,
 *   decode(encode(x)) === preTokenize(normalize(x)).join(" ")
 * i.e. the normalised text with exactly one space between words, punctuation/symbol characters and CJK characters.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import {
  PAD_ID,
  UNK_ID,
  WordPieceTokenizer,
  normalize,
  normalizeAndPreTokenize,
  preTokenize,
  type TokenizerJSON,
} from "../../src/tokenizer/index.js";
import { trainVocab, trainVocabFromCounts } from "../../training/src/tokenizer/train-vocab.js";

const CORPUS = [
  "The quick brown fox jumps over the lazy dog.",
  "A lazy dog sleeps; the quick fox runs away!",
  "Cerebral white matter develops in the human brain (in vivo imaging).",
  "Diffusion tensor imaging measures water diffusion in the developing brain.",
  "Real-time strategy game of ancient warfare, version 2.0 and 2024 release.",
  "Café au lait, naïve résumé: façade of the coöperative.",
  "Η γρήγορη καφέ αλεπού πηδάει πάνω από τον τεμπέλη σκύλο.",
  "深度学习模型在边缘设备上运行。学习很重要。",
  "مرحبا بالعالم، هذا نص عربي بسيط.",
];

/** The corpus repeated, so every character clears the trainer's frequency thresholds. */
const TRAINING_TEXTS = Array.from({ length: 5 }, () => CORPUS).flat();

let tok: WordPieceTokenizer;
beforeAll(async () => {
  const { tokenizer } = await trainVocab(TRAINING_TEXTS, { vocabSize: 400, minFrequency: 2 });
  tok = WordPieceTokenizer.fromJSON(tokenizer);
});

const canonical = (x: string): string => preTokenize(normalize(x)).join(" ");

describe("normalize", () => {
  it("lower-cases, strips accents and applies NFKC", () => {
    expect(normalize("Café NAÏVE Ångström")).toBe("cafe naive angstrom");
    expect(normalize("ﬁnancial Ｆｕｌｌ ²")).toBe("financial full 2");
    expect(normalize("İstanbul")).toBe("istanbul");
  });

  it("collapses whitespace and drops control/format characters", () => {
    expect(normalize("  a\t\tb\n\r\nc\u00a0d\u3000e  ")).toBe("a b c d e");
    expect(normalize("zero\u200bwidth\u0000 ctl\u0007 x")).toBe("zerowidth ctl x");
    expect(normalize("")).toBe("");
    expect(normalize(" \t\n ")).toBe("");
  });

  it("keeps Hangul syllables and voiced kana composed", () => {
    expect(normalize("한국어")).toBe("한국어");
    expect(normalize("がぎ")).toBe("がぎ");
  });

  it("is idempotent", () => {
    for (const x of [...CORPUS, "Ｆｕｌｌ ﬁ İ Σίσυφος ΣΑΣ 👩‍💻 a\u0301"]) expect(normalize(normalize(x))).toBe(normalize(x));
  });
});

describe("preTokenize", () => {
  it("splits on whitespace and isolates punctuation and symbols", () => {
    expect(normalizeAndPreTokenize("Hello, world! 3.14 covid19 a+b")).toEqual([
      "hello", ",", "world", "!", "3", ".", "14", "covid19", "a", "+", "b",
    ]);
  });

  it("isolates every CJK, kana and Hangul character, and emoji", () => {
    expect(normalizeAndPreTokenize("深度学习 カタカナ ひら 한국 🍕x")).toEqual([
      "深", "度", "学", "习", "カ", "タ", "カ", "ナ", "ひ", "ら", "한", "국", "🍕", "x",
    ]);
  });

  it("keeps other scripts as words", () => {
    expect(normalizeAndPreTokenize("Καφέ مرحبا")).toEqual(["καφε", "مرحبا"]);
  });

  it("returns no words for empty or blank text", () => {
    expect(preTokenize("")).toEqual([]);
    expect(normalizeAndPreTokenize("   ")).toEqual([]);
  });
});

describe("WordPieceTokenizer", () => {
  it("reserves [PAD]=0 and [UNK]=1", () => {
    expect(tok.padId).toBe(0);
    expect(tok.unkId).toBe(1);
    expect(tok.idToToken(PAD_ID)).toBe("[PAD]");
    expect(tok.tokenToId("[UNK]")).toBe(UNK_ID);
    expect(tok.vocabSize).toBeGreaterThan(100);
  });

  it("round-trips text whose words are all covered", () => {
    for (const x of CORPUS) {
      const ids = tok.encode(x);
      expect(ids).not.toContain(UNK_ID);
      expect(tok.decode(ids)).toBe(canonical(x));
    }
    // Unseen words made of seen characters still round-trip, as several pieces.
    expect(tok.decode(tok.encode("Brown dogs imaging foxes"))).toBe("brown dogs imaging foxes");
  });

  it("glues continuation pieces in tokenize/decode", () => {
    const pieces = tok.tokenize("foxes");
    expect(pieces.length).toBeGreaterThan(1);
    expect(pieces.slice(1).every((p) => p.startsWith("##"))).toBe(true);
    expect(tok.decode(pieces.map((p) => tok.tokenToId(p)!))).toBe("foxes");
  });

  it("is deterministic, across calls and across instances loaded from the same JSON", () => {
    const x = CORPUS.join(" ");
    const again = WordPieceTokenizer.fromJSON(JSON.parse(JSON.stringify(tok.toJSON())) as TokenizerJSON);
    expect(tok.encode(x)).toEqual(tok.encode(x));
    expect(again.encode(x)).toEqual(tok.encode(x));
  });

  it("encodes the empty string to no ids", () => {
    expect(tok.encode("")).toEqual([]);
    expect(tok.tokenize("  \n ")).toEqual([]);
    expect(tok.decode([])).toBe("");
  });

  it("strips accents before lookup", () => {
    expect(tok.encode("CAFÉ Naïve")).toEqual(tok.encode("cafe naive"));
  });

  it("encodes Greek, Chinese and Arabic without [UNK] when the vocabulary covers them", () => {
    for (const x of ["γρήγορη αλεπού", "深度学习", "مرحبا بالعالم"]) {
      const ids = tok.encode(x);
      expect(ids.length).toBeGreaterThan(0);
      expect(ids).not.toContain(UNK_ID);
      expect(tok.decode(ids)).toBe(canonical(x));
    }
    expect(tok.tokenize("学习")).toEqual(["学", "习"]);
  });

  it("maps unknown characters to a whole-word [UNK]", () => {
    expect(tok.tokenize("fox ж dog")).toEqual(["fox", "[UNK]", "dog"]);
    expect(tok.tokenize("foxж")).toEqual(["[UNK]"]); // no partial words
    expect(tok.tokenize("🍕")).toEqual(["[UNK]"]);
    expect(tok.decode(tok.encode("ж"))).toBe("[UNK]");
  });

  it("maps words longer than maxInputCharsPerWord to [UNK]", () => {
    expect(tok.encode("a".repeat(100))).not.toContain(UNK_ID);
    expect(tok.encode("a".repeat(101))).toEqual([UNK_ID]);
  });

  it("truncates to maxLength", () => {
    const x = CORPUS.join(" ");
    const full = tok.encode(x);
    expect(full.length).toBeGreaterThan(20);
    expect(tok.encode(x, { maxLength: 7 })).toEqual(full.slice(0, 7));
    expect(tok.encode(x, { maxLength: 0 })).toEqual([]);
    expect(() => tok.encode(x, { maxLength: -1 })).toThrow(RangeError);
  });

  it("handles a 1 MB input, and truncation of it equals truncating the full encoding", () => {
    const big = `${CORPUS.join(" ")}\n`.repeat(Math.ceil(1_000_000 / (CORPUS.join(" ").length + 1)));
    expect(big.length).toBeGreaterThanOrEqual(1_000_000);
    const full = tok.encode(big);
    expect(full.length).toBeGreaterThan(100_000);
    expect(full).not.toContain(UNK_ID);
    for (const maxLength of [1, 128, 5000, 60_000]) {
      expect(tok.encode(big, { maxLength })).toEqual(full.slice(0, maxLength));
    }
    // One gigantic "word" with no whitespace: a single [UNK], quickly.
    expect(tok.encode("x".repeat(1_000_000), { maxLength: 16 })).toEqual([UNK_ID]);
  });

  it("pads batches to the longest row", () => {
    const { ids, lengths } = tok.encodeBatch(["the dog", "", "the quick brown fox"], 3);
    expect(lengths).toEqual([2, 0, 3]);
    expect(ids).toEqual([[...tok.encode("the dog"), PAD_ID], [PAD_ID, PAD_ID, PAD_ID], tok.encode("the quick brown")]);
    expect(tok.decode(ids[0]!)).toBe("the dog");
  });

  it("rejects malformed JSON", () => {
    const good = tok.toJSON();
    expect(() => WordPieceTokenizer.fromJSON({ ...good, format: "bert" } as unknown as TokenizerJSON)).toThrow(/format/);
    expect(() => WordPieceTokenizer.fromJSON({ ...good, vocab: ["[UNK]", "[PAD]", "a"] })).toThrow(/start with/);
    expect(() => WordPieceTokenizer.fromJSON({ ...good, vocab: ["[PAD]", "[UNK]", "a", "a"] })).toThrow(/twice/);
    expect(() => tok.decode([tok.vocabSize])).toThrow(RangeError);
  });
});

describe("trainVocab", () => {
  it("learns the expected vocabulary from a tiny corpus and encodes with it", async () => {
    // Words: ab ×3, abc ×1. Alphabet a b c (+ "##" forms); merges: a+##b → "ab" (4×), ab+##c → "abc" (1×).
    const { tokenizer, stats } = await trainVocab(["ab ab", "AB abc"], { vocabSize: 10, minFrequency: 1 });
    expect(tokenizer.vocab).toEqual(["[PAD]", "[UNK]", "a", "b", "c", "##a", "##b", "##c", "ab", "abc"]);
    expect(stats).toMatchObject({ texts: 2, uniqueWords: 2, merges: 2, stoppedBy: "vocabSize" });
    const t = WordPieceTokenizer.fromJSON(tokenizer);
    expect(t.tokenize("abc ab ba cab d")).toEqual(["abc", "ab", "b", "##a", "c", "##a", "##b", "[UNK]"]);
  });

  it("stops at minFrequency, and leaves rare characters out of the alphabet", async () => {
    const { tokenizer, stats } = await trainVocab(["ab ab", "ab", "xy"], { vocabSize: 100, minFrequency: 2 });
    expect(stats.stoppedBy).toBe("minFrequency");
    // x and y occur once: no alphabet entry, and "xy" takes no part in merging.
    expect(tokenizer.vocab).toEqual(["[PAD]", "[UNK]", "a", "b", "##a", "##b", "ab"]);
  });

  it("gives isolated characters (punctuation, CJK) no '##' form", async () => {
    const { tokenizer } = await trainVocab(["a, 学 a, 学"], { vocabSize: 100, minFrequency: 2 });
    expect(tokenizer.vocab).toEqual(["[PAD]", "[UNK]", ",", "a", "学", "##a"]);
  });

  it("matches a naive re-counting BPE on a bigger corpus (incremental pair counts are exact)", () => {
    const counts = new Map<string, number>();
    for (const w of normalizeAndPreTokenize(TRAINING_TEXTS.join(" ") + " banana bananas ananas aaaa aaaaa abab")) {
      counts.set(w, (counts.get(w) ?? 0) + 1);
    }
    const fast = trainVocabFromCounts(counts, { vocabSize: 300, minFrequency: 2 }).tokenizer.vocab;
    expect(fast).toEqual(naiveBpe(counts, 300, 2));
  });
});

describe("shipped vocabulary training/vocab/taesr-8k.json", () => {
  it("loads and encodes English text without [UNK]", () => {
    const file = fileURLToPath(new URL("../../training/vocab/taesr-8k.json", import.meta.url));
    const shipped = WordPieceTokenizer.fromJSON(JSON.parse(readFileSync(file, "utf8")) as TokenizerJSON);
    expect(shipped.vocabSize).toBe(8192);
    const x = "Diffusion tensor MRI of the developing brain: a free, open-source tool.";
    expect(shipped.encode(x)).not.toContain(UNK_ID);
    expect(shipped.decode(shipped.encode(x))).toBe(canonical(x));
  });
});

/** Reference BPE: recounts every pair from scratch before each merge; same alphabet, id and tie-break rules. */
function naiveBpe(counts: Map<string, number>, vocabSize: number, minFrequency: number): string[] {
  const words = [...counts].map(([w, c]) => ({ chars: Array.from(w), count: c }));
  const charCounts = new Map<string, number>();
  for (const { chars, count } of words) for (const ch of chars) charCounts.set(ch, (charCounts.get(ch) ?? 0) + count);
  const alphabet = [...charCounts].filter(([, c]) => c >= minFrequency).map(([ch]) => ch);
  alphabet.sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!);
  const isolated = (ch: string): boolean => normalizeAndPreTokenize(`a${ch}`).length === 2;
  const vocab = ["[PAD]", "[UNK]", ...alphabet, ...alphabet.filter((ch) => !isolated(ch)).map((ch) => `##${ch}`)];
  const symbolIds = new Map(vocab.map((t, i) => [t, i]));
  const symbol = (t: string): number => {
    if (!symbolIds.has(t)) symbolIds.set(t, symbolIds.size);
    return symbolIds.get(t)!;
  };
  const seqs = words
    .map(({ chars, count }) => ({ syms: chars.map((ch, i) => (i === 0 ? ch : `##${ch}`)), count }))
    .filter(({ syms }) => syms.every((s) => symbolIds.has(s)));
  while (vocab.length < vocabSize) {
    const pairs = new Map<string, { a: string; b: string; n: number }>();
    for (const { syms, count } of seqs) {
      for (let i = 0; i + 1 < syms.length; i++) {
        const k = `${syms[i]}\u0000${syms[i + 1]}`;
        const p = pairs.get(k) ?? { a: syms[i]!, b: syms[i + 1]!, n: 0 };
        p.n += count;
        pairs.set(k, p);
      }
    }
    let best: { a: string; b: string; n: number } | undefined;
    const key = (p: { a: string; b: string }): number => symbol(p.a) * 2 ** 26 + symbol(p.b);
    for (const p of pairs.values()) {
      if (!best || p.n > best.n || (p.n === best.n && key(p) < key(best))) best = p;
    }
    if (!best || best.n < minFrequency) break;
    const merged = best.a + best.b.slice(2);
    symbol(merged);
    if (!vocab.includes(merged)) vocab.push(merged);
    for (const s of seqs) {
      const out: string[] = [];
      for (let i = 0; i < s.syms.length; i++) {
        if (i + 1 < s.syms.length && s.syms[i] === best.a && s.syms[i + 1] === best.b) {
          out.push(merged);
          i++;
        } else out.push(s.syms[i]!);
      }
      s.syms = out;
    }
  }
  return vocab;
}
