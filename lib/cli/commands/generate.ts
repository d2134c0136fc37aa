// tunekit generate: text generation with a causal LM (GPT-2, Llama, Mistral, Qwen…), streamed to
// stdout in prompt order; --chat wraps each prompt in the tokenizer's chat template.
import { Command, Option } from "commander";
import { AutoTokenizer } from "../../data/tokenizer";
import { readRecords } from "../../data/files";
import { AutoModelForCausalLM } from "../../models/auto";
import { TunekitError } from "../../errors";
import { streamGenerate, applyChatTemplate } from "../../generation";
import type { GenerationOptions, GenerationOutput, ChatMessage } from "../../generation";
import { int, above, Action } from "../args";
import { resolveModel } from "../models";
import { output } from "../print";

interface GenerateFlags {
  model: string; data?: string; text: string; chat?: boolean; system?: string; json?: boolean; device: "cpu" | "cuda";
  maxNewTokens?: number; minNewTokens?: number; doSample?: boolean; temperature?: number; topK?: number; topP?: number;
  repetitionPenalty?: number; seed?: number; stop?: string[];
}

async function prompts(texts: string[], f: GenerateFlags): Promise<string[]> {
  if (texts.length && f.data) throw new TunekitError("give prompts as arguments or --data, not both");
  if (texts.length) return texts;
  if (!f.data) throw new TunekitError("nothing to generate from: give prompts as arguments or --data <file>");
  const { records, columns } = await readRecords(f.data);
  if (!columns.includes(f.text)) throw new TunekitError(`${f.data}: no column '${f.text}'; the columns are ${columns.join(", ")} (choose one with --text)`);
  return records.map((r, i) => {
    const v = r[f.text];
    if (typeof v !== "string") throw new TunekitError(`${f.data}: row ${i + 1}: column '${f.text}' is ${v === null || v === undefined ? "empty" : typeof v}, expected text`);
    return v;
  });
}

async function generateCmd(texts: string[], f: GenerateFlags): Promise<void> {
  const out = output(!!f.json);
  if (f.system !== undefined && !f.chat) throw new TunekitError("--system applies with --chat");
  const dir = resolveModel(f.model);
  const list = await prompts(texts, f);
  const tok = await AutoTokenizer.fromPretrained(dir);
  const model = (await AutoModelForCausalLM.fromPretrained(dir, { warn: null })).to(f.device);
  const inputs = f.chat
    ? list.map((p) => applyChatTemplate(tok, [...(f.system ? [{ role: "system", content: f.system }] : []), { role: "user", content: p }] as ChatMessage[], { addGenerationPrompt: true }))
    : list;
  // A sampling flag turns sampling on (HF needs do_sample=True besides); without any, the model's generation_config.json decides.
  const sampling = [f.temperature, f.topK, f.topP, f.seed].some((v) => v !== undefined);
  const options: GenerationOptions = {
    maxNewTokens: f.maxNewTokens, minNewTokens: f.minNewTokens, doSample: f.doSample || sampling || undefined, temperature: f.temperature,
    topK: f.topK, topP: f.topP, repetitionPenalty: f.repetitionPenalty, seed: f.seed, stopStrings: f.stop,
    addSpecialTokens: f.chat ? false : undefined, // the template writes BOS itself
  };
  // Rows finish in any order; stdout shows them in prompt order: the current row live, the later ones
  // from a buffer once their turn comes.
  const results: GenerationOutput[] = [];
  const pending = list.map(() => "");
  let current = 0;
  const write = (s: string) => { if (!f.json) process.stdout.write(s); };
  const start = (i: number) => write(`${i > 0 ? "\n" : ""}${f.chat ? "" : list[i]}${pending[i]}`);
  start(0);
  for await (const c of streamGenerate(model, tok, inputs, options)) {
    if (c.row === current) write(c.delta);
    else pending[c.row] += c.delta;
    if (c.output) results[c.row] = c.output;
    while (current < list.length && results[current]) {
      write("\n");
      if (++current < list.length) start(current);
    }
  }
  out.result(list.map((prompt, i) => ({ prompt, text: results[i].text, finishReason: results[i].finishReason, tokens: results[i].tokenIds.length })));
}

export function registerGenerate(program: Command, run: (fn: Action) => Action): void {
  program.command("generate [prompts...]")
    .description("generate text with a causal LM (GPT-2, Llama, Mistral, Qwen…), streamed to stdout")
    .requiredOption("-m, --model <dir>", "a causal-LM checkpoint folder (config.json, weights, tokenizer files)")
    .option("-d, --data <file>", "read prompts from a .csv/.tsv/.jsonl/.json/.parquet file")
    .option("--text <column>", "prompt column of --data", "text")
    .option("--chat", "wrap each prompt as a user message in the tokenizer's chat template (with the assistant's turn opened)")
    .option("--system <text>", "with --chat: a system message before each prompt")
    .option("--max-new-tokens <n>", "new tokens at most (default: generation_config.json's, else 20 tokens in all as HF)", int(1))
    .option("--min-new-tokens <n>", "no end-of-sequence before this many new tokens", int(0))
    .option("--do-sample", "sample instead of greedy decoding (implied by --temperature, --top-k, --top-p, --seed)")
    .option("--temperature <t>", "sampling: divide the logits by t (> 0)", above(0))
    .option("--top-k <k>", "sampling: keep the k most likely tokens (0 = all; HF's default 50)", int(0))
    .option("--top-p <p>", "sampling: keep the most likely tokens up to probability p (nucleus)", above(0, 1))
    .option("--repetition-penalty <r>", "discourage tokens already in the text (> 1; 1 = off)", above(0))
    .option("--seed <n>", "sampling seed: the same seed gives the same text", int(0))
    .option("--stop <string...>", "stop a prompt's generation once its new text contains one of these")
    .option("--json", "one JSON document on stdout (no streaming)")
    .addOption(new Option("--device <device>", "where the model runs: cpu, or cuda (needs the CUDA library)").choices(["cpu", "cuda"]).default("cpu"))
    .addHelpText("after", `
Examples:
  $ tunekit generate --model ./gpt2 "The weather today is" --max-new-tokens 30
  $ tunekit generate --model ./gpt2 "Once upon a time" --top-p 0.9 --temperature 0.8 --seed 1
  $ tunekit generate --model ./Qwen3-0.6B --chat --system "Answer briefly." "What is a tokenizer?" --stop "\\n\\n"
  $ tunekit generate --model ./gpt2 --data prompts.csv --text prompt --json > outputs.json`)
    .action(run(generateCmd));
}
