// Structure-aware generators (fast-check arbitraries) for the fuzz targets: safetensors headers with
// arbitrary dtypes/shapes/offsets, pickle opcode streams inside a torch.save-shaped zip, zip archives
// with hostile directories and compression ratios, config.json and tokenizer files with extreme values.
import fc from "fast-check";
import * as zlib from "zlib";

// ---------------------------------------------------------------- zip writer (stored / deflate)
/** A zip archive of `entries` [{name, data, method?: 0|8, claimSize?}] (no ZIP64). */
export function makeZip(entries) {
  const locals = [], centrals = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name);
    const data = Buffer.from(e.data);
    const method = e.method ?? 0;
    const body = method === 8 ? zlib.deflateRawSync(data) : data;
    const crc = zlib.crc32(data) >>> 0;
    const size = e.claimSize ?? data.length;
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0); lh.writeUInt16LE(20, 4); lh.writeUInt16LE(method, 8);
    lh.writeUInt32LE(crc, 14); lh.writeUInt32LE(body.length, 18); lh.writeUInt32LE(size, 22); lh.writeUInt16LE(name.length, 26);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0); ch.writeUInt16LE(20, 4); ch.writeUInt16LE(20, 6); ch.writeUInt16LE(method, 10);
    ch.writeUInt32LE(crc, 16); ch.writeUInt32LE(body.length, 20); ch.writeUInt32LE(size, 24); ch.writeUInt16LE(name.length, 28);
    ch.writeUInt32LE(offset, 42);
    locals.push(lh, name, body);
    centrals.push(ch, name);
    offset += 30 + name.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0); eocd.writeUInt16LE(entries.length, 8); eocd.writeUInt16LE(entries.length, 10);
  eocd.writeUInt32LE(cd.length, 12); eocd.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, eocd]);
}

// ---------------------------------------------------------------- deep nesting
/** A placeholder for a value nested `depth` arrays deep, expanded in the JSON text by undeep() (building the
 *  value itself and stringifying it would overflow the generator's own stack). */
export const DEEP = fc.constantFrom(600, 5000, 100000).map((d) => `__DEEP_${d}__`);
export const undeep = (text) => text.replace(/"__DEEP_(\d+)__"/g, (_, d) => "[".repeat(Number(d)) + "]".repeat(Number(d)));

// ---------------------------------------------------------------- safetensors
const DTYPES = ["F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U64", "U32", "U16", "U8", "BOOL", "F8_E5M2", "F8_E4M3"];
const bigDim = fc.oneof(fc.integer({ min: 0, max: 8 }), fc.constantFrom(1e9, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 60, -1, 1.5, 1e308));
const safetensorsEntry = fc.record({
  dtype: fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...DTYPES) }, fc.string(), fc.constantFrom("__proto__", "constructor", 7, null)),
  shape: fc.oneof({ weight: 5, arbitrary: fc.array(bigDim, { maxLength: 5 }) }, fc.jsonValue(), DEEP),
  data_offsets: fc.oneof({ weight: 5, arbitrary: fc.tuple(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 300 })) },
    fc.tuple(bigDim, bigDim), fc.jsonValue()),
}, { requiredKeys: [] });
export const safetensorsArb = fc.record({
  entries: fc.dictionary(fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom("__proto__", "constructor", "__metadata__")), safetensorsEntry, { maxKeys: 6 }),
  metadata: fc.option(fc.oneof(fc.dictionary(fc.string(), fc.string()), fc.jsonValue()), { nil: undefined }),
  dataLen: fc.integer({ min: 0, max: 400 }),
  lenDelta: fc.oneof({ weight: 8, arbitrary: fc.constant(0n) }, fc.constantFrom(-1n, 1n, 1n << 32n, 1n << 63n, 99_999_999n)),
  pad: fc.integer({ min: 0, max: 7 }),
}).map(({ entries, metadata, dataLen, lenDelta, pad }) => {
  const obj = {};
  if (metadata !== undefined) Object.defineProperty(obj, "__metadata__", { value: metadata, enumerable: true, configurable: true, writable: true });
  for (const [k, v] of Object.entries(entries)) Object.defineProperty(obj, k, { value: v, enumerable: true, configurable: true, writable: true });
  const header = Buffer.from(undeep(JSON.stringify(obj)) + " ".repeat(pad));
  const len = Buffer.alloc(8);
  let n = BigInt(header.length) + lenDelta;
  if (n < 0n) n = 0n;
  len.writeBigUInt64LE(n & ((1n << 64n) - 1n));
  return { "model.safetensors": Buffer.concat([len, header, Buffer.alloc(dataLen, 0x3c)]) };
});

