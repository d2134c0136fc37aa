// Text widths for the headless renderer. Without a canvas vega guesses 0.8 em a character, ~40% wider than
// real text, which leaves wide empty margins beside titles and legends. This measures with the advance widths
// of DejaVu Sans, the report's first font (per mille of the em, ASCII 32..126, read from DejaVuSans.ttf and
// DejaVuSans-Bold.ttf). Its fallbacks (Helvetica, Arial) are narrower, so text never runs over its space.
import type * as Vega from "vega";

const REGULAR = [
  318, 401, 460, 838, 636, 950, 780, 275, 390, 390, 500, 838, 318, 361, 318, 337, 636, 636, 636, 636, 636, 636, 636, 636,
  636, 636, 337, 337, 838, 838, 838, 531, 1000, 684, 686, 698, 770, 632, 575, 775, 752, 295, 295, 656, 557, 863, 748, 787,
  603, 787, 695, 635, 611, 732, 684, 989, 685, 611, 685, 390, 337, 390, 838, 500, 500, 613, 635, 550, 635, 615, 352, 635,
  634, 278, 278, 579, 278, 974, 634, 612, 635, 635, 411, 521, 392, 634, 592, 818, 592, 592, 525, 636, 337, 636, 838,
];
const BOLD = [
  348, 456, 521, 838, 696, 1002, 872, 306, 457, 457, 523, 838, 380, 415, 380, 365, 696, 696, 696, 696, 696, 696, 696, 696,
  696, 696, 400, 400, 838, 838, 838, 580, 1000, 774, 762, 734, 830, 683, 683, 821, 837, 372, 372, 775, 637, 995, 837, 850,
  733, 850, 770, 720, 682, 812, 774, 1103, 771, 724, 725, 457, 365, 457, 838, 500, 500, 675, 716, 593, 716, 678, 435, 716,
  712, 343, 343, 665, 343, 1042, 712, 687, 716, 716, 493, 595, 478, 712, 652, 924, 645, 652, 582, 712, 365, 712, 838,
];

interface TextItem {
  fontSize?: number;
  fontWeight?: string | number;
  limit?: number;
  text?: unknown;
}

/** Width in pixels of one line of `text` at `fontSize` (non-ASCII: 0.7 em, CJK and wider: 1 em). */
export function textWidth(text: string, fontSize: number, bold = false): number {
  const table = bold ? BOLD : REGULAR;
  let w = 0;
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    w += c >= 32 && c < 127 ? table[c - 32] : c >= 0x2e80 ? 1000 : 700;
  }
  return (w / 1000) * fontSize;
}

// vega's textMetrics.width(item, text) contract: the width of the trimmed line, at most item.limit (vega
// truncates with an ellipsis to fit the limit, probing with this same function).
function itemWidth(item: TextItem, text?: unknown): number {
  const line = (text == null ? "" : String(text)).trim();
  const bold = item.fontWeight === "bold" || item.fontWeight === "bolder" || Number(item.fontWeight) >= 600;
  const w = textWidth(line, item.fontSize ?? 11, bold);
  return item.limit && item.limit > 0 ? Math.min(w, item.limit) : w;
}

type Metrics = { width: (item: TextItem, text?: unknown) => number };

/** Runs `fn` with these widths in vega's (process-wide) text metrics, restoring the previous ones after. */
export async function withTextWidths<T>(vega: typeof Vega, fn: () => Promise<T>): Promise<T> {
  const metrics = (vega as unknown as { textMetrics: Metrics }).textMetrics;
  const previous = metrics.width;
  metrics.width = itemWidth;
  try {
    return await fn();
  } finally {
    metrics.width = previous;
  }
}
