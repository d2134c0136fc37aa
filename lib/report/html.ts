// The report page: one self-contained HTML file (inline CSS and SVG, no script, and a Content-Security-
// Policy that forbids loading anything), readable offline and printable.
import type { ExampleRow } from "./input";

export const escapeHtml = (s: string): string =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;");

/** Integers as they are; other numbers with 4 significant digits (1 decimal from 100 up). */
export function formatNumber(v: number): string {
  if (Number.isInteger(v)) return String(v);
  if (!Number.isFinite(v)) return String(v);
  return Math.abs(v) >= 100 ? v.toFixed(1) : String(Number(v.toPrecision(4)));
}

export interface Figure {
  svg: string;
  file: string;
  title: string;
}

export interface Section {
  heading: string;
  figures: Figure[];
}

const CSS = `
body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; color: #222; margin: 0; background: #fafafa; }
main { max-width: 1240px; margin: 0 auto; padding: 24px 28px 40px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 10px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.meta { color: #666; font-size: 13px; margin: 0; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
figure { margin: 0; background: white; border: 1px solid #e4e4e4; border-radius: 4px; padding: 8px; max-width: 100%; overflow-x: auto; }
figure svg { display: block; max-width: 100%; height: auto; }
figcaption { font-size: 12px; color: #888; text-align: right; }
figcaption a { color: #888; }
table { border-collapse: collapse; background: white; font-size: 13px; }
th, td { border: 1px solid #e0e0e0; padding: 5px 10px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.wrong td.pred { color: #b00020; font-weight: 600; }
td.text { max-width: 680px; }
footer { margin-top: 32px; color: #999; font-size: 12px; }
`;

function table(rows: Record<string, string | number>[]): string {
  const cols: string[] = [];
  for (const r of rows) for (const k of Object.keys(r)) if (!cols.includes(k)) cols.push(k);
  const cell = (v: string | number | undefined) =>
    v === undefined ? "<td></td>" : typeof v === "number" ? `<td class="num">${formatNumber(v)}</td>` : `<td>${escapeHtml(v)}</td>`;
  return `<table><thead><tr>${cols.map((c) => `<th>${escapeHtml(c)}</th>`).join("")}</tr></thead>\n<tbody>\n${rows
    .map((r) => `<tr>${cols.map((c) => cell(r[c])).join("")}</tr>`)
    .join("\n")}\n</tbody></table>`;
}

const MAX_TEXT = 400;

function examples(rows: ExampleRow[]): string {
  const wrong = rows.filter((e) => e.label !== e.predicted).length;
  const body = rows
    .map((e) => {
      const text = e.text.length > MAX_TEXT ? e.text.slice(0, MAX_TEXT) + "…" : e.text;
      return `<tr class="${e.label === e.predicted ? "right" : "wrong"}"><td class="text">${escapeHtml(text)}</td><td>${escapeHtml(e.label)}</td><td class="pred">${escapeHtml(e.predicted)}</td><td class="num">${e.score.toFixed(3)}</td></tr>`;
    })
    .join("\n");
  return `<p class="meta">${rows.length} example(s), ${wrong} misclassified (in red); score: the model's probability of its prediction.</p>
<table><thead><tr><th>text</th><th>label</th><th>predicted</th><th>score</th></tr></thead>\n<tbody>\n${body}\n</tbody></table>`;
}

export interface Page {
  title: string;
  meta: string[];
  summary?: Record<string, string | number>[];
  sections: Section[];
  examples?: ExampleRow[];
  logs: { run: string; href: string }[];
}

export function renderPage(p: Page): string {
  const parts: string[] = [];
  parts.push(`<h1>${escapeHtml(p.title)}</h1>`);
  for (const m of p.meta) parts.push(`<p class="meta">${escapeHtml(m)}</p>`);
  if (p.summary?.length) parts.push(`<section><h2>Summary</h2>\n${table(p.summary)}\n</section>`);
  for (const s of p.sections) {
    if (!s.figures.length) continue;
    const figs = s.figures
      .map((f) => `<figure>\n${f.svg}\n<figcaption><a href="${escapeHtml(encodeURI(f.file))}">${escapeHtml(f.file)}</a></figcaption>\n</figure>`)
      .join("\n");
    parts.push(`<section><h2>${escapeHtml(s.heading)}</h2>\n<div class="charts">\n${figs}\n</div>\n</section>`);
  }
  if (p.examples?.length) parts.push(`<section><h2>Examples</h2>\n${examples(p.examples)}\n</section>`);
  const logs = p.logs.map((l) => `${escapeHtml(l.run)}: <a href="${escapeHtml(encodeURI(l.href))}">${escapeHtml(l.href)}</a>`).join(", ");
  parts.push(`<footer>Written by tunekit${logs ? `; training logs (JSON lines) ${logs}` : ""}.</footer>`);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="tunekit">
<title>${escapeHtml(p.title)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
${parts.join("\n")}
</main>
</body>
</html>
`;
}
