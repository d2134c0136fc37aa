// Evaluation metrics, streaming (update per batch, compute at the end). Below lib/data and lib/train: both
// import from here, and nothing here imports them.
export { argmax } from "./metric";
export type { Metric, MetricValues } from "./metric";
export { ClassificationMetric, MultiLabelMetric, MostConfidentErrors, mostConfidentErrors } from "./classification";
export type { ClassificationOptions, MultiLabelOptions, ConfidentError } from "./classification";
export { EntityMetric, getEntities, tagsFromIds } from "./entities";
export type { Entity } from "./entities";
export { SquadMetric, normalizeAnswer, squadScores } from "./squad";
export { RegressionMetric, pearson, spearman, averageRanks } from "./regression";
