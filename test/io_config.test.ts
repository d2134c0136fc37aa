// config.json: per-model parsing with HF defaults, the normalised view, labels, write-back of
// changed fields only, atomic save, and one clear error per malformed field.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ConfigError } from "../lib/errors";
import { configToJson, parseConfig, readConfig, saveConfig } from "../lib/models/config_json";
import type { ModelConfig } from "../lib/models/config";
import { FIXTURES } from "./helpers";
import { modelDir, testShared } from "./shared";

let tmp: string;
beforeAll(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tunekit-cfg-")); });
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const view = (c: ModelConfig) => {
  const { hf, raw, ...rest } = c;
  void hf; void raw;
  return rest;
};

// roberta-base's config.json, as published by FacebookAI.
const ROBERTA_BASE = {
  architectures: ["RobertaForMaskedLM"], attention_probs_dropout_prob: 0.1, bos_token_id: 0, eos_token_id: 2,
  hidden_act: "gelu", hidden_dropout_prob: 0.1, hidden_size: 768, initializer_range: 0.02, intermediate_size: 3072,
  layer_norm_eps: 1e-5, max_position_embeddings: 514, model_type: "roberta", num_attention_heads: 12,
  num_hidden_layers: 12, pad_token_id: 1, type_vocab_size: 1, vocab_size: 50265,
};

// The config.json files of the ../shared checkpoints, copied byte for byte into test/fixtures/configs.
const SHARED_MODELS = ["bert-tiny-mlm", "bert-mini-random", "distilbert-small-random", "gpt2-small-random"];
const copy = (name: string) => path.join(FIXTURES, "configs", `${name}.json`);

describe("configs of the shared checkpoints", () => {
  testShared("the copies in test/fixtures/configs are the checkpoints' config.json files", () => {
    for (const m of SHARED_MODELS) expect([m, fs.readFileSync(copy(m)).equals(fs.readFileSync(path.join(modelDir(m), "config.json")))]).toEqual([m, true]);
  });
  test("bert-tiny-mlm", () => {
    const c = readConfig(copy("bert-tiny-mlm"));
    expect(view(c)).toEqual({
      modelType: "bert", architectures: ["BertForMaskedLM"], vocabSize: 30522, hiddenSize: 128, numLayers: 2, numHeads: 2,
      intermediateSize: 512, maxPositions: 512, typeVocabSize: 2, layerNormEps: 1e-12, hiddenAct: "gelu", hiddenDropout: 0.1,
      attentionDropout: 0.1, embeddingDropout: 0.1, classifierDropout: 0.1, qaDropout: 0, initializerRange: 0.02,
      padTokenId: 0, bosTokenId: null, eosTokenId: null, eosTokenIds: [], tieWordEmbeddings: true, numLabels: 2,
      id2label: { 0: "LABEL_0", 1: "LABEL_1" }, label2id: { LABEL_0: 0, LABEL_1: 1 }, problemType: null,
    });
    expect(c.hf).toMatchObject({ model_type: "bert", classifier_dropout: null, position_embedding_type: "absolute" });
    expect(c.raw.transformers_version).toBe("4.52.4");
  });
  test("bert-mini-random", () => {
    const c = readConfig(copy("bert-mini-random"));
    expect([c.hiddenSize, c.numLayers, c.numHeads, c.intermediateSize, c.architectures]).toEqual([256, 4, 4, 1024, ["BertModel"]]);
  });
  test("distilbert-small-random", () => {
    const c = readConfig(copy("distilbert-small-random"));
    expect(view(c)).toMatchObject({
      modelType: "distilbert", hiddenSize: 128, numLayers: 2, numHeads: 2, intermediateSize: 512, typeVocabSize: 0,
      layerNormEps: 1e-12, hiddenAct: "gelu", hiddenDropout: 0.1, attentionDropout: 0.1, classifierDropout: 0.2, qaDropout: 0.1,
    });
    expect(c.hf).toMatchObject({ dim: 128, n_layers: 2, seq_classif_dropout: 0.2, sinusoidal_pos_embds: false });
  });
  test("gpt2-small-random (n_inner absent → 4 × n_embd)", () => {
    const c = readConfig(copy("gpt2-small-random"));
    expect(view(c)).toMatchObject({
      modelType: "gpt2", vocabSize: 50257, hiddenSize: 128, numLayers: 2, numHeads: 2, intermediateSize: 512, maxPositions: 256,
      typeVocabSize: 0, layerNormEps: 1e-5, hiddenAct: "gelu_new", hiddenDropout: 0.1, embeddingDropout: 0.1, attentionDropout: 0.1,
      padTokenId: null, bosTokenId: 50256, eosTokenId: 50256, tieWordEmbeddings: true, classifierDropout: 0.1,
    });
    expect(c.hf).toMatchObject({ n_inner: null, summary_first_dropout: 0.1, scale_attn_weights: true });
  });
  test("an unchanged config saves back to the same JSON", () => {
    for (const m of SHARED_MODELS) {
      const c = readConfig(copy(m));
      const out = path.join(tmp, `${m}.json`);
      saveConfig(out, c);
      expect(JSON.parse(fs.readFileSync(out, "utf8"))).toEqual(JSON.parse(fs.readFileSync(copy(m), "utf8")));
    }
  });
});

describe("config parsing", () => {
  test("roberta-base", () => {
    const c = parseConfig(ROBERTA_BASE);
    expect([c.modelType, c.maxPositions, c.typeVocabSize, c.layerNormEps, c.padTokenId, c.bosTokenId, c.eosTokenId]).toEqual(["roberta", 514, 1, 1e-5, 1, 0, 2]);
  });
  test("HF defaults fill absent keys", () => {
    const bert = parseConfig({ model_type: "bert" });
    expect([bert.vocabSize, bert.hiddenSize, bert.numLayers, bert.numHeads, bert.intermediateSize, bert.typeVocabSize, bert.padTokenId]).toEqual([30522, 768, 12, 12, 3072, 2, 0]);
    const rob = parseConfig({ model_type: "roberta" });
    expect([rob.vocabSize, rob.padTokenId]).toEqual([50265, 1]);
    const d = parseConfig({ model_type: "distilbert" });
    expect([d.hiddenSize, d.numLayers, d.intermediateSize, d.classifierDropout, d.qaDropout]).toEqual([768, 6, 3072, 0.2, 0.1]);
    const g = parseConfig({ model_type: "gpt2", n_inner: 100, n_embd: 64, n_head: 4 });
    expect([g.intermediateSize, g.maxPositions, g.layerNormEps, g.hiddenAct]).toEqual([100, 1024, 1e-5, "gelu_new"]);
  });
  test("classifier dropout: BERT falls back to hidden_dropout_prob", () => {
    expect(parseConfig({ model_type: "bert", hidden_dropout_prob: 0.3 }).classifierDropout).toBe(0.3);
    expect(parseConfig({ model_type: "bert", hidden_dropout_prob: 0.3, classifier_dropout: 0.05 }).classifierDropout).toBe(0.05);
  });
  test("labels: id2label keys are strings in JSON and numbers here; num_labels alone makes LABEL_i", () => {
    const c = parseConfig({ model_type: "bert", id2label: { 0: "NEGATIVE", 1: "POSITIVE", 2: "NEUTRAL" }, label2id: { NEGATIVE: 0, POSITIVE: 1, NEUTRAL: 2 }, problem_type: "single_label_classification" });
    expect([c.numLabels, c.id2label, c.label2id, c.problemType]).toEqual([3, { 0: "NEGATIVE", 1: "POSITIVE", 2: "NEUTRAL" }, { NEGATIVE: 0, POSITIVE: 1, NEUTRAL: 2 }, "single_label_classification"]);
    expect(Object.keys(c.id2label).map(Number)).toEqual([0, 1, 2]);
    const n = parseConfig({ model_type: "gpt2", num_labels: 3 });
    expect([n.numLabels, n.id2label, n.label2id]).toEqual([3, { 0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2" }, { LABEL_0: 0, LABEL_1: 1, LABEL_2: 2 }]);
    // id2label wins over a disagreeing num_labels, as in transformers.
    expect(parseConfig({ model_type: "bert", num_labels: 5, id2label: { 0: "a" } }).numLabels).toBe(1);
  });
});

describe("config errors: one clear message each", () => {
  test.each([
    [{ model_type: "t5" }, "config.json: unsupported model_type 't5'; tunekit supports bert, distilbert, roberta, gpt2, llama, mistral, qwen2, qwen3"],
    [{ hidden_size: 8 }, "config.json: has no model_type; expected one of bert, distilbert, roberta, gpt2, llama, mistral, qwen2, qwen3"],
    [[1], "config.json: must be a JSON object"],
    [{ model_type: "bert", hidden_size: 100, num_attention_heads: 12 }, "config.json: hidden size 100 is not a multiple of the number of attention heads 12"],
    [{ model_type: "bert", hidden_size: "768" }, 'config.json: hidden_size must be a positive integer, got "768"'],
    [{ model_type: "distilbert", n_layers: 0 }, "config.json: n_layers must be a positive integer, got 0"],
    [{ model_type: "bert", hidden_dropout_prob: 1.5 }, "config.json: hidden_dropout_prob must be a probability in [0, 1], got 1.5"],
    [{ model_type: "bert", classifier_dropout: "x" }, 'config.json: classifier_dropout must be a probability in [0, 1] or null, got "x"'],
    [{ model_type: "gpt2", layer_norm_epsilon: -1 }, "config.json: layer_norm_epsilon must be a positive number, got -1"],
    [{ model_type: "bert", hidden_act: "" }, 'config.json: hidden_act must be a non-empty string, got ""'],
    [{ model_type: "gpt2", pad_token_id: -1 }, "config.json: pad_token_id must be a token id (non-negative integer) or null, got -1"],
    [{ model_type: "bert", vocab_size: 10, pad_token_id: 10 }, "config.json: pad_token_id 10 is outside the vocabulary of 10"],
    [{ model_type: "bert", id2label: { a: "x" } }, 'config.json: id2label key "a" is not an integer'],
    [{ model_type: "bert", id2label: { 0: "x", 2: "y" } }, "config.json: id2label keys must be 0..1; 1 is missing"],
    [{ model_type: "bert", id2label: { 0: 5 } }, "config.json: id2label[0] must be a string, got 5"],
    [{ model_type: "bert", id2label: { 0: "x" }, label2id: { x: 1 } }, "config.json: label2id['x'] must be a label id in 0..0, got 1"],
    [{ model_type: "bert", problem_type: "ranking" }, 'config.json: problem_type must be null or one of regression, single_label_classification, multi_label_classification, got "ranking"'],
    [{ model_type: "bert", architectures: "BertModel" }, 'config.json: architectures must be a list of class names, got "BertModel"'],
    [{ model_type: "distilbert", sinusoidal_pos_embds: 1 }, "config.json: sinusoidal_pos_embds must be true or false, got 1"],
  ])("%#: %j", (json, message) => {
    expect(() => parseConfig(json)).toThrow(ConfigError);
    expect(() => parseConfig(json)).toThrow(message);
  });
  test("unreadable files", () => {
    expect(() => readConfig(path.join(tmp, "nope"))).toThrow(/^cannot read .*nope: ENOENT/);
    const bad = path.join(tmp, "bad.json");
    fs.writeFileSync(bad, "{model_type: bert}");
    expect(() => readConfig(bad)).toThrow(new RegExp(`^${bad.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: not valid JSON \\(`));
  });
});

describe("writing config.json back", () => {
  test("a changed head writes id2label with string keys, label2id, and drops num_labels; other keys are kept", () => {
    const c = parseConfig({ ...ROBERTA_BASE, num_labels: 2, custom_key: { a: 1 } });
    const out = configToJson({ ...c, id2label: { 0: "neg", 1: "neu", 2: "pos" }, numLabels: 3, architectures: ["RobertaForSequenceClassification"], problemType: "single_label_classification" });
    expect(out).toEqual({
      ...ROBERTA_BASE, custom_key: { a: 1 }, architectures: ["RobertaForSequenceClassification"], problem_type: "single_label_classification",
      id2label: { 0: "neg", 1: "neu", 2: "pos" }, label2id: { neg: 0, neu: 1, pos: 2 },
    });
    expect(Object.keys(out.id2label as object)).toEqual(["0", "1", "2"]);
    expect(parseConfig(out).numLabels).toBe(3);
  });
  test("numLabels alone makes LABEL_i; a numLabels that disagrees with id2label is refused", () => {
    const c = parseConfig({ model_type: "bert" });
    expect(configToJson({ ...c, numLabels: 3 }).id2label).toEqual({ 0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2" });
    expect(() => configToJson({ ...c, numLabels: 3, id2label: { 0: "a" } })).toThrow("configToJson: numLabels 3 disagrees with id2label's 1 labels");
  });
  test("normalised fields are written under each model's own key", () => {
    expect(configToJson({ ...parseConfig({ model_type: "distilbert" }), hiddenDropout: 0.3, embeddingDropout: 0.3, attentionDropout: 0.2, classifierDropout: 0.4 }))
      .toEqual({ model_type: "distilbert", dropout: 0.3, attention_dropout: 0.2, seq_classif_dropout: 0.4 });
    expect(configToJson({ ...parseConfig({ model_type: "gpt2" }), intermediateSize: 1000, embeddingDropout: 0 }))
      .toEqual({ model_type: "gpt2", n_inner: 1000, embd_pdrop: 0 });
    expect(configToJson({ ...parseConfig({ model_type: "bert" }), classifierDropout: 0.2, padTokenId: 3 }))
      .toEqual({ model_type: "bert", classifier_dropout: 0.2, pad_token_id: 3 });
    const g = parseConfig({ model_type: "gpt2" });
    expect(configToJson({ ...g, hf: { ...g.hf, summary_first_dropout: 0.5 } as typeof g.hf })).toEqual({ model_type: "gpt2", summary_first_dropout: 0.5 });
  });
  test("derived or conflicting changes are refused", () => {
    expect(() => configToJson({ ...parseConfig({ model_type: "bert" }), qaDropout: 0.1 })).toThrow("configToJson: bert config.json has no setting for qaDropout (it is derived)");
    expect(() => configToJson({ ...parseConfig({ model_type: "gpt2" }), typeVocabSize: 2 })).toThrow("configToJson: gpt2 config.json has no setting for typeVocabSize (it is derived)");
    expect(() => configToJson({ ...parseConfig({ model_type: "bert" }), hiddenDropout: 0.2, embeddingDropout: 0.3 })).toThrow("configToJson: embeddingDropout and hiddenDropout are both hidden_dropout_prob in a bert config.json and must be equal");
    expect(() => configToJson({ ...parseConfig({ model_type: "bert" }), hiddenSize: 100 })).toThrow("configToJson: hidden size 100 is not a multiple of the number of attention heads 12");
  });
  test("saveConfig writes sorted, indented JSON atomically into a directory", () => {
    const dir = fs.mkdtempSync(path.join(tmp, "save-"));
    const c = parseConfig({ model_type: "bert", vocab_size: 99, architectures: ["BertModel"] });
    saveConfig(dir, { ...c, id2label: { 0: "a", 1: "b" } });
    expect(fs.readdirSync(dir)).toEqual(["config.json"]);
    const text = fs.readFileSync(path.join(dir, "config.json"), "utf8");
    expect(text).toBe(`{\n  "architectures": [\n    "BertModel"\n  ],\n  "id2label": {\n    "0": "a",\n    "1": "b"\n  },\n  "label2id": {\n    "a": 0,\n    "b": 1\n  },\n  "model_type": "bert",\n  "vocab_size": 99\n}\n`);
    expect(readConfig(dir).id2label).toEqual({ 0: "a", 1: "b" });
  });
});
