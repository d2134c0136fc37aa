// tunekit predict / embed.
import { Command, Option } from "commander";
import { AutoTokenizer } from "../../data/tokenizer";
import { readRecords } from "../../data/files";
import { readConfig } from "../../models/config_json";
import { TunekitError } from "../../errors";
import { AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoModelForQuestionAnswering, AutoModel, AutoSentenceEncoder } from "../../models/auto";
import { classify, extractEntities, answerQuestions, similarity } from "../../pipeline";
import { noGrad } from "../../tensor/autograd";
import { tidy } from "../../tensor/tensor";
import { collate } from "../../data/features/collate";
import { writeFileAtomicSync } from "../../io/atomic";
import { int, Action } from "../args";
import { resolveModel } from "../models";
import { taskOfModel, savedMaxLength } from "./train";
import { defaultDocStride } from "../tasks";
import { sentenceTransformerPooling } from "../similarity";
import { output, table, clip, fmt } from "../print";

interface InputFlags { device: "cpu" | "cuda"; data?: string; text?: string; textPair?: string; question?: string; context?: string; maxLength?: number; docStride?: number; batchSize: number; json?: boolean; output?: string }

/** Texts from positional arguments, or a column of --data. */
async function inputs(texts: string[], f: InputFlags, columns: string[]): Promise<Record<string, string>[]> {
  if (texts.length && f.data) throw new TunekitError("give texts as arguments or --data, not both");
  if (texts.length) return texts.map((t) => ({ [columns[0]]: t }));
  if (!f.data) throw new TunekitError("nothing to predict: give texts as arguments or --data <file>");
  const { records, columns: have } = await readRecords(f.data);
  for (const c of columns) if (!have.includes(c)) throw new TunekitError(`${f.data}: no column '${c}'; the columns are ${have.join(", ")}`);
  return records.map((r, i) => Object.fromEntries(columns.map((c) => {
    const v = r[c];
    if (typeof v !== "string") throw new TunekitError(`${f.data}: row ${i + 1}: column '${c}' is ${v === null || v === undefined ? "empty" : typeof v}, expected text`);
    return [c, v];
  })));
}

function textColumn(f: InputFlags, fallback = "text"): string {
  return f.text ?? fallback;
}

/** Writes rows as JSON lines to --output, or returns false. */
function writeRows(f: InputFlags, rows: unknown[]): boolean {
  if (!f.output) return false;
  writeFileAtomicSync(f.output, Buffer.from(rows.map((r) => JSON.stringify(r)).join("\n") + "\n"));
  return true;
}

