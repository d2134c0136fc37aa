// An allow-list unpickler: a stack machine for the pickle opcodes torch.save emits (protocols 2-5),
// with no way to run code. Globals are looked up only through `hooks.allowGlobal`, calls (REDUCE)
// and BUILD go to the hooks, and every other object-creating opcode (INST, OBJ, NEWOBJ, EXT...) is
// refused. Python values map to: int/float → number, str → string, bytes → Uint8Array, None → null,
// bool → boolean, tuple → PyTuple, list → unknown[], dict → PyDict, global → PyGlobal.
import { CheckpointError } from "../errors";

export class PyTuple {
  constructor(readonly items: unknown[]) {}
}
export type PyKey = string | number | boolean | null;
export class PyDict {
  readonly map = new Map<PyKey, unknown>();
  /** What BUILD set on the object (an OrderedDict's `_metadata`, for instance). */
  state: unknown = undefined;
}
export class PyGlobal {
  constructor(readonly module: string, readonly name: string) {}
  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}

export interface UnpicklerHooks {
  /** Returns an error message to refuse the global, or null to allow it. */
  checkGlobal(module: string, name: string): string | null;
  reduce(fn: PyGlobal, args: PyTuple): unknown;
  build(obj: unknown, state: unknown): void;
  persistentLoad(pid: unknown): unknown;
}

const MAX_PROTOCOL = 5;

// Opcode names, for messages about opcodes that are not allowed.
const NAMES: Record<number, string> = {
  0x28: "MARK", 0x2e: "STOP", 0x30: "POP", 0x31: "POP_MARK", 0x32: "DUP", 0x46: "FLOAT", 0x49: "INT", 0x4a: "BININT",
  0x4b: "BININT1", 0x4c: "LONG", 0x4d: "BININT2", 0x4e: "NONE", 0x50: "PERSID", 0x51: "BINPERSID", 0x52: "REDUCE",
  0x53: "STRING", 0x54: "BINSTRING", 0x55: "SHORT_BINSTRING", 0x56: "UNICODE", 0x58: "BINUNICODE", 0x61: "APPEND",
  0x62: "BUILD", 0x63: "GLOBAL", 0x64: "DICT", 0x7d: "EMPTY_DICT", 0x65: "APPENDS", 0x67: "GET", 0x68: "BINGET",
  0x69: "INST", 0x6a: "LONG_BINGET", 0x6c: "LIST", 0x5d: "EMPTY_LIST", 0x6f: "OBJ", 0x70: "PUT", 0x71: "BINPUT",
  0x72: "LONG_BINPUT", 0x73: "SETITEM", 0x74: "TUPLE", 0x29: "EMPTY_TUPLE", 0x75: "SETITEMS", 0x47: "BINFLOAT",
  0x80: "PROTO", 0x81: "NEWOBJ", 0x82: "EXT1", 0x83: "EXT2", 0x84: "EXT4", 0x85: "TUPLE1", 0x86: "TUPLE2",
  0x87: "TUPLE3", 0x88: "NEWTRUE", 0x89: "NEWFALSE", 0x8a: "LONG1", 0x8b: "LONG4", 0x42: "BINBYTES",
  0x43: "SHORT_BINBYTES", 0x8c: "SHORT_BINUNICODE", 0x8d: "BINUNICODE8", 0x8e: "BINBYTES8", 0x8f: "EMPTY_SET",
  0x90: "ADDITEMS", 0x91: "FROZENSET", 0x92: "NEWOBJ_EX", 0x93: "STACK_GLOBAL", 0x94: "MEMOIZE", 0x95: "FRAME",
  0x96: "BYTEARRAY8", 0x97: "NEXT_BUFFER", 0x98: "READONLY_BUFFER",
};

