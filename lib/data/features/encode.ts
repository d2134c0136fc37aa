// Tokenizing a whole dataset: in chunks (bounded memory, one engine call per chunk), with an error that
// names the example when one input is refused (e.g. a question too long for "only_second").
import { TunekitError } from "../../errors";
import type { Tokenizer, BatchEncodeOptions, BatchEncoding } from "../tokenizer";

type Input = Parameters<Tokenizer["encodeBatch"]>[0][number];

const CHUNK = 512;

/** encodeBatch over all `inputs`, chunk by chunk; overflow_to_sample_mapping indexes `inputs`. */
export async function encodeAll(tok: Tokenizer, inputs: Input[], options: BatchEncodeOptions, where: string,
                                name: (i: number) => string = (i) => `example ${i}`): Promise<BatchEncoding> {
  const out = { overflow_to_sample_mapping: [] as number[] } as unknown as Record<string, unknown[]>;
  for (let lo = 0; lo < inputs.length; lo += CHUNK) {
    const part = inputs.slice(lo, lo + CHUNK);
    let enc: BatchEncoding;
    try {
      enc = await tok.encodeBatch(part as Parameters<Tokenizer["encodeBatch"]>[0], options);
    } catch (e) {
      // Find the input at fault, one at a time (only on this error path).
      for (let k = 0; k < part.length; k++) {
        try {
          await tok.encodeBatch([part[k]] as Parameters<Tokenizer["encodeBatch"]>[0], options);
        } catch (e1) {
          throw new TunekitError(`${where}: ${name(lo + k)}: ${(e1 as Error).message}`);
        }
      }
      throw e;
    }
    for (const [k, v] of Object.entries(enc)) {
      if (k === "overflow_to_sample_mapping") for (const s of v as number[]) out[k].push(s + lo);
      else (out[k] ??= []).push(...(v as unknown[]));
    }
    if (enc.overflow_to_sample_mapping === undefined) for (let k = 0; k < part.length; k++) out.overflow_to_sample_mapping.push(lo + k);
  }
  return out as unknown as BatchEncoding;
}