async function predict(texts: string[], f: InputFlags & { model: string; top?: number }): Promise<void> {
  const out = output(!!f.json);
  const dir = resolveModel(f.model);
  const tok = await AutoTokenizer.fromPretrained(dir);
  const task = taskOfModel(dir);
  if (f.docStride !== undefined && task !== "qa") throw new TunekitError(`--doc-stride applies to QA models; ${dir} is a ${task} model`);
  if (task !== "similarity" && f.textPair !== undefined) throw new TunekitError(`--text-pair applies to sentence encoders (--task similarity); ${dir} is a ${task} model`);
  const o = { maxLength: f.maxLength ?? savedMaxLength(tok.modelMaxLength, dir), batchSize: f.batchSize };
  if (task === "qa") {
    if (texts.length) throw new TunekitError("a QA model reads questions and contexts from --data (columns --question and --context), not from arguments");
    const rows = await inputs([], f, [f.question ?? "question", f.context ?? "context"]);
    const model = (await AutoModelForQuestionAnswering.fromPretrained(dir, { warn: null })).to(f.device);
    const answers = await answerQuestions(model, tok, rows.map((r) => ({ question: r[f.question ?? "question"], context: r[f.context ?? "context"] })),
      { ...o, docStride: f.docStride ?? defaultDocStride(o.maxLength) });
    const q = f.question ?? "question";
    const res = rows.map((r, i) => ({ question: r[q], ...answers[i] }));
    if (!writeRows(f, res)) out.line(table(res.map((r) => [clip(r.question, 50), clip(r.answer, 40), r.score.toFixed(3)]), ["question", "answer", "score"]));
    out.result(res);
    return;
  }
  if (task === "similarity") {
    const [c1, c2] = [textColumn(f, "sentence1"), f.textPair ?? "sentence2"];
    if (texts.length % 2) throw new TunekitError(`a sentence encoder compares pairs: give an even number of texts (pairs one after the other), got ${texts.length}`);
    const rows = texts.length ? Array.from({ length: texts.length / 2 }, (_, i) => ({ [c1]: texts[2 * i], [c2]: texts[2 * i + 1] })) : await inputs([], f, [c1, c2]);
    const model = (await AutoSentenceEncoder.fromPretrained(dir, { warn: null, pooling: sentenceTransformerPooling(dir)! })).to(f.device);
    const cos = await similarity(model, tok, rows.map((r) => [r[c1], r[c2]]), o);
    const res = rows.map((r, i) => ({ sentence1: r[c1], sentence2: r[c2], similarity: cos[i] }));
    if (!writeRows(f, res)) out.line(table(res.map((r) => [r.similarity.toFixed(4), clip(r.sentence1, 40), clip(r.sentence2, 40)]), ["cosine", "sentence 1", "sentence 2"]));
    else out.line(`${res.length} similarities written to ${f.output}`);
    out.result(res);
    return;
  }
  const col = textColumn(f);
  const rows = await inputs(texts, f, [col]);
  const list = rows.map((r) => r[col]);
  if (task === "token-classification") {
    const model = (await AutoModelForTokenClassification.fromPretrained(dir, { warn: null })).to(f.device);
    const ents = await extractEntities(model, tok, list, o);
    const res = list.map((text, i) => ({ text, entities: ents[i] }));
    if (!writeRows(f, res)) for (const r of res) out.line(`${clip(r.text, 80)}\n  ${r.entities.map((e) => `${e.text} [${e.entity}] ${fmt(e.score)}`).join("; ") || "(no entities)"}`);
    out.result(res);
    return;
  }
  const model = (await AutoModelForSequenceClassification.fromPretrained(dir, { warn: null })).to(f.device);
  const preds = await classify(model, tok, list, o);
  const res = list.map((text, i) => ({ text, label: preds[i].label, score: preds[i].score, scores: preds[i].scores }));
  if (!writeRows(f, res)) out.line(table(res.map((r) => [r.label, r.score.toFixed(4), clip(r.text, 80)]), ["label", "score", "text"]));
  else out.line(`${res.length} predictions written to ${f.output}`);
  out.result(res);
}

