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
