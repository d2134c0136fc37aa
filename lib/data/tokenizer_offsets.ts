// Offsets: the Rust engine reports code-point indices (as Python does); tunekit reports JS string
// (UTF-16) indices, so `text.slice(start, end)` gives the token's source text. They differ only
// after an astral character (emoji, 𝐁, rare CJK), which takes two UTF-16 units.

/** UTF-16 index of every code-point index of `s` (length = code points + 1), or null when they coincide. */
export function codePointToUtf16(s: string): Int32Array | null {
  if (!/[\uD800-\uDFFF]/.test(s)) return null;
  const map: number[] = [];
  let i = 0;
  while (i < s.length) {
    map.push(i);
    const c = s.charCodeAt(i);
    const pair = c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00;
    i += pair ? 2 : 1; // a lone surrogate reaches the engine as one U+FFFD, one code point too
  }
  map.push(s.length);
  return Int32Array.from(map);
}

export function toUtf16(map: Int32Array | null, cp: number): number {
  if (map === null) return cp;
  return map[Math.min(cp, map.length - 1)];
}

/** Pre-split input (`isSplitIntoWords`) is encoded as the words joined by spaces; this remembers where each word sits. */
export interface SplitWords {
  text: string;
  words: string[];
  /** code-point span of each word in `text` */
  starts: number[];
  ends: number[];
  maps: (Int32Array | null)[];
}

export function countCodePoints(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) i++;
    n++;
  }
  return n;
}

/** `prefix` is " " for byte-level BPE: HF encodes pre-split words with add_prefix_space, so the first word gets "Ġ" too. */
export function joinWords(words: string[], prefix: string): SplitWords {
  const starts: number[] = [];
  const ends: number[] = [];
  let pos = countCodePoints(prefix);
  for (const w of words) {
    starts.push(pos);
    pos += countCodePoints(w);
    ends.push(pos);
    pos += 1; // the joining space
  }
  return { text: prefix + words.join(" "), words, starts, ends, maps: words.map(codePointToUtf16) };
}

/** The word a token starting at code point `start` of the joined text came from: the first non-empty word ending after it
 *  (a byte-level token "Ġword" starts on the joining space, which belongs to the word that follows). */
export function wordOf(split: SplitWords, start: number): number | null {
  const { starts, ends } = split;
  let lo = 0;
  let hi = ends.length;
  while (lo < hi) { // first word ending after `start`
    const mid = (lo + hi) >> 1;
    if (ends[mid] <= start) lo = mid + 1;
    else hi = mid;
  }
  for (let k = lo; k < ends.length; k++) if (ends[k] > starts[k]) return k;
  return null;
}
