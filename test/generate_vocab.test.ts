// generate() when the model has more vocabulary rows than the tokenizer has tokens (Qwen2.5's config says
// 151936, its tokenizer holds 151665): an id without a token stays in tokenIds and adds no text, as HF's
// decode skips ids it has no token for; it must not end the generation with a decode error.
import * as path from "path";
import { AutoModelForCausalLM } from "../lib/models/auto";
import { AutoTokenizer, Tokenizer } from "../lib/data/tokenizer";
import { generate } from "../lib/generation";

const dir = path.join(__dirname, "fixtures", "models", "gpt2-tiny-random");

test("an id past the tokenizer's vocabulary is kept in tokenIds and left out of the text", async () => {
  const model = await AutoModelForCausalLM.fromPretrained(dir, { warn: null });
  const tok = await AutoTokenizer.fromPretrained(dir);
  const options = { maxNewTokens: 8, minNewTokens: 8 };
  const [full] = await generate(model, tok, "hello world", options);
  // The same tokenizer, told that its vocabulary ends just below the largest id the model picked.
  const top = Math.max(...full.tokenIds);
  const small = Object.create(tok, { vocabSize: { get: () => top } }) as Tokenizer;
  const [out] = await generate(model, small, "hello world", options);
  expect(out.tokenIds).toEqual(full.tokenIds);
  expect(out.tokenIds).toContain(top);
  expect(out.text).toBe(await tok.decode(full.tokenIds.filter((id) => id < top), { skipSpecialTokens: true }));
});
