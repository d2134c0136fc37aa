// JSON from files tunekit does not control (config.json, tokenizer files, safetensors headers, dataset
// files). V8's JSON.parse accepts arrays nested hundreds of thousands deep, and then JSON.stringify,
// error messages and every recursive walk over the value die with a stack-overflow RangeError. Real
// files nest a few levels (SQuAD: 6), so nesting past MAX_JSON_DEPTH is refused before parsing.
export const MAX_JSON_DEPTH = 512;

/**
 * Returns null when `text` nests at most `maxDepth` arrays/objects, else a message naming where it
 * goes deeper. A linear scan that skips string contents; it does not validate the JSON otherwise.
 */
export function jsonDepthProblem(text: string, maxDepth = MAX_JSON_DEPTH): string | null {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) { // skip a string, escapes included
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) i++;
        else if (d === 0x22) break;
      }
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > maxDepth) return `JSON nests deeper than ${maxDepth} levels (at character ${i}); expected a flat document`;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return null;
}
