// `tunekit generate` as a user runs it: streamed text in prompt order equals generate()'s, --json, --data,
// --chat (the chat template), --stop, and the user errors.
import * as fs from "fs";
import * as path from "path";
import { AutoModelForCausalLM } from "../lib/models/auto";
import { AutoTokenizer } from "../lib/data/tokenizer";
import { generate, applyChatTemplate } from "../lib/generation";
import { tunekit, json, scratch, expectUserError, root } from "./cli_helpers";

const gpt2 = path.join(root, "test", "fixtures", "models", "gpt2-tiny-random");
const work = scratch("generate");
const lib = async (dir: string, prompts: string[], o: object) => {
  const model = await AutoModelForCausalLM.fromPretrained(dir, { warn: null });
  return generate(model, await AutoTokenizer.fromPretrained(dir), prompts, o);
};

test("streams each prompt and its continuation to stdout, in prompt order, as generate() makes them", async () => {
  const prompts = ["Hello world, this is a test", "The", "A quick fox"];
  const r = tunekit(work, "generate", "--model", gpt2, ...prompts, "--max-new-tokens", "9", "--repetition-penalty", "5");
  expect(r.code).toBe(0);
  const want = await lib(gpt2, prompts, { maxNewTokens: 9, repetitionPenalty: 5 });
  expect(r.out).toBe(prompts.map((p, i) => `${p}${want[i].text}\n`).join("\n"));
});

test("--json with sampling flags (they turn sampling on) and --data", async () => {
  fs.writeFileSync(path.join(work, "prompts.csv"), "id,prompt\n1,Hello there\n2,The cat\n");
  const got = json(work, ["generate", "--model", gpt2, "--data", "prompts.csv", "--text", "prompt", "--max-new-tokens", "6", "--seed", "5", "--top-p", "0.9"]);
  const want = await lib(gpt2, ["Hello there", "The cat"], { maxNewTokens: 6, doSample: true, seed: 5, topP: 0.9 });
  expect(got).toEqual(want.map((w, i) => ({ prompt: ["Hello there", "The cat"][i], text: w.text, finishReason: "length", tokens: 6 })));
  const greedy = await lib(gpt2, ["Hello there"], { maxNewTokens: 6 });
  expect(greedy[0].text).not.toBe(want[0].text);
});

test("--chat renders the tokenizer's chat template (with --system) before generating; --stop ends a row", async () => {
  const dir = path.join(work, "gpt2-chat");
  fs.mkdirSync(dir);
  for (const f of fs.readdirSync(gpt2)) fs.copyFileSync(path.join(gpt2, f), path.join(dir, f));
  const template = "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}";
  fs.writeFileSync(path.join(dir, "tokenizer_config.json"), JSON.stringify({ chat_template: template }));
  const got = json(work, ["generate", "--model", dir, "--chat", "--system", "Be brief.", "Hi!", "--max-new-tokens", "8", "--repetition-penalty", "5"]);
  const tok = await AutoTokenizer.fromPretrained(dir);
  const prompt = applyChatTemplate(tok, [{ role: "system", content: "Be brief." }, { role: "user", content: "Hi!" }], { addGenerationPrompt: true });
  expect(prompt).toBe("system: Be brief.\nuser: Hi!\nassistant:");
  const [want] = await lib(dir, [prompt], { maxNewTokens: 8, repetitionPenalty: 5, addSpecialTokens: false });
  expect(got[0].text).toBe(want.text);
  // A stop string from the middle of that text ends the row early.
  const stop = want.text.slice(3, 5);
  const stopped = json(work, ["generate", "--model", dir, "--chat", "--system", "Be brief.", "Hi!", "--max-new-tokens", "8", "--repetition-penalty", "5", "--stop", stop]);
  expect(stopped[0].finishReason).toBe("stop_string");
  expect(stopped[0].text).toContain(stop);
  expect(stopped[0].tokens).toBeLessThan(8);
});

test("user errors: one line, exit 1", () => {
  expectUserError(tunekit(work, "generate", "--model", gpt2, "--system", "x", "Hi"), /--system applies with --chat/);
  expectUserError(tunekit(work, "generate", "--model", gpt2), /nothing to generate from/);
  expectUserError(tunekit(work, "generate", "--model", gpt2, "--chat", "Hi"), /has no chat_template/);
  expectUserError(tunekit(work, "generate", "--model", gpt2, "Hi", "--max-new-tokens", "200"), /exceed the model's 64 positions/);
  expectUserError(tunekit(work, "generate", "--model", "embedded", "Hi"), /no causal-LM head/);
  expectUserError(tunekit(work, "generate", "--model", gpt2, "Hi", "--top-p", "1.5"), /top-p/, 2);
});
