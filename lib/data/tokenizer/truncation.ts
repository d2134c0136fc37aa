// Truncation and overflow windows, done here rather than in the engine: the Node binding of `tokenizers`
// loses overflow windows (it returns one window of a long context, none without special tokens; see
// TOKENIZERS.md). The rules are those of tokenizers' truncate_encodings and Encoding::truncate, which
// Python's tokenizers applies, so rows and windows come out as transformers makes them.

export type TruncationStrategy = "longest_first" | "only_first" | "only_second";
export type Side = "right" | "left";

/** How many tokens of the first text (and of the pair) to keep, given `room` = maxLength minus special tokens.
 *  Returns a string (the reason) when the strategy cannot fit the input. */
export function truncationTargets(lenA: number, lenB: number | null, room: number,
                                  strategy: TruncationStrategy): { a: number; b: number | null } | string {
  const total = lenA + (lenB ?? 0);
  if (total <= room) return { a: lenA, b: lenB };
  const remove = total - room;
  if (strategy === "longest_first") {
    if (lenB === null) return { a: room, b: null };
    // n1 is the shorter one: keep it whole if the longer one can give up enough, else split the room in half.
    let n1 = Math.min(lenA, lenB);
    let n2 = Math.max(lenA, lenB);
    n2 = n1 > room ? n1 : Math.max(n1, room - n1);
    if (n1 + n2 > room) {
      n1 = Math.floor(room / 2);
      n2 = n1 + (room % 2);
    }
    return lenA > lenB ? { a: n2, b: n1 } : { a: n1, b: n2 };
  }
  if (strategy === "only_second" && lenB === null) return "truncation \"only_second\" needs a pair";
  const len = strategy === "only_first" ? lenA : lenB!;
  const which = strategy === "only_first" ? "first text" : "pair";
  if (len <= remove) {
    return `the ${which} has ${len} tokens but ${remove} must go to fit ${room} (maxLength minus special tokens)`;
  }
  return strategy === "only_first" ? { a: lenA - remove, b: lenB } : { a: lenA, b: lenB! - remove };
}

/** [start, end) token ranges of a sequence of `len` tokens cut to `max`: the kept part first, then the overflow
 *  windows, consecutive windows sharing `stride` tokens. One range when nothing is cut. */
export function windowRanges(len: number, max: number, stride: number, side: Side): [number, number][] {
  if (max >= len) return [[0, len]];
  if (max === 0) return [[0, 0], [0, len]];
  if (stride >= max) throw new RangeError(`stride ${stride} must be smaller than the ${max} tokens kept`);
  const step = max - stride;
  const out: [number, number][] = [];
  if (side === "right") {
    for (let start = 0; start < len; start += step) {
      const stop = Math.min(start + max, len);
      out.push([start, stop]);
      if (stop === len) break;
    }
  } else {
    for (let last = len - 1; last >= 0; last -= step) {
      const stop = last + 1;
      const start = Math.max(0, stop - max);
      out.push([start, stop]);
      if (start === 0) break;
    }
  }
  return out;
}

/** Which (first-text window, pair window) makes each row, in the order tokenizers' Encoding::merge_with lists them:
 *  the main row, then each later first-text window with every pair window, then the main first text with later pair windows. */
export function windowPairs(nA: number, nB: number): [number, number][] {
  const out: [number, number][] = [[0, 0]];
  for (let i = 1; i < nA; i++) for (let j = 0; j < nB; j++) out.push([i, j]);
  for (let j = 1; j < nB; j++) out.push([0, j]);
  return out;
}
