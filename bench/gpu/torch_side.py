"""PyTorch's side of the GPU session (bench/gpu/session.sh): the shapes of bench/gpu/tunekit.mjs, timed
on the same GPU in the same session — cuBLAS GEMM, SDPA attention forward + backward, a BERT-base
fine-tuning step (HF transformers, eager and torch.compile) and a GPT-2 124M training step.
    python3 bench/gpu/torch_side.py OUT.json [--quick]
Each part is caught on its own, as on tunekit's side. fp32 runs with TF32 off (PyTorch's default for
matmuls); bf16 is autocast over fp32 master weights, as tunekit's bf16 option."""
import json
import sys
import time
import traceback

import torch
import torch.nn.functional as F

out_path = sys.argv[1] if len(sys.argv) > 1 else "gpu-torch.json"
quick = "--quick" in sys.argv
res = {"quick": quick, "parts": {}, "torch": torch.__version__}
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
dev = "cuda"


def save():
    with open(out_path, "w") as f:
        json.dump(res, f, indent=1)


def part(name, fn):
    t0 = time.time()
    try:
        r = fn()
    except Exception as e:  # one failing part must not hide the others
        r = {"error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()[-2000:]}
    r["seconds"] = time.time() - t0
    res["parts"][name] = r
    print(name, json.dumps(r)[:400], flush=True)
    save()


def time_cuda(fn, min_seconds=0.5, warmup=2):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        if n >= 5 and n % 5 == 0:
            torch.cuda.synchronize()
            if time.perf_counter() - t0 >= min_seconds:
                break
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / n


res["device"] = torch.cuda.get_device_name(0)
small = 0.05 if quick else 0.5

GEMMS = [("tiny NT", 256, 192, 64, False, True)] if quick else [
    ("BERT qkv (4096×2304×768, NT)", 4096, 2304, 768, False, True),
    ("BERT ffn up (4096×3072×768, NT)", 4096, 3072, 768, False, True),
    ("BERT ffn down (4096×768×3072, NT)", 4096, 768, 3072, False, True),
    ("BERT dW ffn up (3072×768×4096, TN)", 3072, 768, 4096, True, False),
    ("GPT-2 fc (16384×3072×768, NT)", 16384, 3072, 768, False, True),
    ("GPT-2 lm head (16384×50257×768, NT)", 16384, 50257, 768, False, True),
    ("square 4096³ NN", 4096, 4096, 4096, False, False),
]


def gemm():
    rows = []
    for name, M, N, K, ta, tb in GEMMS:
        for prec, dt in (("fp32", torch.float32), ("bf16", torch.bfloat16), ("fp16", torch.float16)):
            a = torch.randn(K, M, device=dev, dtype=dt).t() if ta else torch.randn(M, K, device=dev, dtype=dt)
            b = torch.randn(N, K, device=dev, dtype=dt).t() if tb else torch.randn(K, N, device=dev, dtype=dt)
            c = torch.empty(M, N, device=dev, dtype=dt)
            s = time_cuda(lambda: torch.matmul(a, b, out=c), small)
            rows.append({"shape": name, "precision": prec, "ms": s * 1e3, "tflops": 2 * M * N * K / s / 1e12})
    return {"rows": rows}


ATTN = [("tiny", 2, 2, 32, 16, True)] if quick else [("BERT B32 H12 T128 D64", 32, 12, 128, 64, False), ("GPT-2 B16 H12 T1024 D64 causal", 16, 12, 1024, 64, True)]


def attention():
    rows = []
    for name, B, H, T, D, causal in ATTN:
        for prec, dt in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
            q, k, v = (torch.randn(B, H, T, D, device=dev, dtype=dt, requires_grad=True) for _ in range(3))
            do = torch.randn(B, H, T, D, device=dev, dtype=dt)
            fwd = time_cuda(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal), small)

            def fb():
                o = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
                torch.autograd.grad(o, (q, k, v), do)
            both = time_cuda(fb, small)
            f = 4 * B * H * T * T * D / (2 if causal else 1)
            rows.append({"shape": name, "precision": prec, "fwdMs": fwd * 1e3, "fwdBwdMs": both * 1e3, "tflopsFwdBwd": 3.5 * f / both / 1e12})
    return {"rows": rows}


def train_step(model, batch, bf16, compiled):
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5, weight_decay=0.01, fused=True)
    fwd = torch.compile(model) if compiled else model

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            loss = fwd(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step


def bert(bf16, compiled):
    from transformers import BertConfig, BertForSequenceClassification
    L, Hd, I, V, B, T = (2, 64, 128, 1000, 4, 16) if quick else (12, 768, 3072, 30522, 32, 128)
    cfg = BertConfig(vocab_size=V, hidden_size=Hd, num_hidden_layers=L, num_attention_heads=max(2, Hd // 64), intermediate_size=I, num_labels=2)
    model = BertForSequenceClassification(cfg).to(dev).train()
    ids = (torch.arange(B * T, device=dev).reshape(B, T) * 7919) % V
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": torch.arange(B, device=dev) % 2}
    s = time_cuda(train_step(model, batch, bf16, compiled), 0.1 if quick else 5, warmup=3 if not compiled else 5)
    return {"B": B, "T": T, "msPerStep": s * 1e3, "samplesPerSecond": B / s, "maxMemoryGB": torch.cuda.max_memory_allocated() / 1e9}


def gpt2(bf16, compiled):
    from transformers import GPT2Config, GPT2LMHeadModel
    L, E, V, P, B, T = (2, 64, 1000, 64, 2, 32) if quick else (12, 768, 50257, 1024, 16, 1024)
    cfg = GPT2Config(n_layer=L, n_embd=E, n_head=max(2, E // 64), vocab_size=V, n_positions=P, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    model = GPT2LMHeadModel(cfg).to(dev).train()
    ids = (torch.arange(B * T, device=dev).reshape(B, T) * 7919) % V
    s = time_cuda(train_step(model, {"input_ids": ids, "labels": ids}, bf16, compiled), 0.1 if quick else 5, warmup=2 if not compiled else 4)
    return {"B": B, "T": T, "msPerStep": s * 1e3, "tokensPerSecond": B * T / s, "maxMemoryGB": torch.cuda.max_memory_allocated() / 1e9}


part("gemm", gemm)
part("attention", attention)
# bf16 eager and torch.compile (the goals), fp32 eager for reference.
RUNS = (("fp32", False), ("bf16", False), ("bf16", True))
for name, fn in (("bert-base step", bert), ("gpt2 step", gpt2)):
    for prec, compiled in RUNS:
        part(f"{name} {prec} {'torch.compile' if compiled else 'eager'}", lambda: fn(prec == "bf16", compiled))
        torch.cuda.reset_peak_memory_stats()
        torch.cuda.empty_cache()
save()
