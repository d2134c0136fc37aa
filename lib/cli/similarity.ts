// --task similarity: a bi-encoder (AutoSentenceEncoder) on sentence pairs with a 0-5 score, as
// sentence-transformers' STS-B recipe: each sentence encoded on its own, mean (or [CLS]) pooling,
// CosineSimilarityLoss (MSE of cos(u, v) to score / 5), Pearson / Spearman of the cosine against the
// score. A saved model is a sentence-transformers folder: config.json + weights + tokenizer at the root
// (its Transformer module), modules.json, 1_Pooling/config.json and sentence_bert_config.json, so
// Python's SentenceTransformer(dir) loads it, and tunekit eval / predict recognise it by modules.json.
import * as fs from "fs";
import * as path from "path";
import { TunekitError } from "../errors";
import type { Tokenizer } from "../data/tokenizer";
import { loadDataset, TextDataset } from "../data/files";
import { sentencePairFeatures } from "../data/features/pairs";
import { collate, PairFeature, EncodedFeature } from "../data/features/collate";
import { AutoSentenceEncoder } from "../models/auto";
import type { Pooling } from "../models/heads";
import { readConfig } from "../models/config_json";
import { writeFileAtomicSync } from "../io/atomic";
import { readJson } from "../io/json_safe";
import { pearson, spearman } from "../metrics";
import type { DataFlags, ModelFlags } from "./args";
import type { TaskData } from "./tasks";

/** The top of STS-B's score scale: the cosine target is score / MAX_SCORE. */
export const MAX_SCORE = 5;

export async function similarityTask(tok: Tokenizer, flags: ModelFlags & DataFlags,
  o: { validation: number | string; seed: number; limit?: number }, padId: number): Promise<TaskData> {
  const read = (label?: string) => loadDataset(flags.data, { format: flags.format as never, text: flags.text, textPair: flags.textPair, label,
    validation: o.validation, seed: o.seed, problemType: "regression", limit: o.limit, onBadRow: flags.onBadRow });
  let ds: TextDataset = await read(flags.label);
  // STS-B is published with the score as "label" (GLUE) or "score" (sentence-transformers/stsb).
  if (flags.label === undefined && ds.mapping.label === undefined && ds.columns.includes("score")) ds = await read("score");
  if (ds.mapping.label === undefined) throw new TunekitError(`${flags.data}: no score column for --task similarity (none is named label or score); give --label <column> (the columns are ${ds.columns.join(", ")})`);
  if (ds.mapping.textPair === undefined) throw new TunekitError(`${flags.data}: --task similarity needs sentence pairs; give --text-pair <column> (default sentence2 beside sentence1; the columns are ${ds.columns.join(", ")})`);
  if (!ds.validation.length) throw new TunekitError("the validation set is empty: give --validation a fraction in (0, 1) or a file");
  const pairs = (xs: TextDataset["train"], which: string) => xs.map((e) => {
    const score = e.label as number;
    if (!(score >= 0 && score <= MAX_SCORE)) throw new TunekitError(`${flags.data}: ${which} pair "${e.text}" / "${e.textPair}" has score ${score}; --task similarity expects scores in [0, ${MAX_SCORE}] (STS-B's scale)`);
    return { sentence1: e.text, sentence2: e.textPair!, score };
  });
  const maxLength = flags.maxLength ?? Math.min(tok.modelMaxLength, 512);
  const features = (xs: TextDataset["train"], which: string) => sentencePairFeatures(tok, pairs(xs, which), { maxLength, maxScore: MAX_SCORE });
  const train = await features(ds.train, "training");
  const val = await features(ds.validation, "validation");
  const pooling: Pooling = flags.pooling ?? "mean";
  return {
    task: "similarity", train: train as never, validation: val as never, examples: ds.train.length, labelNames: null, skipped: ds.skipped.length,
    metric: "spearman", maxLength,
    createModel: async (dir, r) => (r.random ? AutoSentenceEncoder.fromConfig(readConfig(dir), { seed: r.seed, pooling })
      : await AutoSentenceEncoder.fromPretrained(dir, { warn: null, seed: r.seed, pooling })) as never,
    collate: (f) => ({ ...collate(f as unknown as PairFeature<EncodedFeature>[], { padId }), features: f }) as never,
    evaluator: () => {
      const cos: number[] = [], gold: number[] = [];
      return {
        update: (out, b) => {
          cos.push(...out.logits.toHost());
          gold.push(...(b as unknown as { scores: Float32Array }).scores);
        },
        // sentence-transformers' EmbeddingSimilarityEvaluator: the correlations of cosine with the score.
        compute: () => ({ pearson: pearson(cos, gold), spearman: spearman(cos, gold) }),
      };
    },
    analyse: () => ({}),
    saveExtra: (dir) => saveSentenceTransformer(dir, pooling, readConfig(dir).hiddenSize, maxLength),
  };
}

/** sentence-transformers' module files beside a saved encoder (the Transformer module is the folder itself). */
export function saveSentenceTransformer(dir: string, pooling: Pooling, hiddenSize: number, maxLength: number): void {
  const json = (file: string, v: unknown) => {
    fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    writeFileAtomicSync(path.join(dir, file), Buffer.from(JSON.stringify(v, null, 2) + "\n"));
  };
  json("modules.json", [
    { idx: 0, name: "0", path: "", type: "sentence_transformers.models.Transformer" },
    { idx: 1, name: "1", path: "1_Pooling", type: "sentence_transformers.models.Pooling" },
  ]);
  json("1_Pooling/config.json", {
    word_embedding_dimension: hiddenSize, pooling_mode_cls_token: pooling === "cls", pooling_mode_mean_tokens: pooling === "mean",
    pooling_mode_max_tokens: false, pooling_mode_mean_sqrt_len_tokens: false, pooling_mode_weightedmean_tokens: false, pooling_mode_lasttoken: false,
  });
  json("sentence_bert_config.json", { max_seq_length: maxLength, do_lower_case: false });
}


/** The pooling of a sentence-transformers folder (modules.json + a Pooling module), or null for any other folder. */
export function sentenceTransformerPooling(dir: string): Pooling | null {
  const file = path.join(dir, "modules.json");
  if (!fs.existsSync(file)) return null;
  const modules = readJson(file);
  const entry = Array.isArray(modules) ? modules.find((m) => typeof m?.type === "string" && m.type.endsWith(".Pooling")) : undefined;
  if (!entry || typeof entry.path !== "string") throw new TunekitError(`${file}: expected a list of sentence-transformers modules with a Pooling module`);
  const poolFile = path.join(dir, entry.path, "config.json");
  if (!fs.existsSync(poolFile)) throw new TunekitError(`${file}: its Pooling module has no ${poolFile}`);
  const c = readJson(poolFile) as Record<string, unknown>;
  const modes = Object.entries(c ?? {}).filter(([k, v]) => k.startsWith("pooling_mode_") && v === true).map(([k]) => k);
  if (modes.length === 1 && modes[0] === "pooling_mode_mean_tokens") return "mean";
  if (modes.length === 1 && modes[0] === "pooling_mode_cls_token") return "cls";
  throw new TunekitError(`${poolFile}: pooling ${modes.join(" + ") || "(none)"} is not supported; expected pooling_mode_mean_tokens or pooling_mode_cls_token`);
}
