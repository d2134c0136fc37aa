// Config overrides act as HF's from_pretrained(dir, key=value): on config.json's keys, so the fields
// derived from one key follow it (issue 17: hiddenDropout alone left the embedding/classifier dropout).
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { AutoModelForSequenceClassification, EMBEDDED_MODEL } from "../lib";
import { configFrom } from "../lib/models/pretrained";
import { readConfig } from "../lib/models/config_json";

test("hiddenDropout moves BERT's embedding and classifier dropout (one key: hidden_dropout_prob)", () => {
  const c = configFrom(EMBEDDED_MODEL, { hiddenDropout: 0.3 });
  expect([c.hiddenDropout, c.embeddingDropout, c.classifierDropout]).toEqual([0.3, 0.3, 0.3]);
  expect(c.attentionDropout).toBe(readConfig(EMBEDDED_MODEL).attentionDropout);
});

test("an explicit classifierDropout stays its own (classifier_dropout)", () => {
  const c = configFrom(EMBEDDED_MODEL, { hiddenDropout: 0.3, classifierDropout: 0.5 });
  expect([c.hiddenDropout, c.embeddingDropout, c.classifierDropout]).toEqual([0.3, 0.3, 0.5]);
});

test("two overrides on one key must agree", () => {
  expect(() => configFrom(EMBEDDED_MODEL, { hiddenDropout: 0.3, embeddingDropout: 0.05 })).toThrow(/both hidden_dropout_prob/);
});

test("the model trained with an override saves it and reloads the same config", async () => {
  const m = await AutoModelForSequenceClassification.fromPretrained(EMBEDDED_MODEL, { config: { hiddenDropout: 0.25, numLabels: 3 }, warn: null });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tk-overrides-"));
  await m.savePretrained(dir);
  const back = readConfig(dir);
  expect([back.hiddenDropout, back.embeddingDropout, back.classifierDropout, back.numLabels]).toEqual([0.25, 0.25, 0.25, 3]);
  fs.rmSync(dir, { recursive: true, force: true });
});
