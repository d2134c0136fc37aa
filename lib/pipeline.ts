// pipeline()-style inference, batched, for each head: labels with scores, entities with character
// spans, answers with spans, embeddings and similarities. No graph is recorded and every intermediate
// is freed per batch.
import { TunekitError } from "./errors";
import { noGrad } from "./tensor/autograd";
import { tidy } from "./tensor/tensor";
import { Tokenizer } from "./data/tokenizer";
import { collate } from "./data/features/collate";
import { getEntities } from "./metrics";
import { ModelForSequenceClassification, ModelForTokenClassification, ModelForQuestionAnswering, SentenceEncoder } from "./models/heads";
import { qaFeatures, postprocessQa } from "./data/features/qa";

export interface PipelineOptions {
  batchSize?: number;
  maxLength?: number;
}

const softmax = (x: ArrayLike<number>): number[] => {
  let m = -Infinity;
  for (let i = 0; i < x.length; i++) m = Math.max(m, x[i]);
  const e = Array.from(x, (v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};

function chunks<T>(items: T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += n) out.push(items.slice(i, i + n));
  return out;
}

async function encode(tok: Tokenizer, texts: string[], maxLength: number) {
  const enc = await tok.encodeBatch(texts, { truncation: true, maxLength });
  return texts.map((_, i) => ({
    inputIds: enc.input_ids[i], attentionMask: enc.attention_mask[i], tokenTypeIds: enc.token_type_ids[i],
    offsets: enc.offset_mapping[i], wordIds: enc.word_ids[i],
  }));
}

export interface ClassificationResult {
  label: string;
  score: number;
  /** Every label with its score (sigmoid per label for multi-label, softmax otherwise, the value for regression). */
  scores: { label: string; score: number }[];
}

/** Text classification: the top label and all scores, as transformers' text-classification pipeline. */
export async function classify(model: ModelForSequenceClassification, tok: Tokenizer, texts: string[], o: PipelineOptions = {}): Promise<ClassificationResult[]> {
  const id2label = model.config.id2label, N = model.config.numLabels;
  const out: ClassificationResult[] = [];
  for (const group of chunks(await encode(tok, texts, o.maxLength ?? 512), o.batchSize ?? 32)) {
    const logits = noGrad(() => tidy(() => Float32Array.from(model.forward(collate(group, { padId: tok.padTokenId ?? 0 })).logits.toHost())));
    group.forEach((_, b) => {
      const row = logits.subarray(b * N, (b + 1) * N);
      const p = model.problemType === "regression" ? Array.from(row)
        : model.problemType === "multi_label_classification" ? Array.from(row, (v) => 1 / (1 + Math.exp(-v))) : softmax(row);
      const scores = p.map((score, i) => ({ label: id2label[i] ?? `LABEL_${i}`, score }));
      const best = scores.reduce((a, c) => (c.score > a.score ? c : a));
      out.push({ label: best.label, score: best.score, scores });
    });
  }
  return out;
}

export interface Entity {
  /** Entity type (PER, ORG, …) */
  entity: string;
  text: string;
  /** Character span [start, end) in the input string. */
  start: number;
  end: number;
  /** Mean probability of the entity's words. */
  score: number;
}

/**
 * Named entities with character spans: each word takes the label of its first sub-token (as it was
 * trained), BIO tags are grouped into entities (seqeval's chunking), spans come from the offsets.
 */
export async function extractEntities(model: ModelForTokenClassification, tok: Tokenizer, texts: string[], o: PipelineOptions = {}): Promise<Entity[][]> {
  const id2label = model.config.id2label, L = model.config.numLabels;
  const out: Entity[][] = [];
  for (const group of chunks(await encode(tok, texts, o.maxLength ?? 512), o.batchSize ?? 32)) {
    const b = collate(group, { padId: tok.padTokenId ?? 0 });
    const logits = noGrad(() => tidy(() => Float32Array.from(model.forward(b).logits.toHost())));
    group.forEach((g, k) => {
      const text = texts[out.length];
      const words: { tag: string; score: number; start: number; end: number }[] = [];
      g.wordIds.forEach((w, t) => {
        if (w === null) return;
        const [s, e] = g.offsets[t];
        if (w === words.length) {
          const p = softmax(logits.subarray((k * b.seqLen + t) * L, (k * b.seqLen + t + 1) * L));
          const best = p.indexOf(Math.max(...p));
          words.push({ tag: id2label[best] ?? "O", score: p[best], start: s, end: e });
        } else if (words[w]) words[w].end = e;
      });
      out.push(getEntities(words.map((w) => w.tag)).map((en) => {
        const ws = words.slice(en.start, en.end + 1);
        const start = ws[0].start, end = ws[ws.length - 1].end;
        return { entity: en.type, text: text.slice(start, end), start, end, score: ws.reduce((a, w) => a + w.score, 0) / ws.length };
      }));
    });
  }
  return out;
}

export interface Answer {
  answer: string;
  start: number;
  end: number;
  score: number;
}

/** Extractive QA: the best span of the context (long contexts split with stride), as the QA pipeline. */
export async function answerQuestions(model: ModelForQuestionAnswering, tok: Tokenizer, inputs: { question: string; context: string }[],
  o: PipelineOptions & { docStride?: number; maxAnswerLength?: number } = {}): Promise<Answer[]> {
  const examples = inputs.map((x, i) => ({ id: String(i), title: "", question: x.question, context: x.context, answers: [] }));
  const features = await qaFeatures(tok, examples, { maxLength: o.maxLength ?? 384, docStride: o.docStride ?? 128 });
  const starts: number[][] = [], ends: number[][] = [];
  for (const group of chunks(features, o.batchSize ?? 32)) {
    noGrad(() => tidy(() => {
      const b = collate(group, { padId: tok.padTokenId ?? 0 });
      const r = model.forward(b);
      for (let k = 0; k < b.batchSize; k++) {
        starts.push(Array.from(r.startLogits.toHost().subarray(k * b.seqLen, (k + 1) * b.seqLen)));
        ends.push(Array.from(r.endLogits.toHost().subarray(k * b.seqLen, (k + 1) * b.seqLen)));
      }
    }));
  }
  return postprocessQa(examples, features, starts, ends, { maxAnswerLength: o.maxAnswerLength ?? 30 }).map((p) => ({ answer: p.text, start: p.start, end: p.end, score: p.score }));
}

/** Sentence embeddings (B, H) of a bi-encoder, one Float32Array per text. */
export async function embed(model: SentenceEncoder, tok: Tokenizer, texts: string[], o: PipelineOptions = {}): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  const H = model.config.hiddenSize;
  for (const group of chunks(await encode(tok, texts, o.maxLength ?? 512), o.batchSize ?? 32)) {
    const e = noGrad(() => tidy(() => Float32Array.from(model.embed(collate(group, { padId: tok.padTokenId ?? 0 })).toHost())));
    group.forEach((_, b) => out.push(e.slice(b * H, (b + 1) * H)));
  }
  return out;
}

export function cosine(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new TunekitError(`cosine: lengths ${a.length} and ${b.length} differ`);
  let d = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) { d += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
  return d / Math.max(Math.sqrt(na) * Math.sqrt(nb), 1e-12);
}

/** Cosine similarity of each pair of texts under the bi-encoder. */
export async function similarity(model: SentenceEncoder, tok: Tokenizer, pairs: [string, string][], o: PipelineOptions = {}): Promise<number[]> {
  const a = await embed(model, tok, pairs.map((p) => p[0]), o), b = await embed(model, tok, pairs.map((p) => p[1]), o);
  return a.map((x, i) => cosine(x, b[i]));
}
