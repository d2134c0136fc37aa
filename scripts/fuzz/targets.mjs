// The fuzz targets: one entry per parser. Each has
//   name      what `--target` selects
//   seeds()   real files to mutate: a list of {fileName: bytes} maps (tests/fixtures, ../shared models and data)
//   gen       optional fast-check arbitrary of structure-aware inputs (same {fileName: bytes} shape)
//   run(dir, lib, files) reads the input written into `dir` with tunekit's public readers
// An input is written as files into a fresh temp folder; a rejection must be a TunekitError.
import * as fs from "fs";
import * as path from "path";
import { createRequire } from "module";
import { fileURLToPath } from "url";
import { safetensorsArb, pickleArb, zipArb, configArb, tokenizerArb, makeZip } from "./gen.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const SHARED = process.env.TUNEKIT_SHARED ? path.resolve(process.env.TUNEKIT_SHARED) : path.resolve(ROOT, "../shared"); // as test/shared.ts
const FIX = path.join(ROOT, "test/fixtures");
const require = createRequire(import.meta.url);

/** tunekit's compiled modules (npm run build first); loaded lazily so the parent never loads the addon. */
export function loadLib() {
  const d = (m) => require(path.join(ROOT, "dist", m));
  return {
    errors: d("errors"), io: d("io"), files: d("data/files"), tokenizer: d("data/tokenizer"),
    readers: d("data/files/readers"), modelConfig: d("models/config"), configJson: d("models/config_json"),
  };
}

const read = (...p) => { const f = path.join(...p); return fs.existsSync(f) ? fs.readFileSync(f) : null; };
/** The first `max` bytes of a file, cut at a line end: real data, small enough to run thousands of times. */
function head(file, max = 6000) {
  if (!fs.existsSync(file)) return null;
  const fd = fs.openSync(file, "r");
  const buf = Buffer.alloc(max);
  const n = fs.readSync(fd, buf, 0, max, 0);
  fs.closeSync(fd);
  const b = buf.subarray(0, n);
  const nl = b.lastIndexOf(0x0a);
  return nl > 0 && n === max ? b.subarray(0, nl + 1) : b;
}
const seedsOf = (name, list) => list.filter(Boolean).map((b) => ({ [name]: b }));
const models = () => (fs.existsSync(path.join(SHARED, "models")) ? fs.readdirSync(path.join(SHARED, "models")).map((m) => path.join(SHARED, "models", m)) : []);

/** A safetensors file with the real header's names/dtypes/shapes but at most `keep` tensors, so it stays small. */
function smallSafetensors(lib, file, keep = 6) {
  if (!fs.existsSync(file)) return null;
  const { tensors } = lib.io.readSafetensors(file);
  const out = new Map();
  for (const [k, t] of tensors) {
    if (out.size >= keep) break;
    if (t.data.length <= 4096) out.set(k, t);
  }
  return Buffer.concat(lib.io.encodeSafetensors(out, { format: "pt" }));
}

/** A tiny tokenizer.json from a real one: the model's settings kept, the vocabulary cut to its first `n` tokens. */
function smallTokenizerJson(file, n = 300) {
  const b = read(file);
  if (!b) return null;
  const j = JSON.parse(b.toString("utf8"));
  if (j.model && j.model.vocab && !Array.isArray(j.model.vocab)) {
    j.model.vocab = Object.fromEntries(Object.entries(j.model.vocab).filter(([, id]) => id < n));
  }
  j.added_tokens = (j.added_tokens ?? []).filter((t) => t.id < n);
  return Buffer.from(JSON.stringify(j));
}

