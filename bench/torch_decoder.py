"""PyTorch side of `npm run bench:decoder`: a plain-PyTorch Qwen2ForCausalLM (the math of HF's modeling_qwen2.py,
as test/fixtures/golden_decoders.py's reference has it) with a key/value cache, on the weights of a Hugging
Face folder (config.json + model.safetensors). One case per process (its peak RSS is its own); prints one
JSON line. Run by bench/decoder.mjs with Debian's python3-torch (/usr/bin/python3); never needed by the tests.

case (JSON in argv[1]): {"mode": ..., "threads", "dir", ...}
  write:  random weights (seeded) for cfg["config"] written to cfg["dir"] as HF does (BF16, like the real
          Qwen2.5-0.5B checkpoint; tied embeddings: no lm_head.weight in the file)
  gemm:   PyTorch's own GEMM rate (below 100 GFLOP/s it runs the reference BLAS)
  decode: greedy generation of "new" tokens after a prompt of batch × prompt ids (no padding), with a cache
          preallocated for prompt + new positions (HF's StaticCache; its DynamicCache concatenates every
          step, which is slower); seconds of the whole call for 1 and for `new` new tokens, the tokens
  lora:   LoRA r=16, alpha=32 on q/k/v/o/gate/up/down (PEFT's LoraLinear, no dropout), the base frozen in
          float32; a step is forward + causal-LM loss + backward + clip_grad_norm_(1.0) + AdamW
Attention is HF's eager path (torch 1.13 has no scaled_dot_product_attention): repeat_kv, QKᵀ·D^-½ + mask,
softmax in float32, ·V."""
import json
import math
import os
import resource
import struct
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_common import timed  # noqa: E402


def median(fn, iters):
    """Median seconds of `iters` runs of fn (the caller has run it once already: the warm-up)."""
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]

cfg = json.loads(sys.argv[1])
torch.set_num_threads(cfg["threads"])


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def repeat_kv(x, n):
    b, h, s, d = x.shape
    return x if n == 1 else x[:, :, None].expand(b, h, n, s, d).reshape(b, h * n, s, d)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        E, self.H, self.Hkv = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"]
        self.D = E // self.H
        self.q_proj = nn.Linear(E, self.H * self.D, bias=True)
        self.k_proj = nn.Linear(E, self.Hkv * self.D, bias=True)
        self.v_proj = nn.Linear(E, self.Hkv * self.D, bias=True)
        self.o_proj = nn.Linear(self.H * self.D, E, bias=False)

    def forward(self, h, cos, sin, mask, cache, start):
        B, T, _ = h.shape
        q = self.q_proj(h).view(B, T, self.H, self.D).transpose(1, 2)
        k = self.k_proj(h).view(B, T, self.Hkv, self.D).transpose(1, 2)
        v = self.v_proj(h).view(B, T, self.Hkv, self.D).transpose(1, 2)
        c, s = cos[:, None], sin[:, None]
        q, k = q * c + rotate_half(q) * s, k * c + rotate_half(k) * s
        if cache is not None:  # write this step's keys/values at their positions, attend over all so far
            kc, vc = cache
            kc[:, :, start:start + T] = k
            vc[:, :, start:start + T] = v
            k, v = kc[:, :, :start + T], vc[:, :, :start + T]
        n = self.H // self.Hkv
        k, v = repeat_kv(k, n), repeat_kv(v, n)
        w = torch.matmul(q, k.transpose(2, 3)) * self.D ** -0.5 + mask
        w = F.softmax(w, dim=-1, dtype=torch.float32).to(q.dtype)
        return self.o_proj(torch.matmul(w, v).transpose(1, 2).reshape(B, T, -1))


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        E, I = c["hidden_size"], c["intermediate_size"]
        self.gate_proj = nn.Linear(E, I, bias=False)
        self.up_proj = nn.Linear(E, I, bias=False)
        self.down_proj = nn.Linear(I, E, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.self_attn = Attention(c)
        self.mlp = MLP(c)
        self.input_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.post_attention_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])

    def forward(self, h, cos, sin, mask, cache, start):
        h = h + self.self_attn(self.input_layernorm(h), cos, sin, mask, cache, start)
        return h + self.mlp(self.post_attention_layernorm(h))


