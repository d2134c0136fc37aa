// Native buffers: freed by free() at once and by the GC otherwise; no growth over repeated calls.
import { native } from "../lib/native";
import { TunekitError } from "../lib/errors";

describe("native memory", () => {
  test("alloc gives zeroed, 64-byte aligned memory that free releases at once", () => {
    const before = native.memoryStats();
    const a = native.alloc(1000);
    expect(a.length).toBe(1000);
    expect(a.every((x) => x === 0)).toBe(true);
    expect(native.memoryStats().bytes - before.bytes).toBe(4000);
    native.free(a);
    expect(native.memoryStats()).toEqual(before);
    expect(a.length).toBe(0); // detached: a later kernel call sees an empty array, not freed memory
    expect(() => native.gemm({ M: 10, N: 10, K: 10, A: a, B: a, C: new Float32Array(100) })).toThrow(
      /gemm: argument 'A' has 0 elements, expected at least 100/,
    );
    native.free(a); // idempotent
  });

  test("free refuses arrays it did not allocate", () => {
    expect(() => native.free(new Float32Array(4))).toThrow(TunekitError);
    expect(() => native.free(new Float32Array(4))).toThrow(/not allocated by tunekit's alloc/);
  });

  test("buffers in use by async work cannot be freed until it resolves", async () => {
    const A = native.alloc(512 * 512), B = native.alloc(512 * 512), C = native.alloc(512 * 512);
    const p = native.gemmAsync({ M: 512, N: 512, K: 512, A, B, C });
    expect(() => native.free(A)).toThrow(/in use by an asynchronous operation/);
    await p;
    native.free(A); native.free(B); native.free(C);
  });

  test("no growth over repeated alloc/free and kernel calls", () => {
    const start = native.memoryStats();
    const rss0 = process.memoryUsage().rss;
    for (let i = 0; i < 2000; i++) {
      const A = native.alloc(64 * 64), B = native.alloc(64 * 64), C = native.alloc(64 * 64);
      native.gemm({ M: 64, N: 64, K: 64, A, B, C });
      native.free(A); native.free(B); native.free(C);
    }
    expect(native.memoryStats()).toEqual(start);
    // 2000 x 48 KB = 96 MB went through; RSS may wobble but must not keep it. Under AddressSanitizer
    // (scripts/asan.sh) freed blocks sit in its 256 MB quarantine by design, so RSS says nothing there;
    // the counters above still must balance, and leaks are LSan's job (scripts/lsan-check.sh).
    if (!process.env.TUNEKIT_SANITIZER) expect(process.memoryUsage().rss - rss0).toBeLessThan(32 * 1024 * 1024);
  });

  test("the garbage collector releases buffers that were never freed", async () => {
    const gc = (global as { gc?: () => void }).gc;
    const start = native.memoryStats().buffers;
    (() => {
      for (let i = 0; i < 100; i++) native.alloc(1 << 16);
    })();
    expect(native.memoryStats().buffers).toBeGreaterThanOrEqual(start + 100);
    // Without --expose-gc, allocate pressure until V8 collects; either way the count must come back.
    for (let round = 0; round < 50 && native.memoryStats().buffers > start; round++) {
      if (gc) gc();
      else for (let i = 0; i < 200; i++) new Float32Array(1 << 16);
      await new Promise((r) => setImmediate(r));
    }
    expect(native.memoryStats().buffers).toBeLessThanOrEqual(start);
  });
});
