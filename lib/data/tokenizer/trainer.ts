// Training a WordPiece vocabulary (BERT-style, uncased) on text files, with the Rust `tokenizers`
// engine. Its Node binding exposes train() only with the model's default trainer (vocabulary 30,000,
// no special tokens). Hugging Face's WordPiece trainer is the BPE trainer: the alphabet first, then one
// token per merge, in merge order, with ids in that order. The first N ids are therefore the
// vocabulary a vocab_size = N run learns; we keep those, put BERT's special tokens in front and write
// vocab.txt + tokenizer_config.json, which Tokenizer.fromPretrained turns into a full tokenizer.json.
// The engine breaks ties (the alphabet's order, merges of equal count) by hash order, which changes
// from run to run: two runs give the same vocabulary up to those ties, not always the same ids.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { TunekitError } from "../../errors";
import { Tokenizer } from "./tokenizer";

const SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

export interface WordPieceTrainOptions {
  /** Vocabulary size, special tokens included (≤ 30,000, the engine's default run). Default 8192. */
  vocabSize?: number;
  /** The model's maximum input length (tokenizer_config.json model_max_length). Default 512. */
  modelMaxLength?: number;
}

/** Trains an uncased WordPiece tokenizer on `texts` and saves it (HF files) into `outDir`. */
export async function trainWordPiece(texts: string[], outDir: string, o: WordPieceTrainOptions = {}): Promise<Tokenizer> {
  const where = "trainWordPiece";
  const vocabSize = o.vocabSize ?? 8192;
  if (!Number.isInteger(vocabSize) || vocabSize < 64 || vocabSize > 30000) {
    throw new TunekitError(`${where}: vocabSize must be an integer in 64..30000, got ${vocabSize}`);
  }
  if (!Array.isArray(texts) || texts.length === 0) throw new TunekitError(`${where}: expected a non-empty array of texts`);
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const tk = require("tokenizers") as typeof import("tokenizers");
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tunekit-wordpiece-"));
  try {
    const corpus = path.join(tmp, "corpus.txt");
    fs.writeFileSync(corpus, texts.join("\n"));
    const engine = new tk.Tokenizer(tk.WordPiece.empty());
    engine.setNormalizer(tk.bertNormalizer({ lowercase: true }));
    engine.setPreTokenizer(tk.bertPreTokenizer());
    engine.train([corpus]);
    const learnt = Object.entries(engine.getVocab(false)).sort((a, b) => a[1] - b[1]).map(([t]) => t);
    const keep = vocabSize - SPECIAL.length;
    if (learnt.length < keep) {
      throw new TunekitError(`${where}: the texts give only ${learnt.length + SPECIAL.length} tokens; ask for vocabSize <= that or give more text`);
    }
    const vocab = [...SPECIAL, ...learnt.filter((t) => !SPECIAL.includes(t)).slice(0, keep)];
    const slow = path.join(tmp, "slow");
    fs.mkdirSync(slow);
    fs.writeFileSync(path.join(slow, "vocab.txt"), vocab.join("\n") + "\n");
    fs.writeFileSync(path.join(slow, "tokenizer_config.json"), JSON.stringify({
      tokenizer_class: "BertTokenizer", do_lower_case: true, model_max_length: o.modelMaxLength ?? 512,
      unk_token: "[UNK]", sep_token: "[SEP]", pad_token: "[PAD]", cls_token: "[CLS]", mask_token: "[MASK]",
    }));
    const tok = await Tokenizer.fromPretrained(slow);
    await tok.save(outDir);
    return Tokenizer.fromPretrained(outDir);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
