// Sequence classification features (transformers' run_glue preprocessing): one text or a text pair
// → ids truncated to maxLength; labels as class ids, floats (regression) or multi-hot vectors.
import { TunekitError } from "../../errors";
import type { Tokenizer } from "../tokenizer";
import type { EncodedFeature } from "./collate";
import type { ProblemType } from "../../io/config";
import { buildLabelMap, checkLabelMap, labelId } from "./labels";
import type { LabelMap } from "./labels";
import type { ClassificationExample, LabelValue } from "../files/examples";
import { encodeAll } from "./encode";

export interface ClassificationOptions {
  /** Default "single_label_classification". */
  problemType?: ProblemType;
  /** Truncation length, special tokens included. Default: the tokenizer's modelMaxLength. */
  maxLength?: number;
  /** The label → id map to use (e.g. from a checkpoint); default: the sorted set of labels in the data. */
  label2id?: Record<string, number>;
}

export interface ClassificationFeatures extends Partial<LabelMap> {
  features: EncodedFeature[];
  problemType: ProblemType;
  /** Number of labels (1 for regression). */
  numLabels: number;
}

export async function classificationFeatures(tok: Tokenizer, examples: ClassificationExample[],
                                             options: ClassificationOptions = {}): Promise<ClassificationFeatures> {
  const where = "classificationFeatures";
  const problemType = options.problemType ?? "single_label_classification";
  if (!["single_label_classification", "regression", "multi_label_classification"].includes(problemType)) {
    throw new TunekitError(`${where}: problemType must be "single_label_classification", "regression" or "multi_label_classification", got ${JSON.stringify(problemType)}`);
  }
  if (!Array.isArray(examples) || examples.length === 0) throw new TunekitError(`${where}: expected a non-empty array of examples`);
  const pairs = examples.map((e, i) => {
    if (e === null || typeof e !== "object" || typeof e.text !== "string") throw new TunekitError(`${where}: example ${i}: expected { text: string, textPair?: string, label? }`);
    if (e.textPair !== undefined && typeof e.textPair !== "string") throw new TunekitError(`${where}: example ${i}: textPair must be a string`);
    return e.textPair !== undefined;
  });
  if (pairs.some((p) => p !== pairs[0])) throw new TunekitError(`${where}: example ${pairs.indexOf(!pairs[0])} ${pairs[0] ? "lacks" : "has"} textPair but example 0 does not; use one layout`);
  const labelled = examples.map((e) => e.label !== undefined && e.label !== null);
  if (labelled.some((l) => l !== labelled[0])) throw new TunekitError(`${where}: example ${labelled.indexOf(!labelled[0])} ${labelled[0] ? "has no label" : "has a label"} but example 0 ${labelled[0] ? "has one" : "does not"}`);

  let map: LabelMap | undefined;
  if (problemType !== "regression" && (labelled[0] || options.label2id)) {
    const all = problemType === "multi_label_classification"
      ? examples.flatMap((e, i) => {
        if (labelled[0] && !Array.isArray(e.label)) throw new TunekitError(`${where}: example ${i}: multi_label_classification needs label to be a list of labels, got ${JSON.stringify(e.label)}`);
        return (e.label ?? []) as LabelValue[];
      })
      : examples.map((e) => e.label as LabelValue);
    map = options.label2id ? checkLabelMap(options.label2id, where) : buildLabelMap(all, where);
  }
  const numLabels = problemType === "regression" ? 1 : Object.keys(map?.label2id ?? {}).length;

  const enc = await encodeAll(tok, examples.map((e) => (pairs[0] ? [e.text, e.textPair!] : e.text)) as string[],
    { truncation: true, maxLength: options.maxLength ?? tok.modelMaxLength }, where);
  const withTypes = tok.modelInputNames.includes("token_type_ids");
  const features = enc.input_ids.map((ids, i): EncodedFeature => {
    const f: EncodedFeature = { inputIds: ids, attentionMask: enc.attention_mask[i] };
    if (withTypes) f.tokenTypeIds = enc.token_type_ids[i];
    const y = examples[i].label;
    if (!labelled[0]) return f;
    if (problemType === "regression") {
      if (typeof y !== "number" || !Number.isFinite(y)) throw new TunekitError(`${where}: example ${i}: a regression label must be a finite number, got ${JSON.stringify(y)}`);
      f.labels = y;
    } else if (problemType === "multi_label_classification") {
      const hot = new Array<number>(numLabels).fill(0);
      for (const v of y as LabelValue[]) hot[labelId(map!, v, `${where}: example ${i}`)] = 1;
      f.labels = hot;
    } else {
      if (Array.isArray(y)) throw new TunekitError(`${where}: example ${i}: single_label_classification needs one label, got a list`);
      f.labels = labelId(map!, y as LabelValue, `${where}: example ${i}`);
    }
    f.labelKind = problemType;
    return f;
  });
  return { features, problemType, numLabels, ...(map ?? {}) };
}
