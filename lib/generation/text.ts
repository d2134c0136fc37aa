// Text of a row's new tokens while they come one at a time. The row's whole new text is decoded again
// each step (a token alone can be half a character: byte-level BPE and SentencePiece byte fallback split
// multi-byte characters over tokens), and the delta is what grew. Held back until the next token: a
// trailing U+FFFD (an unfinished character) and trailing spaces (clean_up_tokenization_spaces turns
// " ," into "," once the comma comes), so an emitted delta never changes afterwards.

const HELD = /[\s\uFFFD]+$/u;

export class TextDeltas {
  /** Text handed out so far. */
  private emitted = "";

  /** The delta of `full` (the row's whole new text now); final = nothing is held back any more. */
  next(full: string, final: boolean): string {
    const ready = final ? full : full.replace(HELD, "");
    // A decoder that rewrote text already handed out (none of HF's do, given what is held back) gets no
    // further deltas; generate()'s text is still the whole decode.
    if (!ready.startsWith(this.emitted)) return "";
    const delta = ready.slice(this.emitted.length);
    this.emitted = ready;
    return delta;
  }

  get text(): string {
    return this.emitted;
  }
}

/** Where a stop string occurs in `text` ending after `from` (the text before the latest token), or −1. */
export function stopStringEnd(text: string, from: number, stops: string[]): number {
  let end = -1;
  for (const s of stops) {
    const i = text.indexOf(s, Math.max(0, from - s.length + 1));
    if (i >= 0 && (end < 0 || i + s.length < end)) end = i + s.length;
  }
  return end;
}