// ---------------------------------------------------------------- pickle opcode streams
const u32 = (v) => { const b = Buffer.alloc(4); b.writeUInt32LE(v >>> 0); return b; };
const i32 = (v) => { const b = Buffer.alloc(4); b.writeInt32LE(v | 0); return b; };
const u64 = (v) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); return b; };
const str = (s) => Buffer.concat([Buffer.from([0x58]), u32(Buffer.byteLength(s)), Buffer.from(s)]);
const glob = (m, n) => Buffer.from(`c${m}\n${n}\n`);
const opArb = fc.oneof(
  fc.constantFrom(0x28, 0x2e, 0x30, 0x31, 0x32, 0x4e, 0x88, 0x89, 0x29, 0x85, 0x86, 0x87, 0x74, 0x5d, 0x6c, 0x61, 0x65,
    0x7d, 0x64, 0x73, 0x75, 0x94, 0x52, 0x62, 0x51, 0x69, 0x6f, 0x81, 0x82, 0x93).map((o) => Buffer.from([o])),
  fc.integer().map((v) => Buffer.concat([Buffer.from([0x4a]), i32(v)])),
  fc.integer({ min: 0, max: 255 }).map((v) => Buffer.from([0x4b, v])),
  fc.integer({ min: 0, max: 255 }).map((v) => Buffer.from([0x71, v])),
  fc.integer({ min: 0, max: 255 }).map((v) => Buffer.from([0x68, v])),
  fc.constantFrom(0, 1, 0xffffffff, 0x7fffffff).map((v) => Buffer.concat([Buffer.from([0x6a]), u32(v)])),
  fc.uint8Array({ maxLength: 12 }).map((b) => Buffer.concat([Buffer.from([0x8a, b.length]), b])),
  fc.constantFrom(8, 9, 100, 100000).map((n) => Buffer.concat([Buffer.from([0x8b]), i32(n), Buffer.alloc(n, 0x7f)])),
  fc.constantFrom(-1, 0x7fffffff, 2_000_000).map((n) => Buffer.concat([Buffer.from([0x8b]), i32(n)])),
  fc.constantFrom(0, 7, 2 ** 40).map((n) => Buffer.concat([Buffer.from([0x8e]), u64(n)])),
  fc.constantFrom(0, 7, 2 ** 40).map((n) => Buffer.concat([Buffer.from([0x95]), u64(n)])),
  fc.string({ maxLength: 8 }).map(str),
  fc.constantFrom("storage", "cpu", "0", "1", "weight", "__proto__", "../x").map(str),
  fc.constantFrom(["torch._utils", "_rebuild_tensor_v2"], ["torch", "FloatStorage"], ["torch", "LongStorage"],
    ["collections", "OrderedDict"], ["torch._utils", "_rebuild_parameter"], ["os", "system"], ["builtins", "eval"]).map(([m, n]) => glob(m, n)),
  // A MARK stack or APPENDS run many items long.
  fc.constantFrom(1000, 200000).map((n) => Buffer.concat([Buffer.from([0x5d, 0x28]), Buffer.alloc(n, 0x4e), Buffer.from([0x65])])),
  fc.constantFrom(1000, 200000).map((n) => Buffer.alloc(n, 0x28)),
  fc.constantFrom(1000, 200000).map((n) => Buffer.concat([Buffer.from([0x7d, 0x28]), Buffer.concat(Array(n).fill(Buffer.from([0x4b, 1, 0x4e]))), Buffer.from([0x75])])),
);
/** A tensor rebuilt from storage '0' with chosen size/stride/offset (the stride-0 / overlap / huge-view cases). */
const tensorPickle = fc.record({
  numel: fc.constantFrom(0, 1, 4, 6, 1e9, 2 ** 40),
  size: fc.array(fc.constantFrom(0, 1, 2, 3, 1000, 1e9, 2 ** 31), { maxLength: 4 }),
  stride: fc.array(fc.constantFrom(0, 1, 2, 3, 2 ** 31), { maxLength: 4 }),
  offset: fc.constantFrom(0, 1, 5, 2 ** 40),
  storage: fc.constantFrom("FloatStorage", "HalfStorage", "LongStorage", "BoolStorage"),
  bytes: fc.constantFrom(0, 4, 8, 16, 24),
}).map(({ numel, size, stride, offset, storage, bytes }) => {
  const int = (v) => (v < 256 ? Buffer.from([0x4b, v]) : v < 2 ** 31 ? Buffer.concat([Buffer.from([0x4a]), i32(v)]) : Buffer.concat([Buffer.from([0x8a, 8]), u64(v)]));
  const tuple = (xs) => Buffer.concat([Buffer.from([0x28]), ...xs.map(int), Buffer.from([0x74])]);
  const pkl = Buffer.concat([
    Buffer.from([0x80, 2, 0x7d]), str("w"),
    glob("torch._utils", "_rebuild_tensor_v2"), Buffer.from([0x28]),
    Buffer.from([0x28]), str("storage"), glob("torch", storage), str("0"), str("cpu"), int(numel), Buffer.from([0x74, 0x51]),
    int(offset), tuple(size), tuple(stride), Buffer.from([0x89]), glob("collections", "OrderedDict"), Buffer.from([0x29, 0x52]),
    Buffer.from([0x74, 0x52, 0x73, 0x2e]),
  ]);
  return { "pytorch_model.bin": makeZip([{ name: "archive/data.pkl", data: pkl }, { name: "archive/data/0", data: Buffer.alloc(bytes, 1) }]) };
});
export const pickleArb = fc.oneof(
  fc.array(opArb, { maxLength: 30 }).map((ops) => {
    const pkl = Buffer.concat([Buffer.from([0x80, 2]), ...ops, Buffer.from([0x2e])]);
    return { "pytorch_model.bin": makeZip([{ name: "archive/data.pkl", data: pkl }, { name: "archive/data/0", data: Buffer.alloc(16) }]) };
  }),
  tensorPickle,
);

