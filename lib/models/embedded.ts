import * as path from "path";

/**
 * The pre-trained encoder that ships in the package: BERT, 4 layers, hidden 128, an uncased WordPiece
 * vocabulary of 8,192 tokens, pre-trained by tunekit with masked-LM on the Brown corpus and nlp-corpus
 * (scripts/build-embedded-model.mjs is the recipe; models/brown-bert/pretraining.json says how it went).
 * Small enough to fine-tune in minutes on a laptop CPU, offline.
 */
export const EMBEDDED_MODEL = path.resolve(__dirname, "..", "..", "models", "brown-bert");
