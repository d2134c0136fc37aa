// The normalised view of an encoder/decoder config that the model code reads. Built from config.json
// (lib/io/config.ts parses the file; fromHfConfig maps each model_type's keys here).
import type { GeluApproximate } from "../tensor/ops";

export type ModelType = "bert" | "roberta" | "distilbert" | "gpt2";

export interface EncoderConfig {
  modelType: ModelType;
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  intermediateSize: number;
  maxPositions: number;
  typeVocabSize: number;
  layerNormEps: number;
  hiddenDropout: number;
  attentionDropout: number;
  padTokenId: number;
  geluApproximate: GeluApproximate;
  positionStyle: "absolute" | "roberta";
  initializerRange: number;
}
