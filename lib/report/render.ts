// Vega-Lite spec → Vega → SVG text, headless in Node: renderer "none" builds the scenegraph without a
// canvas or a DOM, and toSVG() serialises it. Text is measured with a font's width table (./text.ts).
// vega and vega-lite are loaded on the first render, not with the package (about 0.4 s of start-up).
import type * as Vega from "vega";
import type { TopLevelSpec } from "vega-lite";
import { TunekitError } from "../errors";
import { withTextWidths } from "./text";

// Every chart's data is inline: a spec that asks to load anything (a URL, a file) is refused.
const refuse = (what: string): Promise<never> => Promise.reject(new TunekitError(`report: charts load no external resources (asked for ${what})`));
const NO_LOADER: Vega.Loader = {
  load: (uri) => refuse(uri),
  sanitize: (uri) => refuse(uri),
  http: (uri) => refuse(uri),
  file: (name) => refuse(name),
};

/** Collects warnings instead of printing them, so the caller decides. */
function collector(vega: typeof Vega, into: string[]) {
  return vega.logger(vega.Warn, "warn", (_method, level, input) => {
    into.push(`${level} ${Array.from(input).map((x) => (x instanceof Error ? x.message : String(x))).join(" ")}`);
  });
}

export interface Rendered {
  svg: string;
  warnings: string[];
}

/** Renders a Vega-Lite spec to an SVG document. */
export async function renderSvg(spec: TopLevelSpec): Promise<Rendered> {
  const [vega, { compile }] = await Promise.all([import("vega"), import("vega-lite")]);
  const warnings: string[] = [];
  const vg = compile(spec, { logger: collector(vega, warnings) }).spec;
  return withTextWidths(vega, async () => {
    const view = new vega.View(vega.parse(vg), { renderer: "none", loader: NO_LOADER, logger: collector(vega, warnings), logLevel: vega.Warn });
    try {
      return { svg: await view.toSVG(), warnings };
    } finally {
      view.finalize();
    }
  });
}

/**
 * Gives every id in an SVG a prefix (and rewrites its url(#id) / href="#id" references), so several
 * charts inlined in one HTML page cannot resolve each other's clip paths or gradients.
 */
export function prefixIds(svg: string, prefix: string): string {
  const ids = new Set([...svg.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]));
  if (!ids.size) return svg;
  const p = (id: string) => (ids.has(id) ? `${prefix}-${id}` : id);
  return svg
    .replace(/(\sid=")([^"]+)"/g, (_, a, id) => `${a}${p(id)}"`)
    .replace(/url\(#([^)]+)\)/g, (_, id) => `url(#${p(id)})`)
    .replace(/(href=")#([^"]+)"/g, (_, a, id) => `${a}#${p(id)}"`);
}
