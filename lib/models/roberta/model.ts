// RoBERTa body (modeling_roberta.py): BERT's, except the position ids, which count the real tokens from
// padding_idx + 1 (padding tokens get padding_idx), and the padding index of the position table.
import * as ops from "../../tensor/ops";
import type { Context } from "../../nn/module";
import type { ModelConfig } from "../config";
import type { ModelInputs } from "../inputs";
import { BertEmbeddings, BertModel } from "../bert/model";
import { robertaPadding } from "./config";

class RobertaEmbeddings extends BertEmbeddings {
  constructor(c: ModelConfig, ctx: Context) {
    super(c, ctx, robertaPadding(c), robertaPadding(c));
  }
  /** create_position_ids_from_input_ids: cumulative count of non-pad tokens, offset by padding_idx. */
  override positionIds(x: ModelInputs): Int32Array {
    const { batchSize: B, seqLen: T } = x;
    const pad = robertaPadding(this.c);
    const pos = new Int32Array(B * T);
    for (let b = 0; b < B; b++) {
      let n = 0;
      for (let t = 0; t < T; t++) {
        const real = x.inputIds[b * T + t] !== pad;
        if (real) n++;
        pos[b * T + t] = real ? n + pad : pad;
      }
    }
    return pos;
  }
}

export class RobertaModel extends BertModel {
  constructor(config: ModelConfig, addPoolingLayer = true, ctx: Context = { gen: new ops.Generator(42) }) {
    super(config, addPoolingLayer, ctx, new RobertaEmbeddings(config, ctx), "RobertaModel");
  }
}