/** A float32 array as a NumPy .npy file (format 1.0), so Python reads it with np.load. */
export function npy(data: Float32Array, shape: number[]): Buffer {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(", ")}${shape.length === 1 ? "," : ""}), }`;
  const total = 10 + header.length + 1;
  header += " ".repeat((64 - (total % 64)) % 64) + "\n";
  const pre = Buffer.alloc(10);
  pre.write("\x93NUMPY", 0, "latin1");
  pre[6] = 1; pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  return Buffer.concat([pre, Buffer.from(header, "latin1"), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}

async function embedCmd(texts: string[], flags: InputFlags & { model: string; pooling?: "cls" | "mean" | "none" }): Promise<void> {
  const out = output(!!flags.json);
  const dir = resolveModel(flags.model);
  // A sentence encoder trained by `train --task similarity` embeds with the pooling it was trained with.
  const f = { ...flags, pooling: flags.pooling ?? sentenceTransformerPooling(dir) ?? "mean" };
  const tok = await AutoTokenizer.fromPretrained(dir);
  const col = textColumn(f);
  const list = (await inputs(texts, f, [col])).map((r) => r[col]);
  const model = (await AutoModel.fromPretrained(dir, { warn: null })).to(f.device);
  model.eval();
  const H = readConfig(dir).hiddenSize;
  const maxLength = f.maxLength ?? savedMaxLength(tok.modelMaxLength, dir);
  // Full hidden states of every text share one length: pad all to the longest.
  const enc = await tok.encodeBatch(list, { truncation: true, maxLength, padding: f.pooling === "none" ? "longest" : undefined } as never);
  const vectors: Float32Array[] = [];
  let T = 0;
  for (let i = 0; i < list.length; i += f.batchSize) {
    const feats = list.slice(i, i + f.batchSize).map((_, k) => ({ inputIds: enc.input_ids[i + k], attentionMask: enc.attention_mask[i + k], tokenTypeIds: enc.token_type_ids?.[i + k] }));
    noGrad(() => tidy(() => {
      const b = collate(feats, { padId: tok.padTokenId ?? 0 });
      const h = model.forward(b).lastHiddenState.toHost();
      T = b.seqLen;
      for (let k = 0; k < b.batchSize; k++) {
        const row = h.subarray(k * T * H, (k + 1) * T * H);
        if (f.pooling === "cls") vectors.push(row.slice(0, H));
        else if (f.pooling === "none") vectors.push(row.slice());
        else {
          const v = new Float32Array(H);
          let n = 0;
          for (let t = 0; t < T; t++) if (b.attentionMask[k * T + t]) { n++; for (let j = 0; j < H; j++) v[j] += row[t * H + j]; }
          for (let j = 0; j < H; j++) v[j] /= Math.max(n, 1);
          vectors.push(v);
        }
      }
    }));
  }
  const shape = f.pooling === "none" ? [list.length, T, H] : [list.length, H];
  if (f.output?.endsWith(".npy")) {
    const all = new Float32Array(vectors.reduce((n, v) => n + v.length, 0));
    vectors.reduce((o, v) => (all.set(v, o), o + v.length), 0);
    writeFileAtomicSync(f.output, npy(all, shape));
    out.line(`${list.length} ${f.pooling === "none" ? "hidden-state matrices" : "vectors"} of shape [${shape.slice(1).join(", ")}] written to ${f.output}`);
    out.result({ output: f.output, shape });
    return;
  }
  const rows = list.map((text, i) => ({ text, embedding: Array.from(vectors[i]) }));
  if (f.output) {
    writeRows(f, rows);
    out.line(`${rows.length} embeddings (dim ${H}) written to ${f.output}`);
  } else if (!f.json) {
    for (const r of rows) out.line(`${clip(r.text, 50)}  [${r.embedding.slice(0, 4).map((v) => v.toFixed(4)).join(", ")}, …] (${r.embedding.length})`);
  }
  out.result(f.output ? { output: f.output, shape } : rows);
}

export function registerPredict(program: Command, run: (fn: Action) => Action): void {
  const inputOpts = (c: Command) => c
    .option("-m, --model <dir>", "a checkpoint folder, or 'embedded'", "embedded")
    .option("-d, --data <file>", "read texts from a .csv/.tsv/.jsonl/.json/.parquet file")
    .option("--max-length <n>", "tokens per text (default: the tokenizer's model_max_length, which `tunekit train` sets to the length the model was trained with)", int(8))
    .option("--batch-size <n>", "texts per batch", int(1), 32)
    .option("-o, --output <file>", "write results to a file (JSON lines; embed: .npy too)")
    .option("--json", "one JSON document on stdout (everything else on stderr)")
    .addOption(new Option("--device <device>", "where the model runs: cpu, or cuda (needs the CUDA library)").choices(["cpu", "cuda"]).default("cpu"));
  inputOpts(program.command("predict [texts...]").description("run a fine-tuned classifier, tagger, QA model or sentence encoder (the task comes from the model)"))
    .option("--text <column>", "text column of --data (default: text; sentence encoder: sentence1)")
    .option("--text-pair <column>", "sentence encoder: second text column of --data (default: sentence2)")
    .option("--question <column>", "QA: question column", "question")
    .option("--context <column>", "QA: context column", "context")
    .option("--doc-stride <n>", "QA: context tokens shared by consecutive windows (default: min(128, max-length / 3))", int(0))
    .addHelpText("after", `
Examples:
  $ tunekit predict --model ./out "I loved it" "Dull and too long"
  $ tunekit predict --model ./out --data unlabelled.csv --text review --output predictions.jsonl
  $ tunekit predict --model ./ner-out "Angela Merkel visited Paris"
  $ tunekit predict --model ./qa-out --data questions.jsonl          # columns question, context
  $ tunekit predict --model ./sts-out "A man plays a guitar." "Someone is playing music."   # pairs: cosine similarity`)
    .action(run(predict));
  inputOpts(program.command("embed [texts...]").description("feature extraction: [CLS] or mean-pooled vectors, or the full last hidden states"))
    .option("--text <column>", "text column of --data", "text")
    .addOption(new Option("--pooling <how>", "cls: the [CLS] vector; mean: mean over real tokens; none: every token's hidden state (default: a sentence-transformers folder's pooling, else mean)").choices(["cls", "mean", "none"]))
    .addHelpText("after", `
Examples:
  $ tunekit embed "a first sentence" "a second one" --json
  $ tunekit embed --data texts.csv --pooling cls --output vectors.npy     # np.load("vectors.npy")`)
    .action(run(embedCmd));
}