function tokenizerSeeds(kind) {
  const out = [];
  for (const dir of [...models(), path.join(FIX, "models/roberta-tiny-random")]) {
    const cfg = read(dir, "tokenizer_config.json"), sp = read(dir, "special_tokens_map.json"), mc = read(dir, "config.json");
    const extra = { ...(cfg && { "tokenizer_config.json": cfg }), ...(sp && { "special_tokens_map.json": sp }), ...(mc && { "config.json": mc }) };
    if (kind === "json" && fs.existsSync(path.join(dir, "tokenizer.json"))) out.push({ "tokenizer.json": smallTokenizerJson(path.join(dir, "tokenizer.json")), ...extra });
    if (kind === "txt" && fs.existsSync(path.join(dir, "vocab.txt"))) out.push({ "vocab.txt": head(path.join(dir, "vocab.txt"), 3000), ...extra });
    if (kind === "bpe" && fs.existsSync(path.join(dir, "merges.txt"))) {
      // vocab.json and merges.txt cut consistently: the first merges, and the tokens they use.
      const vocab = JSON.parse(read(dir, "vocab.json") ?? "{}");
      const merges = read(dir, "merges.txt").toString("utf8").split("\n").slice(0, 60);
      const keep = new Set(Object.keys(vocab).filter((t) => vocab[t] < 260));
      for (const m of merges.slice(1)) { const [a, b] = m.split(" "); if (b !== undefined) keep.add(a).add(b).add(a + b); }
      const small = Object.fromEntries([...keep].filter((t) => t in vocab).map((t, i) => [t, i]));
      const ok = merges.filter((m, i) => i === 0 || m.split(" ").every((t) => t in small) && (m.split(" ").join("") in small));
      out.push({ "vocab.json": Buffer.from(JSON.stringify(small)), "merges.txt": Buffer.from(ok.join("\n") + "\n"), ...extra });
    }
  }
  return out;
}

const tokenize = async (lib, dir) => {
  const tok = await lib.tokenizer.AutoTokenizer.fromPretrained(dir);
  await tok.encode("Hello world, héllo <s> [SEP] tests!", "a pair");
  await tok.encodeBatch(["one", "two words"], { padding: true, truncation: true, maxLength: 8 });
  // Padding to the checkpoint's own model_max_length: a huge one must not become a huge allocation.
  await tok.encode("one", null, { padding: "max_length", truncation: true });
};

const DATA = path.join(FIX, "data");
const dataset = (name, ext, seeds, run) => ({ name, seeds: () => seedsOf(`data${ext}`, seeds()), run: (dir, lib) => run(path.join(dir, `data${ext}`), lib, dir) });
const records = async (file, lib) => {
  await lib.files.readRecords(file, { onBadRow: "skip" }).catch(rethrowUnlessTyped(lib));
  await lib.files.loadDataset(file, { validation: 0.2, onBadRow: "skip" }).catch(rethrowUnlessTyped(lib));
  await lib.files.loadDataset(file, { validation: 1 });
};
/** Runs every call, but the first untyped error wins; typed errors are expected rejections. */
const rethrowUnlessTyped = (lib) => (e) => { if (!(e instanceof lib.errors.TunekitError)) throw e; };

