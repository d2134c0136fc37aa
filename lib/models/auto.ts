// AutoModel* as transformers has them: the config's model_type picks the class; weights come from the
// checkpoint directory (safetensors, sharded, or pytorch_model.bin).
import { Generator } from "../tensor/ops";
import { PreTrainedModel, FromPretrainedOptions, configFrom } from "./pretrained";
import { BaseModel, ModelForMaskedLM, ModelForCausalLM } from "./lm";
import type { ModelConfig } from "./config";

function auto<M extends PreTrainedModel>(make: (c: ModelConfig, gen: Generator) => M) {
  return {
    /** Loads config.json and the weights of a local Hugging Face checkpoint directory. */
    async fromPretrained(dir: string, opts: FromPretrainedOptions = {}): Promise<M> {
      const config = configFrom(dir, opts.config);
      const model = make(config, new Generator(opts.seed ?? 42));
      model.loadWeights(dir, opts);
      return model.eval();
    },
    /** A randomly initialised model of this config (training from scratch). */
    fromConfig(config: ModelConfig, opts: { seed?: number } = {}): M {
      return make(config, new Generator(opts.seed ?? 42)).initAll(opts.seed ?? 42).eval();
    },
  };
}

export const AutoModel = auto((c, g) => new BaseModel(c, g));
export const AutoModelForMaskedLM = auto((c, g) => new ModelForMaskedLM(c, g));
export const AutoModelForCausalLM = auto((c, g) => new ModelForCausalLM(c, g));
