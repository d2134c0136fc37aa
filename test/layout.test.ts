// The floors of lib/ (README "Layout"): a lower folder never imports a higher one, there are no runtime
// import cycles, and every JSON tunekit reads goes through lib/io/json_safe.ts (nesting bounded).
import * as fs from "fs";
import * as path from "path";

const LIB = path.join(__dirname, "..", "lib");

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sources(p) : p.endsWith(".ts") ? [p] : [];
  });
}

/** Each lib file (relative to lib/, no extension) → the lib files it imports, type-only imports flagged. */
function importGraph(): Map<string, { to: string; typeOnly: boolean }[]> {
  const g = new Map<string, { to: string; typeOnly: boolean }[]>();
  const rel = (f: string) => path.relative(LIB, f).replace(/\.ts$/, "").split(path.sep).join("/");
  for (const file of sources(LIB)) {
    const deps: { to: string; typeOnly: boolean }[] = [];
    for (const m of fs.readFileSync(file, "utf8").matchAll(/^(?:import|export)\s+(type\s+)?[^;]*?\bfrom\s+"(\.[^"]+)"/gms)) {
      const base = path.join(path.dirname(file), m[2]);
      const target = [base + ".ts", path.join(base, "index.ts")].find((c) => fs.existsSync(c));
      if (!target) throw new Error(`${rel(file)}: import "${m[2]}" resolves to no file`);
      deps.push({ to: rel(target), typeOnly: m[1] !== undefined });
    }
    g.set(rel(file), deps);
  }
  return g;
}

const graph = importGraph();
const importsOf = (folder: string) => [...graph].filter(([f]) => f.startsWith(folder)).flatMap(([f, deps]) => deps.map((d) => `${f} → ${d.to}`));

describe("floors of lib/", () => {
  test.each([
    ["metrics/", ["data/", "train/", "models/", "cli/"]],
    ["data/tokenizer/", ["data/files/", "data/features/", "train/", "metrics/"]],
    ["data/files/", ["data/features/", "data/tokenizer/", "train/", "metrics/", "models/"]],
    ["data/rng", ["data/files/", "data/features/", "data/tokenizer/"]],
    ["data/features/", ["train/", "models/", "cli/"]],
    ["io/", ["data/", "train/", "models/", "metrics/", "peft/"]],
    ["distributed/", ["cli/", "data/", "models/", "metrics/", "peft/"]],
  ])("%s imports none of %j", (folder, above) => {
    expect([...graph.keys()].some((f) => f.startsWith(folder))).toBe(true);
    expect(importsOf(folder).filter((edge) => above.some((a) => edge.split(" → ")[1].startsWith(a)))).toEqual([]);
  });

  test("no runtime import cycles", () => {
    const state = new Map<string, "open" | "done">();
    const cycles: string[] = [];
    const visit = (f: string, stack: string[]) => {
      if (state.get(f) === "done") return;
      if (state.get(f) === "open") return void cycles.push([...stack.slice(stack.indexOf(f)), f].join(" → "));
      state.set(f, "open");
      for (const d of graph.get(f) ?? []) if (!d.typeOnly) visit(d.to, [...stack, f]);
      state.set(f, "done");
    };
    for (const f of graph.keys()) visit(f, []);
    expect(cycles).toEqual([]);
  });

  test("only lib/io/json_safe.ts calls JSON.parse", () => {
    const callers = sources(LIB).filter((f) => /JSON\.parse\(/.test(fs.readFileSync(f, "utf8").replace(/\/\/.*$|\/\*[\s\S]*?\*\//gm, "")));
    expect(callers.map((f) => path.relative(LIB, f))).toEqual([path.join("io", "json_safe.ts")]);
  });
});