class Body(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList([Layer(c) for _ in range(c["num_hidden_layers"])])
        self.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        D = c["hidden_size"] // c["num_attention_heads"]
        inv = 1.0 / (c["rope_theta"] ** (torch.arange(0, D, 2, dtype=torch.int64).float() / D))
        self.register_buffer("inv_freq", inv, persistent=False)


class Qwen2ForCausalLM(nn.Module):
    """Tied embeddings: the LM head is embed_tokens.weight."""

    def __init__(self, c):
        super().__init__()
        self.c = c
        self.model = Body(c)

    def forward(self, ids, cache=None, start=0, last_only=False):
        B, T = ids.shape
        m = self.model
        pos = torch.arange(start, start + T, dtype=torch.float32)
        freqs = pos[:, None] * m.inv_freq[None]
        emb = torch.cat((freqs, freqs), -1)[None]
        cos, sin = emb.cos(), emb.sin()
        S = start + T  # causal over the cache: query i (at start + i) sees keys 0 .. start + i
        allowed = torch.arange(S)[None, :] <= (torch.arange(T)[:, None] + start)
        mask = torch.zeros(T, S).masked_fill(~allowed, torch.finfo(torch.float32).min)
        h = m.embed_tokens(ids)
        for i, layer in enumerate(m.layers):
            h = layer(h, cos, sin, mask, cache[i] if cache is not None else None, start)
        h = m.norm(h)
        if last_only:
            h = h[:, -1:]
        return F.linear(h, m.embed_tokens.weight)


# ---------------------------------------------------------------- checkpoint files (no safetensors package here)
def write_safetensors(path, tensors):
    header, chunks, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        b = tensors[name].detach().contiguous().to(torch.bfloat16).view(torch.int16).numpy().tobytes()
        header[name] = {"dtype": "BF16", "shape": list(tensors[name].shape), "data_offsets": [off, off + len(b)]}
        chunks.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in chunks:
            f.write(b)


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        a, b = e["data_offsets"]
        assert e["dtype"] == "BF16", e["dtype"]
        out[name] = torch.frombuffer(bytearray(data[a:b]), dtype=torch.int16).view(torch.bfloat16).float().view(e["shape"])
    return out


def load(d):
    with open(os.path.join(d, "config.json")) as f:
        c = json.load(f)
    m = Qwen2ForCausalLM(c)
    missing, unexpected = m.load_state_dict(read_safetensors(os.path.join(d, "model.safetensors")), strict=False)
    assert not missing and not unexpected, (missing, unexpected)
    return m


def write(d, c):
    """Random weights with HF's init (normal(0, initializer_range), zero biases, unit norms), then a small
    random bias so that the q/k/v biases are exercised."""
    torch.manual_seed(0)
    m = Qwen2ForCausalLM(c)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.endswith("norm.weight"):
                p.fill_(1.0)
            elif name.endswith(".bias"):
                p.copy_(0.02 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(c["initializer_range"] * torch.randn(p.shape, generator=g))
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(c, f, indent=2)
    write_safetensors(os.path.join(d, "model.safetensors"), m.state_dict())


# ---------------------------------------------------------------- the cases
def prompt_ids(B, P, V):
    """bench/decoder.mjs's promptIds: token i of the batch is 1 + (i·7919 mod (V−1))."""
    return torch.tensor([1 + (i * 7919) % (V - 1) for i in range(B * P)]).view(B, P)


def greedy(m, ids, new):
    """The new tokens [B][new], and the seconds to the first new token (prefill + one pick) and to the last."""
    c = m.c
    t0 = time.perf_counter()
    B, P = ids.shape
    Hkv, D = c["num_key_value_heads"], c["hidden_size"] // c["num_attention_heads"]
    cache = [(torch.zeros(B, Hkv, P + new, D), torch.zeros(B, Hkv, P + new, D)) for _ in range(c["num_hidden_layers"])]
    out = []
    with torch.inference_mode():
        logits = m(ids, cache, 0, last_only=True)
        start = P
        for step in range(new):
            out.append(logits[:, -1].argmax(-1))
            if step == 0:
                first = time.perf_counter() - t0
            if step == new - 1:
                break
            logits = m(out[-1][:, None], cache, start)
            start += 1
    return torch.stack(out, 1).tolist(), first, time.perf_counter() - t0


class LoraLinear(nn.Module):
    """PEFT's lora.Linear without dropout: base(x) + (alpha/r) · B(A(x)), base frozen, B = 0 at the start."""

    def __init__(self, base, r, alpha):
        super().__init__()
        self.base = base
        self.lora_A = nn.Linear(base.in_features, r, bias=False)
        self.lora_B = nn.Linear(r, base.out_features, bias=False)
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)
        self.scale = alpha / r

    def forward(self, x):
        return self.base(x) + self.lora_B(self.lora_A(x)) * self.scale


def main():
    out = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    mode = cfg["mode"]
    if mode == "write":
        write(cfg["dir"], cfg["config"])
    elif mode == "gemm":
        M, K, N = cfg["shape"]
        a, b, c = torch.randn(M, K), torch.randn(K, N), torch.empty(M, N)
        s = timed(lambda: torch.matmul(a, b, out=c), cfg["time"], cfg["iters"], best=True)
        out.update(seconds=s, gflops=2 * M * N * K / s / 1e9)
    elif mode == "decode":
        m = load(cfg["dir"]).eval()
        ids = prompt_ids(cfg["batch"], cfg["prompt"], m.c["vocab_size"])
        greedy(m, ids, 2)  # warm-up: prefill and one decode step
        runs = [greedy(m, ids, cfg["new"]) for _ in range(cfg["iters"])]
        out["tokens"] = runs[0][0]
        out["secondsFirst"] = sorted(r[1] for r in runs)[len(runs) // 2]
        out["secondsDecode"] = sorted(r[2] - r[1] for r in runs)[len(runs) // 2]
    elif mode == "lora":
        m = load(cfg["dir"])
        for p in m.parameters():
            p.requires_grad_(False)
        r = cfg["r"]
        for layer in m.model.layers:
            for mod, names in ((layer.self_attn, ("q_proj", "k_proj", "v_proj", "o_proj")), (layer.mlp, ("gate_proj", "up_proj", "down_proj"))):
                for n in names:
                    setattr(mod, n, LoraLinear(getattr(mod, n), r, 2 * r))
        params = [p for p in m.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)
        m.train()
        B, T = cfg["batch"], cfg["seq"]
        ids = prompt_ids(B, T, m.c["vocab_size"])

        def step():
            logits = m(ids)
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            return loss.item()

        out["firstLoss"] = step()  # also the warm-up
        out["seconds"] = median(step, cfg["iters"])
        out["trainable"] = sum(p.numel() for p in params)
    else:
        raise SystemExit(f"unknown mode {mode}")
    out["peakRssMB"] = rss_mb()
    print(json.dumps(out))


main()