export const TARGETS = [
  {
    name: "safetensors",
    seeds: () => {
      const lib = loadLib();
      return seedsOf("model.safetensors", [read(FIX, "io/mixed.safetensors"), read(FIX, "io/sharded_st/model-00001-of-00002.safetensors"),
        read(FIX, "io/sharded_st/model-00002-of-00002.safetensors"), read(FIX, "models/roberta-tiny-random/model.safetensors"),
        ...models().map((m) => smallSafetensors(lib, path.join(m, "model.safetensors")))]);
    },
    gen: safetensorsArb,
    run: (dir, lib) => { lib.io.readSafetensors(path.join(dir, "model.safetensors")); },
  },
  {
    name: "torch_bin",
    seeds: () => seedsOf("pytorch_model.bin", [read(FIX, "io/state_dict.bin"), read(FIX, "io/protocol4.bin"), read(FIX, "io/deflated.bin"),
      read(FIX, "io/legacy.bin"), read(FIX, "io/malicious.bin"), read(FIX, "io/sharded_bin/pytorch_model-00001-of-00002.bin")]),
    run: (dir, lib) => {
      lib.io.readTorchBin(path.join(dir, "pytorch_model.bin"));
      lib.io.readTorchBin(path.join(dir, "pytorch_model.bin"), { verifyCrc: true });
    },
  },
  {
    name: "pickle",
    seeds: () => [], // structure-aware only: opcode streams and tensor views inside a torch.save-shaped zip
    gen: pickleArb,
    run: (dir, lib) => { lib.io.readTorchBin(path.join(dir, "pytorch_model.bin")); },
  },
  {
    name: "zip",
    seeds: () => seedsOf("pytorch_model.bin", [makeZip([{ name: "archive/data.pkl", data: Buffer.from([0x80, 2, 0x7d, 0x2e]), method: 8 }])]),
    gen: zipArb,
    run: (dir, lib) => {
      const bytes = fs.readFileSync(path.join(dir, "pytorch_model.bin"));
      const zip = new lib.io.ZipArchive(bytes, "fuzz.zip");
      for (const name of zip.entries.keys()) zip.read(name, { verifyCrc: true });
    },
  },
  {
    name: "config",
    seeds: () => seedsOf("config.json", [...models().map((m) => read(m, "config.json")), read(FIX, "models/roberta-tiny-random/config.json")]),
    gen: configArb,
    run: (dir, lib) => {
      const cfg = lib.configJson.readConfig(dir);
      lib.modelConfig.geluMode(cfg);
      lib.configJson.configToJson(cfg);
    },
  },
  { name: "tokenizer_json", seeds: () => tokenizerSeeds("json"), gen: tokenizerArb, run: (dir, lib) => tokenize(lib, dir), timeoutMs: 20000 },
  { name: "tokenizer_vocab_txt", seeds: () => tokenizerSeeds("txt"), run: (dir, lib) => tokenize(lib, dir), timeoutMs: 20000 },
  { name: "tokenizer_bpe", seeds: () => tokenizerSeeds("bpe"), run: (dir, lib) => tokenize(lib, dir), timeoutMs: 20000 },
  dataset("csv", ".csv", () => [read(DATA, "reviews.csv"), read(DATA, "bad_rows.csv"), read(DATA, "pairs.csv"), read(DATA, "scores.csv"),
    head(path.join(SHARED, "data/stsb/stsb-en-dev.csv"))], records),
  dataset("tsv", ".tsv", () => [read(DATA, "reviews.tsv"), head(path.join(SHARED, "data/sst2/dev.tsv"))], records),
  dataset("jsonl", ".jsonl", () => [read(DATA, "reviews.jsonl"), read(DATA, "bad_rows.jsonl"), read(DATA, "topics.jsonl"), read(DATA, "ner.jsonl")],
    async (file, lib) => {
      await records(file, lib).catch(rethrowUnlessTyped(lib));
      await lib.files.loadTokenDataset(file, { validation: 0.2 });
    }),
  dataset("json", ".json", () => [read(DATA, "reviews.json")], records),
  dataset("parquet", ".parquet", () => [read(DATA, "reviews.parquet"), read(DATA, "ner.parquet")], async (file, lib) => {
    await records(file, lib).catch(rethrowUnlessTyped(lib));
    await lib.files.loadTokenDataset(file, { validation: 0.2 });
  }),
  dataset("conll", ".conll", () => [read(DATA, "ner.conll"), head(path.join(SHARED, "data/conll2003/valid.txt"))], async (file, lib) => {
    await lib.files.loadTokenDataset(file, { validation: 0.2, onBadRow: "skip" }).catch(rethrowUnlessTyped(lib));
    lib.readers.readConll(file);
  }),
  dataset("squad", ".json", () => [read(DATA, "squad_small.json"), head(path.join(SHARED, "data/squad_v1.1/dev-v1.1-part-a.json"), 100000)],
    async (file, lib) => {
      await lib.files.loadQaDataset(file, { validation: 0.2 }).catch(rethrowUnlessTyped(lib));
      lib.readers.readSquad(file);
    }),
  dataset("text", ".txt", () => [read(DATA, "corpus/a.txt"), read(DATA, "corpus/sub/b.txt"), read(DATA, "corpus/notes.md"),
    head(path.join(SHARED, "data/rotten_tomatoes/rt-polarity.pos"))], async (file, lib) => {
    lib.files.readTextCorpus(file);
    await lib.files.readRecords(file);
  }),
  {
    name: "task_readers",
    seeds: () => [
      { "sst2.tsv": head(path.join(SHARED, "data/sst2/dev.tsv")) ?? read(DATA, "reviews.tsv"), "stsb.csv": head(path.join(SHARED, "data/stsb/stsb-en-dev.csv")) ?? read(DATA, "pairs.csv"),
        "rt-polarity.pos": head(path.join(SHARED, "data/rotten_tomatoes/rt-polarity.pos"), 3000) ?? read(DATA, "corpus/a.txt"),
        "rt-polarity.neg": head(path.join(SHARED, "data/rotten_tomatoes/rt-polarity.neg"), 3000) ?? read(DATA, "corpus/a.txt") },
    ],
    run: (dir, lib) => {
      const all = [() => lib.readers.readSst2(path.join(dir, "sst2.tsv")), () => lib.readers.readStsb(path.join(dir, "stsb.csv")),
        () => lib.readers.readRottenTomatoes(dir)];
      let first;
      for (const f of all) try { f(); } catch (e) { if (!(e instanceof lib.errors.TunekitError)) throw e; first ??= e; }
      if (first) throw first;
    },
  },
];
