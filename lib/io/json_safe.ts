// Every JSON tunekit reads goes through here (config.json, tokenizer files, adapter_config.json,
// trainer_state.json, shard indexes, safetensors headers, dataset files, sentence-transformers files).
// V8's JSON.parse accepts arrays nested hundreds of thousands deep, and then JSON.stringify, error
// messages and every recursive walk over the value die with a stack-overflow RangeError. Real files nest
// a few levels (SQuAD: 6), so nesting past MAX_JSON_DEPTH is refused before parsing.
import * as fs from "fs";
import { TunekitError } from "../errors";

/** The error class a caller wants (ConfigError, CheckpointError, DatasetError, ...); TunekitError by default. */
export type JsonErrorClass = new (message: string) => Error;
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

/** The value of `text`, or why it is not acceptable JSON (too deep, or a syntax error) and where. */
export function tryParseJson(text: string): { value: unknown } | { problem: string; at: number } {
  const deep = jsonDepthProblem(text);
  if (deep) return { problem: deep, at: -1 };
  try {
    return { value: JSON.parse(text) };
  } catch (e) {
    return { problem: `not valid JSON (${(e as Error).message})`, at: jsonErrorAt(text) };
  }
}

/**
 * JSON.parse with nesting bounded first. Errors name `what` (a file, "x.safetensors: header"), and the
 * line of a syntax error when the text spans lines: "<what>:3: not valid JSON (...)".
 */
export function parseJson(text: string, what: string, ErrorClass: JsonErrorClass = TunekitError): unknown {
  const r = tryParseJson(text);
  if ("value" in r) return r.value;
  const line = r.at >= 0 && text.includes("\n") ? `:${text.slice(0, r.at).split("\n").length}` : "";
  throw new ErrorClass(`${what}${line}: ${r.problem}`);
}

/** Reads a UTF-8 JSON file through parseJson; `what` (default: the path) names it in every error. */
export function readJson(file: string, what = file, ErrorClass: JsonErrorClass = TunekitError): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new ErrorClass(`cannot read ${what}: ${(e as Error).message}`);
  }
  return parseJson(text, what, ErrorClass);
}

/** Where JSON.parse failed (V8's message gives no position for some errors): a syntax-only scan of the
 *  JSON grammar that stops at the first character that cannot continue the text. */
function jsonErrorAt(t: string): number {
  let i = 0;
  const ws = () => { while (i < t.length && " \t\n\r".includes(t[i])) i++; };
  const stop = (): never => { throw i; };
  const str = () => {
    i++; // opening quote
    while (i < t.length && t[i] !== '"') {
      if (t.charCodeAt(i) < 0x20) stop();
      if (t[i] === "\\") {
        i++;
        if (t[i] === "u") { if (!/^[0-9a-fA-F]{4}$/.test(t.slice(i + 1, i + 5))) stop(); i += 4; }
        else if (!'"\\/bfnrt'.includes(t[i] ?? "x")) stop();
      }
      i++;
    }
    if (i >= t.length) stop();
    i++;
  };
  const value = (): void => {
    ws();
    const c = t[i];
    if (c === "{" || c === "[") {
      const close = c === "{" ? "}" : "]";
      i++;
      ws();
      if (t[i] === close) { i++; return; }
      for (;;) {
        if (c === "{") { ws(); if (t[i] !== '"') stop(); str(); ws(); if (t[i] !== ":") stop(); i++; }
        value();
        ws();
        if (t[i] === ",") { i++; continue; }
        if (t[i] === close) { i++; return; }
        stop();
      }
    }
    if (c === '"') return str();
    const m = /^(-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?|true|false|null)/.exec(t.slice(i, i + 400));
    if (!m) stop();
    i += m![0].length;
  };
  try {
    value();
    ws();
    return i;
  } catch (at) {
    return at as number;
  }
}
