// tunekit pretrain: continued (domain-adaptive) masked-LM / causal-LM pre-training of a checkpoint on
// raw text, or pre-training from scratch with a WordPiece vocabulary trained on the same text.
import { isWorldProcessZero } from "../../distributed/process_group";
import * as fs from "fs";
import * as path from "path";
import { Command, Option } from "commander";
import { AutoTokenizer, Tokenizer } from "../../data/tokenizer";
import { readRecords, readTextCorpus } from "../../data/files";
import { trainWordPiece } from "../../data/tokenizer/trainer";
import { readConfig, parseConfig } from "../../models/config_json";
import { AutoModelForMaskedLM, AutoModelForCausalLM } from "../../models/auto";
import { specFor } from "../../models/registry";
import { pretrain } from "../../train/pretrain";
import { parameterCount } from "../../train/strategies";
import { TunekitError } from "../../errors";
import { int, float, trainerOptions, TrainerFlags, Action } from "../args";
import { resolveModel } from "../models";
import { checkTrainerFlags, maxPositions } from "../checks";
import { output, fmt } from "../print";

type PretrainFlags = TrainerFlags & {
  model: string; data: string[]; text: string; out: string; json?: boolean; blockSize?: number; mlmProbability: number;
  fromScratch?: boolean; vocabSize: number; layers: number; hidden: number; heads: number; intermediate?: number; maxPositions: number;
  dtype: "F32" | "F16" | "BF16";
};

/** Plain-text files and folders (readTextCorpus), or the --text column of table files. */
async function corpus(files: string[], column: string): Promise<string[]> {
  const texts: string[] = [];
  for (const f of files) {
    if (!fs.existsSync(f)) throw new TunekitError(`--data: no such file or folder '${f}'`);
    if (fs.statSync(f).isDirectory() || /\.(txt|text|md)$/i.test(f)) { texts.push(...readTextCorpus(f)); continue; }
    const { records, columns } = await readRecords(f);
    if (!columns.includes(column)) throw new TunekitError(`${f}: no column '${column}' (set --text); the columns are ${columns.join(", ")}`);
    for (const r of records) if (typeof r[column] === "string" && (r[column] as string).trim()) texts.push(r[column] as string);
  }
  if (!texts.length) throw new TunekitError(`--data: no text found in ${files.join(", ")}`);
  return texts;
}

async function pretrainCmd(flags: PretrainFlags): Promise<void> {
  const out = output(!!flags.json);
  // Every flag before the corpus is read or a model loaded.
  const validation = Number(flags.validation);
  if (!(flags.validation.trim() !== "" && validation >= 0 && validation < 1)) throw new TunekitError(`--validation: pretrain holds out a fraction of the blocks; expected a number in [0, 1), got '${flags.validation}'`);
  if (flags.fromScratch && flags.hidden % flags.heads !== 0) throw new TunekitError(`--hidden ${flags.hidden} must be a multiple of --heads ${flags.heads}`);
  const dir = flags.fromScratch ? undefined : resolveModel(flags.model);
  const positions = dir ? maxPositions(readConfig(dir)) : flags.maxPositions;
  if (flags.blockSize !== undefined && flags.blockSize > positions)
    throw new TunekitError(`--block-size ${flags.blockSize}: the model takes at most ${positions} tokens (${dir ? "its position table" : "--max-positions"})`);
  for (const f of flags.data) if (!fs.existsSync(f)) throw new TunekitError(`--data: no such file or folder '${f}'`);
  const evalStrategy = validation > 0 ? flags.evalStrategy : "no";
  checkTrainerFlags({ ...flags, evalStrategy }, flags.out);
  if (flags.metric !== undefined && flags.metric !== "loss") throw new TunekitError(`--metric: pretrain evaluates the held-out loss only; expected loss, got '${flags.metric}'`);
  const texts = await corpus(flags.data, flags.text);
  out.line(`corpus: ${texts.length} texts, ${texts.reduce((n, t) => n + t.length, 0).toLocaleString("en-US")} characters`);
  let tok: Tokenizer;
  let model;
  if (flags.fromScratch) {
    tok = await trainWordPiece(texts, flags.out, { vocabSize: flags.vocabSize, modelMaxLength: flags.maxPositions });
    out.line(`tokenizer: WordPiece, ${tok.vocabSize} tokens, trained on the corpus`);
    const config = parseConfig({
      architectures: ["BertForMaskedLM"], model_type: "bert", vocab_size: tok.vocabSize, hidden_size: flags.hidden, num_hidden_layers: flags.layers,
      num_attention_heads: flags.heads, intermediate_size: flags.intermediate ?? 4 * flags.hidden, max_position_embeddings: flags.maxPositions,
      type_vocab_size: 2, hidden_act: "gelu", hidden_dropout_prob: 0.1, attention_probs_dropout_prob: 0.1, initializer_range: 0.02,
      layer_norm_eps: 1e-12, pad_token_id: tok.padTokenId ?? 0,
    });
    model = AutoModelForMaskedLM.fromConfig(config, { seed: flags.seed });
  } else {
    tok = await AutoTokenizer.fromPretrained(dir!);
    const cfg = readConfig(dir!);
    // Continued pre-training in the architecture's own objective: masked LM where it has that head, else causal LM.
    const causal = !specFor(cfg.modelType).classes.maskedLM;
    if (causal && tok.padTokenId === null) tok.padToken = tok.eosToken;
    model = causal ? await AutoModelForCausalLM.fromPretrained(dir!, { warn: null, seed: flags.seed })
      : await AutoModelForMaskedLM.fromPretrained(dir!, { warn: null, seed: flags.seed });
    out.line(`model: ${dir} (${cfg.modelType}, ${causal ? "causal LM" : "masked LM"}), continued pre-training`);
  }
  const r = await pretrain({
    model, tokenizer: tok, texts, blockSize: flags.blockSize, mlmProbability: flags.mlmProbability, validation,
    learningRate: flags.lr ?? (flags.fromScratch ? 1e-3 : 5e-5), epochs: flags.epochs, maxSteps: flags.maxSteps, batchSize: flags.batchSize,
    gradientAccumulationSteps: flags.gradAccum, warmupRatio: flags.warmupRatio, warmupSteps: flags.warmupSteps, weightDecay: flags.weightDecay,
    adamBeta1: flags.adamBeta1, adamBeta2: flags.adamBeta2, adamEpsilon: flags.adamEpsilon,
    scheduler: flags.scheduler, maxGradNorm: flags.maxGradNorm, seed: flags.seed, evalStrategy, evalSteps: flags.evalSteps, evalBatchSize: flags.evalBatchSize,
    metricForBestModel: "loss", loadBestModelAtEnd: evalStrategy !== "no" && flags.loadBest, earlyStoppingPatience: flags.earlyStopping,
    layerDecay: flags.layerDecay, l2sp: flags.l2sp, saveSteps: flags.saveSteps, saveTotalLimit: flags.saveTotalLimit, outputDir: flags.out, resumeFrom: flags.resume,
    logFile: flags.log ?? path.join(flags.out, "log.jsonl"), progress: flags.progress, onNonFinite: flags.onNonFinite, bf16: flags.bf16, fp16: flags.fp16, device: flags.device,
    lossScaling: typeof flags.lossScaling === "number" ? { initScale: flags.lossScaling } : flags.lossScaling,
  });
  if (isWorldProcessZero()) { // data parallelism: every process holds the same weights, the first one saves
    await model.savePretrained(flags.out, { dtype: flags.dtype });
    await tok.save(flags.out);
  }
  out.line(`${r.steps} steps in ${fmt(r.seconds)} s; ${r.blocks.train} training blocks, ${r.blocks.validation} held out; ` +
    `validation loss ${fmt(r.validationLoss)} (perplexity ${fmt(r.perplexity)})`);
  out.line(`saved: ${flags.out} (${parameterCount(model).toLocaleString("en-US")} parameters, ${flags.dtype})`);
  out.result({ out: flags.out, steps: r.steps, seconds: r.seconds, blocks: r.blocks, validationLoss: r.validationLoss, perplexity: r.perplexity, trainLoss: r.trainLoss });
}