// ---------------------------------------------------------------- zip archives
export const zipArb = fc.record({
  method: fc.constantFrom(0, 8, 8, 12),
  size: fc.constantFrom(0, 1000, 100_000, 3_000_000),
  claim: fc.constantFrom(undefined, 0, 1, 0xffffffff, 100_000_000),
  dupName: fc.boolean(),
}).map(({ method, size, claim, dupName }) => {
  const entries = [{ name: "archive/data.pkl", data: Buffer.alloc(size), method, claimSize: claim }];
  if (dupName) entries.push({ name: "archive/data.pkl", data: Buffer.from([0x80, 2, 0x7d, 0x2e]) });
  return { "pytorch_model.bin": makeZip(entries) };
});

// ---------------------------------------------------------------- config.json
const extreme = fc.oneof({ weight: 40, arbitrary: fc.oneof(fc.constantFrom(0, -1, 1, 1e30, 1e9, 2 ** 31, 2 ** 53, 1.5, null, "12", true, [], {}), fc.integer(), fc.double()) }, { weight: 1, arbitrary: DEEP });
const labelKey = fc.oneof(fc.constantFrom("0", "1", "2", "__proto__", "constructor", "toString", "-1", "1e3", "01"), fc.string({ maxLength: 4 }));
const CONFIG_KEYS = ["vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "n_embd", "n_head",
  "n_layer", "n_inner", "dim", "n_heads", "max_position_embeddings", "pad_token_id", "type_vocab_size", "layer_norm_eps", "initializer_range"];
