// AutoModel* as transformers has them: the config's model_type picks the class; weights come from the
// checkpoint directory (safetensors, sharded, or pytorch_model.bin); a new head is initialised.
import { Generator } from "../tensor/ops";
import { TunekitError } from "../errors";
import { PreTrainedModel, FromPretrainedOptions, configFrom } from "./pretrained";
import { BaseModel, ModelForMaskedLM, ModelForCausalLM } from "./lm";
import { ModelForSequenceClassification, ModelForTokenClassification, ModelForQuestionAnswering, SentenceEncoder, Pooling } from "./heads";
import type { ModelConfig } from "./config";

export interface LabelOptions {
  /** Number of labels of a new head (HF's num_labels); 1 means regression. */
  numLabels?: number;
  /** Label names by id (HF's id2label); sets numLabels. */
  id2label?: Record<number, string>;
  problemType?: ModelConfig["problemType"];
}

/** Applies HF's label rules: id2label wins; numLabels alone makes LABEL_0…; label2id mirrors id2label. */
export function withLabels(config: ModelConfig, o: LabelOptions): ModelConfig {
  if (o.numLabels === undefined && o.id2label === undefined && o.problemType === undefined) return config;
  let id2label = o.id2label ?? config.id2label;
  if (o.id2label) {
    const ids = Object.keys(o.id2label).map(Number).sort((a, b) => a - b);
    if (!ids.every((id, i) => id === i)) throw new TunekitError(`id2label keys must be 0..N-1, got ${ids.join(", ")}`);
    if (o.numLabels !== undefined && o.numLabels !== ids.length)
      throw new TunekitError(`numLabels ${o.numLabels} disagrees with id2label, which has ${ids.length} labels`);
  } else if (o.numLabels !== undefined) {
    if (!(Number.isInteger(o.numLabels) && o.numLabels >= 1)) throw new TunekitError(`numLabels must be a positive integer, got ${o.numLabels}`);
    id2label = Object.fromEntries(Array.from({ length: o.numLabels }, (_, i) => [i, `LABEL_${i}`]));
  }
  const label2id = Object.fromEntries(Object.entries(id2label).map(([k, v]) => [v, Number(k)]));
  return { ...config, id2label, label2id, numLabels: Object.keys(id2label).length, problemType: o.problemType ?? config.problemType };
}

function auto<M extends PreTrainedModel, O = object>(make: (c: ModelConfig, gen: Generator, o: O) => M) {
  return {
    /** Loads config.json and the weights of a local Hugging Face checkpoint directory. */
    async fromPretrained(dir: string, opts: FromPretrainedOptions & LabelOptions & O = {} as FromPretrainedOptions & LabelOptions & O): Promise<M> {
      const config = withLabels(configFrom(dir, opts.config), opts);
      const model = make(config, new Generator(opts.seed ?? 42), opts);
      model.loadWeights(dir, opts);
      model.sourceDir = dir;
      return model.eval();
    },
    /** A randomly initialised model of this config (training from scratch). */
    fromConfig(config: ModelConfig, opts: { seed?: number } & LabelOptions & O = {} as { seed?: number } & LabelOptions & O): M {
      return make(withLabels(config, opts), new Generator(opts.seed ?? 42), opts).initAll(opts.seed ?? 42).eval();
    },
  };
}

export const AutoModel = auto((c, g) => new BaseModel(c, g));
export const AutoModelForMaskedLM = auto((c, g) => new ModelForMaskedLM(c, g));
export const AutoModelForCausalLM = auto((c, g) => new ModelForCausalLM(c, g));
export const AutoModelForSequenceClassification = auto((c, g) => new ModelForSequenceClassification(c, g));
export const AutoModelForTokenClassification = auto((c, g) => new ModelForTokenClassification(c, g));
export const AutoModelForQuestionAnswering = auto((c, g) => new ModelForQuestionAnswering(c, g));
export const AutoSentenceEncoder = auto<SentenceEncoder, { pooling?: Pooling }>((c, g, o) => new SentenceEncoder(c, o.pooling ?? "mean", g));