export function registerPretrain(program: Command, run: (fn: Action) => Action): void {
  trainerOptions(program.command("pretrain").description("masked-LM (BERT, RoBERTa, DistilBERT) or causal-LM (GPT-2) pre-training on raw text: continued on your domain, or from scratch"),
    { validation: "the fraction (0-1) of the text blocks held out for the validation loss (evenly spaced; 0: none)",
      metric: "metric that picks the best model and drives early stopping: loss (the held-out loss) is the only one",
      lr: "peak learning rate (default: 5e-5; from scratch 1e-3)" })
    .option("-m, --model <dir>", "checkpoint to continue from (domain-adaptive pre-training), or 'embedded'", "embedded")
    .requiredOption("-d, --data <files...>", "text: .txt files or folders of them (a blank line separates texts), or .csv/.jsonl/.parquet with --text")
    .option("--text <column>", "text column of table files", "text")
    .option("-o, --out <dir>", "where the model, tokenizer, checkpoints and log go", "tunekit-pretrained")
    .option("--block-size <n>", "tokens per training block (default min(128, the model's positions))", int(2))
    .option("--mlm-probability <p>", "fraction of tokens masked", float(0.01, 1), 0.15)
    .option("--from-scratch", "random initialisation and a new WordPiece vocabulary trained on --data")
    .option("--vocab-size <n>", "from scratch: vocabulary size", int(64), 8192)
    .option("--layers <n>", "from scratch: transformer layers", int(1), 4)
    .option("--hidden <n>", "from scratch: hidden size", int(8), 128)
    .option("--heads <n>", "from scratch: attention heads", int(1), 2)
    .option("--intermediate <n>", "from scratch: feed-forward size (default 4 × hidden)", int(1))
    .option("--max-positions <n>", "from scratch: positions (the longest input)", int(8), 128)
    .addOption(new Option("--dtype <dtype>", "weights on disk").choices(["F32", "F16", "BF16"]).default("F32"))
    .option("--json", "one JSON document on stdout (progress and everything else on stderr)")
    .addHelpText("after", `
Examples:
  $ tunekit pretrain --model ./bert-base-uncased --data ./my-domain-texts/ --epochs 1 --out ./bert-my-domain
  $ tunekit pretrain --from-scratch --data corpus.txt --vocab-size 8192 --layers 4 --hidden 128 --max-steps 2000 --out ./my-bert`)
    .action(run(pretrainCmd));
}
