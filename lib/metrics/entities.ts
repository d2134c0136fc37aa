// Entity-level P/R/F1 of token classification, as seqeval's default mode.
import type { Metric, MetricValues } from "./metric";
import { fail, checkCount, prf } from "./metric";

/** An entity chunk: type and inclusive token span, as seqeval's get_entities returns it. */
export interface Entity {
  type: string;
  start: number;
  end: number;
}

/** Splits a tag into seqeval's (prefix letter, type); bare B/I/E/S and "B-" have type "_". */
function splitTag(where: string, tag: string, at: number): [string, string] {
  if (tag === "O") return ["O", "_"];
  const c = tag[0];
  if ((c === "B" || c === "I" || c === "E" || c === "S") && (tag.length === 1 || tag[1] === "-")) return [c, tag.slice(2) || "_"];
  return fail(where, `tag ${JSON.stringify(tag)} at ${at} is not O, B-<type>, I-<type>, E-<type> or S-<type>`);
}

function endOfChunk(prevTag: string, tag: string, prevType: string, type: string): boolean {
  if (prevTag === "E" || prevTag === "S") return true;
  if ((prevTag === "B" || prevTag === "I") && (tag === "B" || tag === "S" || tag === "O")) return true;
  return prevTag !== "O" && prevType !== type;
}

function startOfChunk(prevTag: string, tag: string, prevType: string, type: string): boolean {
  if (tag === "B" || tag === "S") return true;
  if ((prevTag === "E" || prevTag === "S" || prevTag === "O") && (tag === "E" || tag === "I")) return true;
  return tag !== "O" && prevType !== type;
}

/**
 * Entity chunks of one tag sequence with seqeval's default (conlleval-compatible, non-strict) rules: an I-
 * after O, or after a tag of another type, starts a new chunk; a type change ends one. Accepts IOB1/IOB2/IOBES.
 */
export function getEntities(tags: readonly string[]): Entity[] {
  return entitiesOf(tags, "getEntities");
}

function entitiesOf(tags: readonly string[], where: string): Entity[] {
  const chunks: Entity[] = [];
  let prevTag = "O", prevType = "", begin = 0;
  for (let i = 0; i <= tags.length; i++) {
    const [tag, type] = i < tags.length ? splitTag(where, tags[i], i) : ["O", "_"];
    if (endOfChunk(prevTag, tag, prevType, type)) chunks.push({ type: prevType, start: begin, end: i - 1 });
    if (startOfChunk(prevTag, tag, prevType, type)) begin = i;
    prevTag = tag;
    prevType = type;
  }
  return chunks;
}

/**
 * Entity-level precision/recall/F1 over tag sequences, as seqeval's default mode (what HF's token
 * classification examples report). compute(): precision, recall, f1 (micro over all entities), accuracy
 * (token level), and per type `${type}_precision|_recall|_f1|_support`, types sorted.
 */
export class EntityMetric implements Metric<[readonly (readonly string[])[], readonly (readonly string[])[]]> {
  private counts = new Map<string, { tp: number; predicted: number; actual: number }>();
  private tokens = 0;
  private correctTokens = 0;

  /** predictions and references: one tag sequence per sentence, the same length pairwise. */
  update(predictions: readonly (readonly string[])[], references: readonly (readonly string[])[]): void {
    const where = "EntityMetric.update";
    if (predictions.length !== references.length) fail(where, `${predictions.length} predicted sequences for ${references.length} references`);
    // seqeval joins the sentences with an "O" between them; chunking each sentence from a fresh state is the
    // same, since every sentence then starts after an O, and (sentence, span) identifies an entity as well.
    const found: [Entity[], Entity[]][] = [];
    for (let s = 0; s < references.length; s++) {
      if (predictions[s].length !== references[s].length)
        fail(where, `sequence ${s}: ${predictions[s].length} predicted tags for ${references[s].length} reference tags`);
      found.push([entitiesOf(predictions[s], `${where}: predictions[${s}]`), entitiesOf(references[s], `${where}: references[${s}]`)]);
    }
    for (let s = 0; s < references.length; s++) {
      const [pred, ref] = found[s];
      const key = (e: Entity) => `${e.type}\u0000${e.start}\u0000${e.end}`;
      const refKeys = new Set(ref.map(key));
      for (const e of ref) this.count(e.type).actual++;
      for (const e of pred) {
        const c = this.count(e.type);
        c.predicted++;
        if (refKeys.has(key(e))) c.tp++;
      }
      for (let i = 0; i < references[s].length; i++) if (predictions[s][i] === references[s][i]) this.correctTokens++;
      this.tokens += references[s].length;
    }
  }

  private count(type: string) {
    let c = this.counts.get(type);
    if (!c) this.counts.set(type, (c = { tp: 0, predicted: 0, actual: 0 }));
    return c;
  }

  reset(): void {
    this.counts.clear();
    this.tokens = this.correctTokens = 0;
  }

  compute(): MetricValues {
    if (this.tokens === 0) fail("EntityMetric.compute", "no tags were given to update()");
    let tp = 0, pr = 0, ac = 0;
    for (const c of this.counts.values()) {
      tp += c.tp;
      pr += c.predicted;
      ac += c.actual;
    }
    const [precision, recall, f1] = prf(tp, pr, ac);
    const out: MetricValues = { precision, recall, f1, accuracy: this.correctTokens / this.tokens };
    for (const type of [...this.counts.keys()].sort()) {
      const c = this.counts.get(type)!;
      [out[`${type}_precision`], out[`${type}_recall`], out[`${type}_f1`]] = prf(c.tp, c.predicted, c.actual);
      out[`${type}_support`] = c.actual;
    }
    return out;
  }
}

/**
 * Token-classification ids → tag sequences for EntityMetric, dropping positions whose label is ignoreIndex
 * (special tokens, non-first sub-words), as HF's run_ner compute_metrics does. Ids are row-major [batch, seqLen].
 */
export function tagsFromIds(
  predictions: ArrayLike<number>,
  labels: ArrayLike<number>,
  seqLen: number,
  idToTag: readonly string[],
  ignoreIndex = -100,
): { predictions: string[][]; references: string[][] } {
  const where = "tagsFromIds";
  checkCount(where, "seqLen", seqLen, 1);
  if (predictions.length !== labels.length) fail(where, `${predictions.length} predictions for ${labels.length} labels`);
  if (labels.length % seqLen !== 0) fail(where, `length ${labels.length} is not a multiple of seqLen ${seqLen}`);
  const tag = (id: number, what: string, i: number) => {
    if (!Number.isInteger(id) || id < 0 || id >= idToTag.length) fail(where, `${what} ${id} at ${i} is not in [0, ${idToTag.length})`);
    return idToTag[id];
  };
  const out = { predictions: [] as string[][], references: [] as string[][] };
  for (let b = 0; b < labels.length / seqLen; b++) {
    const p: string[] = [], r: string[] = [];
    for (let i = b * seqLen; i < (b + 1) * seqLen; i++) {
      if (labels[i] === ignoreIndex) continue;
      r.push(tag(labels[i], "label", i));
      p.push(tag(predictions[i], "prediction", i));
    }
    out.predictions.push(p);
    out.references.push(r);
  }
  return out;
}
