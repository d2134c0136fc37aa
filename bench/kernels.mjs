// `npm run bench`: GEMM and attention forward+backward, tunekit next to PyTorch (same shapes, same
// machine, same command), with the ratio and the fraction of the cores' measured FMA peak.
// --quick: tiny shapes, checks that everything runs (CI); the numbers mean nothing then.
import { native } from "../dist/index.js";
import { machine, timeIt, runTorch, table, saveResults, fmt, MIN_TORCH_GEMM_GFLOPS } from "./common.mjs";

const quick = process.argv.includes("--quick");
const opts = quick ? { time: 0.05, iters: 2 } : { time: 2, iters: 5 };
const gemmShapes = quick ? [[64, 48, 32]] : [[2048, 768, 768], [2048, 768, 3072], [2048, 3072, 768]];
const attnShapes = quick ? [[2, 2, 16, 8]] : [[16, 12, 128, 64], [16, 12, 512, 64]];

function randn(n) {
  const a = native.alloc(n);
  for (let i = 0; i < n; i++) a[i] = Math.random() * 2 - 1;
  return a;
}

const peak = native.peakGflops(quick ? 0.05 : 0.5);
console.log(`tunekit kernels on ${machine(native).cpu}, ${native.numThreads()} threads, ISA ${native.isa()}; measured FMA peak ${fmt(peak)} GFLOP/s`);

const ours = { gemm: [], attention: [] };
for (const [M, K, N] of gemmShapes) {
  const A = randn(M * K), B = randn(K * N), C = native.alloc(M * N);
  const s = await timeIt(`gemm ${M}x${K}x${N}`, () => native.gemm({ M, N, K, A, B, C }), opts);
  ours.gemm.push({ shape: [M, K, N], seconds: s, flops: 2 * M * N * K });
  [A, B, C].forEach((x) => native.free(x));
}
for (const [B, H, T, D] of attnShapes) {
  const n = B * T * H * D;
  const q = randn(n), k = randn(n), v = randn(n), o = native.alloc(n), lse = native.alloc(B * H * T);
  const dout = randn(n), dq = native.alloc(n), dk = native.alloc(n), dv = native.alloc(n);
  const args = { B, H, Tq: T, Tk: T, D, q, k, v, o, lse };
  const s = await timeIt(`attention ${B}x${H}x${T}x${D}`, () => {
    native.attentionForward(args);
    native.attentionBackward({ ...args, dout, dq, dk, dv });
  }, opts);
  // Counted as eager attention does it: forward QKᵀ and PV (4·B·H·T²·D), backward four products (8·B·H·T²·D).
  ours.attention.push({ shape: [B, H, T, D], seconds: s, flops: 12 * B * H * T * T * D });
  [q, k, v, o, lse, dout, dq, dk, dv].forEach((x) => native.free(x));
}

const torch = runTorch("torch_kernels.py", { threads: native.numThreads(), gemm: gemmShapes, attention: attnShapes, ...opts });
const torchGemmRate = torch ? Math.max(...torch.gemm.map((g, i) => ours.gemm[i].flops / g.seconds / 1e9)) : 0;
const comparable = torch && (quick || torchGemmRate >= MIN_TORCH_GEMM_GFLOPS);
if (torch && !comparable)
  console.log(`PyTorch's GEMM runs at ${fmt(torchGemmRate)} GFLOP/s (< ${MIN_TORCH_GEMM_GFLOPS}): it is on the reference BLAS, so no ratio is printed. Install libopenblas0-pthread.`);

const rows = [];
const report = (kind, list, torchList) =>
  list.forEach((r, i) => {
    const gf = r.flops / r.seconds / 1e9;
    const t = comparable ? torchList[i] : null;
    const tgf = t ? r.flops / t.seconds / 1e9 : null;
    r.gflops = gf; r.torchGflops = tgf; r.ratio = tgf ? t.seconds / r.seconds : null; r.peakFraction = gf / peak;
    rows.push({ op: kind, shape: r.shape.join("x"), "ms": fmt(r.seconds * 1e3, 2), "GFLOP/s": fmt(gf), "torch ms": fmt(t?.seconds * 1e3, 2), "torch GFLOP/s": fmt(tgf), "ratio": r.ratio ? fmt(r.ratio, 2) + "x" : "-", "% peak": fmt(100 * gf / peak) });
  });
report("gemm", ours.gemm, torch?.gemm);
report("attention fwd+bwd", ours.attention, torch?.attention);
table(rows, ["op", "shape", "ms", "GFLOP/s", "torch ms", "torch GFLOP/s", "ratio", "% peak"]);
saveResults(quick ? "kernels-quick" : "kernels", { date: new Date().toISOString(), machine: machine(native), peakGflops: peak, torch: torch ? { version: torch.torch, threads: torch.threads, gemmGflops: torchGemmRate } : null, ...ours });
