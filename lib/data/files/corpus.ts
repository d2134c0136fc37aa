// Plain-text corpora for (continued) pre-training: files or directories of .txt files → texts.
import * as fs from "fs";
import * as path from "path";
import { DatasetError, TunekitError } from "../../errors";
import { checkFile, readText, show, splitLines } from "./read";

export interface TextCorpusOptions {
  /** Drop texts shorter than this many characters (after trimming). Default 1 (drop nothing but empties). */
  minChars?: number;
}

function txtFiles(dir: string, seen: Set<string>, out: string[]): void {
  const real = fs.realpathSync(dir);
  if (seen.has(real)) return; // a symlink loop
  seen.add(real);
  const names = fs.readdirSync(dir).sort();
  for (const name of names) {
    const p = path.join(dir, name);
    const st = fs.statSync(p, { throwIfNoEntry: false });
    if (st?.isDirectory()) txtFiles(p, seen, out);
    else if (st?.isFile() && name.toLowerCase().endsWith(".txt")) out.push(p);
  }
}

/**
 * Texts of .txt files, for language-model pre-training. `paths` are files (read whatever their
 * extension) or directories (their .txt files, recursively, in sorted path order, so the corpus is the
 * same on every machine). Within a file:
 * - when blank lines separate paragraphs, each paragraph is one text, its lines (hard-wrapped text)
 *   trimmed and joined with a single space;
 * - when the file has no blank line between its lines (one sentence or document per line), each
 *   non-empty line is one text.
 * Texts keep the files' order.
 */
export function readTextCorpus(paths: string | string[], o?: TextCorpusOptions): string[] {
  const where = "readTextCorpus";
  const list = typeof paths === "string" ? [paths] : paths;
  if (!Array.isArray(list) || list.length === 0 || list.some((p) => typeof p !== "string" || p === "")) {
    throw new TunekitError(`${where}: expected a path or a non-empty array of paths (.txt files or directories), got ${show(paths)}`);
  }
  const minChars = o?.minChars ?? 1;
  if (!Number.isInteger(minChars) || minChars < 1) throw new TunekitError(`${where}: minChars must be an integer >= 1, got ${show(minChars)}`);
  const files: string[] = [];
  for (const p of list) {
    const st = fs.statSync(p, { throwIfNoEntry: false });
    if (st?.isDirectory()) {
      const found: string[] = [];
      txtFiles(p, new Set(), found);
      if (found.length === 0) throw new DatasetError(`${p}: no .txt files in this directory (searched recursively); expected plain-text files`);
      files.push(...found);
    } else {
      checkFile(p, "a text file or a directory of .txt files");
      files.push(p);
    }
  }
  const texts: string[] = [];
  for (const file of files) {
    const lines = splitLines(readText(file)).map((l) => l.trim());
    const first = lines.findIndex((l) => l !== "");
    const last = lines.length - 1 - [...lines].reverse().findIndex((l) => l !== "");
    const paragraphs = first >= 0 && lines.slice(first, last + 1).includes("");
    if (paragraphs) {
      let cur: string[] = [];
      for (const l of [...lines, ""]) {
        if (l !== "") cur.push(l);
        else if (cur.length > 0) {
          texts.push(cur.join(" "));
          cur = [];
        }
      }
    } else {
      for (const l of lines) if (l !== "") texts.push(l);
    }
  }
  const kept = texts.filter((t) => t.length >= minChars);
  if (kept.length === 0) {
    throw new DatasetError(`${list.join(", ")}: no text${texts.length > 0 ? ` of at least ${minChars} characters (${texts.length} shorter ones dropped)` : ""} in ${files.length} file(s); expected non-empty text`);
  }
  return kept;
}
