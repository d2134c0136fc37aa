// Examples: what the dataset readers (this folder) hand the feature builders (lib/data/features), one
// interface per task, so neither floor imports the other's code for its types.

/** A label as a dataset file holds it: a class name or number (config.json's label2id keys are its strings). */
export type LabelValue = string | number;

export interface TextExample {
  text: string;
  /** Class id; null where the file has no labels (GLUE test files). */
  label: number | null;
}

export interface NerSentence {
  tokens: string[];
  pos: string[];
  chunk: string[];
  ner: string[];
}

export interface QaAnswer {
  text: string;
  /** JS string (UTF-16) index into the context; the file's answer_start counts code points (Python). */
  answerStart: number;
}

export interface QaExample {
  id: string;
  title: string;
  context: string;
  question: string;
  answers: QaAnswer[];
}

export interface SentencePairExample {
  sentence1: string;
  sentence2: string;
  /** Similarity in [0, 5]. */
  score: number;
}

export interface ClassificationExample {
  text: string;
  textPair?: string;
  /** single_label_classification: a label (string or number); regression: a number;
   *  multi_label_classification: the list of labels that apply. Absent (or null) for unlabelled data. */
  label?: LabelValue | LabelValue[] | null;
}

export interface TokenClassificationExample {
  words: string[];
  /** One label per word (e.g. CoNLL NER tags); absent for unlabelled data. */
  tags?: LabelValue[];
}
