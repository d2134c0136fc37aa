// Ready-made Trainer evaluators for the common heads, so a training script does not wire metrics by hand.
import type { Tensor } from "../tensor/tensor";
import type { Evaluator } from "./trainer";
import { ClassificationMetric, RegressionMetric } from "../metrics";

type Labelled = { labels?: Int32Array | Float32Array };

/** Accuracy, precision/recall/F1 (binary, macro, weighted) and the confusion matrix of a classifier. */
export function classificationEvaluator(numLabels: number): () => Evaluator<Labelled> {
  return () => {
    const m = new ClassificationMetric({ numLabels });
    return { update: (out: { logits: Tensor }, b: Labelled) => m.updateLogits(out.logits.toHost(), b.labels!), compute: () => m.compute() };
  };
}

/** Pearson / Spearman (and MSE) of a regression head. */
export function regressionEvaluator(): () => Evaluator<Labelled> {
  return () => {
    const m = new RegressionMetric();
    return { update: (out: { logits: Tensor }, b: Labelled) => m.update(out.logits.toHost(), b.labels!), compute: () => m.compute() };
  };
}