/** Runs the pickle in `data` and returns its top-level object. `source` prefixes every error. */
export function unpickle(data: Uint8Array, hooks: UnpicklerHooks, source: string): unknown {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const utf8 = new TextDecoder("utf-8", { fatal: true });
  let pos = 0;
  let opAt = 0;
  let stack: unknown[] = [];
  const marks: unknown[][] = [];
  const memo = new Map<number, unknown>();
  const fail = (msg: string) => new CheckpointError(`${source}: ${msg} (pickle byte ${opAt})`);

  const need = (n: number) => {
    if (pos + n > data.length) throw fail("truncated pickle");
  };
  const u8 = () => { need(1); return data[pos++]; };
  const u16 = () => { need(2); const v = dv.getUint16(pos, true); pos += 2; return v; };
  const u32 = () => { need(4); const v = dv.getUint32(pos, true); pos += 4; return v; };
  const i32 = () => { need(4); const v = dv.getInt32(pos, true); pos += 4; return v; };
  const u64 = () => {
    need(8);
    const v = dv.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(data.length)) throw fail("truncated pickle");
    return Number(v);
  };
  const bytes = (n: number) => { need(n); const b = data.subarray(pos, pos + n); pos += n; return b; };
  const str = (n: number) => {
    try {
      return utf8.decode(bytes(n));
    } catch {
      throw fail("string is not valid UTF-8");
    }
  };
  const line = () => {
    const end = data.indexOf(0x0a, pos);
    if (end < 0) throw fail("truncated pickle");
    const s = Buffer.from(data.buffer, data.byteOffset + pos, end - pos).toString("latin1");
    pos = end + 1;
    return s;
  };
  const pop = () => {
    if (stack.length === 0) throw fail("stack underflow");
    return stack.pop();
  };
  const top = () => {
    if (stack.length === 0) throw fail("stack underflow");
    return stack[stack.length - 1];
  };
  const popMark = () => {
    const items = stack;
    const prev = marks.pop();
    if (!prev) throw fail("no MARK on the stack");
    stack = prev;
    return items;
  };
  const long = (b: Uint8Array) => {
    // Bytes past the 8th may only repeat the sign (0x00 / 0xff): anything else is too large anyway, and
    // building a BigInt byte by byte from a LONG4 of millions of bytes takes quadratic time.
    if (b.length > 8) {
      const fill = b[b.length - 1] & 0x80 ? 0xff : 0x00;
      for (let i = 8; i < b.length; i++) if (b[i] !== fill) throw fail(`integer of ${b.length} bytes is too large`);
      if ((b[7] & 0x80) !== (fill & 0x80)) throw fail(`integer of ${b.length} bytes is too large`);
      b = b.subarray(0, 8);
    }
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    if (b.length && b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) throw fail(`integer ${v} is too large`);
    return Number(v);
  };
  const global = (module: string, name: string) => {
    const refusal = hooks.checkGlobal(module, name);
    if (refusal !== null) throw fail(refusal);
    return new PyGlobal(module, name);
  };
  const asKey = (k: unknown): PyKey => {
    if (typeof k === "string" || typeof k === "number" || typeof k === "boolean" || k === null) return k;
    throw fail("dict key must be a str, int, bool or None");
  };
  const setItems = (d: unknown, kv: unknown[]) => {
    if (!(d instanceof PyDict)) throw fail("SETITEM(S) on an object that is not a dict");
    if (kv.length % 2) throw fail("SETITEMS with an odd number of items");
    for (let i = 0; i < kv.length; i += 2) d.map.set(asKey(kv[i]), kv[i + 1]);
  };
  const appendItems = (l: unknown, items: unknown[]) => {
    if (!Array.isArray(l)) throw fail("APPEND(S) on an object that is not a list");
    for (const x of items) l.push(x); // not push(...items): a long APPENDS would overflow the call stack
  };
  const memoGet = (i: number) => {
    if (!memo.has(i)) throw fail(`memo key ${i} is not defined`);
    return memo.get(i);
  };

  for (;;) {
    opAt = pos;
    const op = u8();
    switch (op) {
      case 0x80: { // PROTO
        const p = u8();
        if (p > MAX_PROTOCOL) throw fail(`unsupported pickle protocol ${p}`);
        break;
      }
      case 0x95: u64(); break; // FRAME: only a read-ahead hint
      case 0x2e: { // STOP
        if (stack.length !== 1 || marks.length) throw fail("malformed pickle: STOP with a stack that does not hold exactly one object");
        return stack[0];
      }
      case 0x28: marks.push(stack); stack = []; break; // MARK
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4a: stack.push(i32()); break; // BININT
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x8a: stack.push(long(bytes(u8()))); break; // LONG1
      case 0x8b: { // LONG4
        const n = i32();
        if (n < 0) throw fail("negative LONG4 length");
        stack.push(long(bytes(n)));
        break;
      }
      case 0x47: { // BINFLOAT (big-endian double)
        need(8);
        stack.push(dv.getFloat64(pos, false));
        pos += 8;
        break;
      }
      case 0x58: stack.push(str(u32())); break; // BINUNICODE
      case 0x8c: stack.push(str(u8())); break; // SHORT_BINUNICODE
      case 0x8d: stack.push(str(u64())); break; // BINUNICODE8
      case 0x54: { // BINSTRING (Python 2 str)
        const n = i32();
        if (n < 0) throw fail("negative BINSTRING length");
        stack.push(Buffer.from(bytes(n)).toString("latin1"));
        break;
      }
      case 0x55: stack.push(Buffer.from(bytes(u8())).toString("latin1")); break; // SHORT_BINSTRING
      case 0x42: stack.push(bytes(u32()).slice()); break; // BINBYTES
      case 0x43: stack.push(bytes(u8()).slice()); break; // SHORT_BINBYTES
      case 0x8e: stack.push(bytes(u64()).slice()); break; // BINBYTES8
      case 0x29: stack.push(new PyTuple([])); break; // EMPTY_TUPLE
      case 0x85: stack.push(new PyTuple([pop()])); break; // TUPLE1
      case 0x86: { const b = pop(), a = pop(); stack.push(new PyTuple([a, b])); break; } // TUPLE2
      case 0x87: { const c = pop(), b = pop(), a = pop(); stack.push(new PyTuple([a, b, c])); break; } // TUPLE3
      case 0x74: { const items = popMark(); stack.push(new PyTuple(items)); break; } // TUPLE
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x6c: stack.push(popMark()); break; // LIST
      case 0x61: { const v = pop(); appendItems(top(), [v]); break; } // APPEND
      case 0x65: { const items = popMark(); appendItems(top(), items); break; } // APPENDS
      case 0x7d: stack.push(new PyDict()); break; // EMPTY_DICT
      case 0x64: { const items = popMark(); const d = new PyDict(); setItems(d, items); stack.push(d); break; } // DICT
      case 0x73: { const v = pop(), k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const items = popMark(); setItems(top(), items); break; } // SETITEMS
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: stack.push(memoGet(u8())); break; // BINGET
      case 0x6a: stack.push(memoGet(u32())); break; // LONG_BINGET
      case 0x63: { const module = line(); const name = line(); stack.push(global(module, name)); break; } // GLOBAL
      case 0x93: { // STACK_GLOBAL
        const name = pop(), module = pop();
        if (typeof module !== "string" || typeof name !== "string") throw fail("STACK_GLOBAL needs two strings");
        stack.push(global(module, name));
        break;
      }
      case 0x52: { // REDUCE
        const args = pop(), fn = pop();
        if (!(fn instanceof PyGlobal)) throw fail("REDUCE on an object that is not an allowed global");
        if (!(args instanceof PyTuple)) throw fail(`REDUCE of '${fn.qualified}' with arguments that are not a tuple`);
        stack.push(hooks.reduce(fn, args));
        break;
      }
      case 0x62: { const state = pop(); hooks.build(top(), state); break; } // BUILD
      case 0x51: stack.push(hooks.persistentLoad(pop())); break; // BINPERSID
      default: {
        const name = NAMES[op] ?? "unknown";
        throw fail(`pickle opcode ${name} (0x${op.toString(16).padStart(2, "0")}) is not allowed`);
      }
    }
  }
}