/** A valid config (model_type alone: HF's defaults fill the rest) with up to 3 keys given hostile values. */
export const configArb = fc.record({
  model_type: fc.oneof({ weight: 20, arbitrary: fc.constantFrom("bert", "distilbert", "roberta", "gpt2") }, fc.constantFrom("t5", "__proto__", 3)),
  over: fc.dictionary(fc.constantFrom(...CONFIG_KEYS), extreme, { maxKeys: 2 }),
  labels: fc.record({
    num_labels: fc.oneof(extreme, fc.constantFrom(3, 1e5, 1e6, 1e8, 2 ** 40)),
    id2label: fc.oneof(fc.dictionary(labelKey, fc.oneof(fc.string({ maxLength: 4 }), fc.constantFrom("__proto__", "constructor")), { maxKeys: 5 }), extreme),
    label2id: fc.oneof(fc.dictionary(fc.oneof(fc.string({ maxLength: 4 }), fc.constantFrom("__proto__", "constructor")), extreme, { maxKeys: 5 }), extreme),
    hidden_act: fc.constantFrom("gelu", "relu", "__proto__", "toString", 5),
    architectures: fc.oneof(fc.array(fc.string()), extreme),
    problem_type: fc.oneof(fc.constantFrom("regression", "constructor"), extreme),
  }, { requiredKeys: [] }),
}).map(({ model_type, over, labels }) => ({ "config.json": Buffer.from(undeep(JSON.stringify({ model_type, ...over, ...labels }))) }));

// ---------------------------------------------------------------- tokenizer folders
const tokName = fc.oneof(fc.constantFrom("[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]", "<s>", "</s>", "[NOPE]", "__proto__", "constructor", "toString", ""), fc.string({ maxLength: 6 }));
/** A tiny WordPiece tokenizer.json with a generated post-processor / added tokens / config. */
export const tokenizerArb = fc.record({
  template: fc.array(fc.oneof(tokName.map((id) => ({ SpecialToken: { id, type_id: 0 } })), fc.constantFrom({ Sequence: { id: "A", type_id: 0 } }, { Sequence: { id: "B", type_id: 1 } })), { maxLength: 5 }),
  specialTokens: fc.dictionary(tokName, fc.record({ id: tokName, ids: fc.array(fc.oneof(fc.integer({ min: -2, max: 12 }), fc.constantFrom(2 ** 32, 1e9)), { maxLength: 3 }), tokens: fc.array(tokName, { maxLength: 3 }) }), { maxKeys: 3 }),
  added: fc.array(fc.record({ id: fc.oneof(fc.integer({ min: 0, max: 20 }), fc.constantFrom(-1, 2 ** 32, 1e9)), content: tokName, special: fc.boolean() }), { maxLength: 6 }),
  config: fc.record({
    model_max_length: fc.oneof(fc.constantFrom(1e30, 1e20, 1e12, 2 ** 53, 1e9, 0, -5, 512, 1.5, "x"), fc.double(), DEEP),
    cls_token: tokName, sep_token: tokName, pad_token: tokName, unk_token: tokName, mask_token: tokName,
    additional_special_tokens: fc.array(tokName, { maxLength: 3 }),
  }, { requiredKeys: [] }),
  postType: fc.constantFrom("TemplateProcessing", "BertProcessing", "RobertaProcessing", null),
}).map(({ template, specialTokens, added, config, postType }) => {
  const vocab = { "[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4, hello: 5, world: 6, "##s": 7, "<s>": 8, "</s>": 9 };
  const post = postType === "TemplateProcessing" ? { type: postType, single: template, pair: template, special_tokens: specialTokens }
    : postType === "BertProcessing" ? { type: postType, sep: [config.sep_token ?? "[SEP]", 3], cls: [config.cls_token ?? "[CLS]", 2] }
    : postType === "RobertaProcessing" ? { type: postType, sep: [config.sep_token ?? "</s>", 9], cls: [config.cls_token ?? "<s>", 8], trim_offsets: true, add_prefix_space: false }
    : null;
  const tj = {
    version: "1.0", truncation: null, padding: null,
    added_tokens: added.map((a) => ({ single_word: false, lstrip: false, rstrip: false, normalized: false, ...a })),
    normalizer: { type: "BertNormalizer", clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: "BertPreTokenizer" }, post_processor: post, decoder: { type: "WordPiece", prefix: "##", cleanup: true },
    model: { type: "WordPiece", unk_token: "[UNK]", continuing_subword_prefix: "##", max_input_chars_per_word: 100, vocab },
  };
  return { "tokenizer.json": Buffer.from(undeep(JSON.stringify(tj))), "tokenizer_config.json": Buffer.from(undeep(JSON.stringify(config))) };
});
