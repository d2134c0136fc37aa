"""PyTorch side of `npm run bench:train`: one case (config JSON in argv[1]) of the same plain BERT as
tunekit's (embeddings, post-LN encoder layers, pooler, classifier), random weights, timed here; prints
one JSON line with seconds per step and this process's peak RSS. Run by bench/train.mjs with Debian's
python3-torch (/usr/bin/python3); never needed by the tests.

case: {"mode": "full"|"lora"|"infer"|"gemm", "layers", "hidden", "heads", "inter", "vocab", "batch", "seq",
       "threads", "time", "iters", "dtype": "fp32"|"bf16"}
full: forward + backward + clip_grad_norm_(1.0) + AdamW (every parameter trains);
lora: r=8, alpha=16, dropout 0.1 on query and value, classifier head trainable, the rest frozen (PEFT SEQ_CLS);
infer: eval-mode forward under torch.inference_mode().
Attention is F.scaled_dot_product_attention (HF's default) where torch has it, else HF's eager attention."""
import json
import math
import resource
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_common import timed

cfg = json.loads(sys.argv[1])
torch.set_num_threads(cfg["threads"])
torch.manual_seed(0)


class LoraLinear(nn.Module):
    """PEFT's lora.Linear: base(x) + scale · B(A(dropout(x))), base frozen."""

    def __init__(self, base, r, alpha, p):
        super().__init__()
        self.base = base
        self.A = nn.Linear(base.in_features, r, bias=False)
        self.B = nn.Linear(r, base.out_features, bias=False)
        nn.init.kaiming_uniform_(self.A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.B.weight)
        self.drop = nn.Dropout(p)
        self.scale = alpha / r

    def forward(self, x):
        return self.base(x) + self.B(self.A(self.drop(x))) * self.scale


def attention(q, k, v, mask, p):
    """SDPA where this torch has it (2.0+, HF's default); else HF's eager path: softmax(QKᵀ/√D + mask), dropout, ·V."""
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
    s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    s = s.masked_fill(~mask, torch.finfo(s.dtype).min)
    return torch.matmul(F.dropout(torch.softmax(s, dim=-1), p, training=p > 0), v)


class Layer(nn.Module):
    def __init__(self, H, heads, I, p=0.1):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = nn.Linear(H, H), nn.Linear(H, H), nn.Linear(H, H)
        self.attn_out, self.ln1 = nn.Linear(H, H), nn.LayerNorm(H, eps=1e-12)
        self.inter, self.out, self.ln2 = nn.Linear(H, I), nn.Linear(I, H), nn.LayerNorm(H, eps=1e-12)
        self.p = p
        self.drop = nn.Dropout(p)

    def forward(self, h, mask):
        B, T, H = h.shape
        split = lambda t: t.view(B, T, self.heads, H // self.heads).transpose(1, 2)
        q, k, v = split(self.query(h)), split(self.key(h)), split(self.value(h))
        a = attention(q, k, v, mask, self.p if self.training else 0.0)
        a = a.transpose(1, 2).reshape(B, T, H)
        h = self.ln1(h + self.drop(self.attn_out(a)))
        return self.ln2(h + self.drop(self.out(F.gelu(self.inter(h)))))


class Bert(nn.Module):
    def __init__(self, c, num_labels=2, p=0.1):
        super().__init__()
        H = c["hidden"]
        self.word, self.pos, self.tok_type = nn.Embedding(c["vocab"], H, padding_idx=0), nn.Embedding(512, H), nn.Embedding(2, H)
        self.ln, self.drop = nn.LayerNorm(H, eps=1e-12), nn.Dropout(p)
        self.layers = nn.ModuleList(Layer(H, c["heads"], c["inter"], p) for _ in range(c["layers"]))
        self.pooler, self.classifier = nn.Linear(H, H), nn.Linear(H, num_labels)

    def forward(self, ids, types, mask):
        B, T = ids.shape
        pos = torch.arange(T).expand(B, T)
        h = self.drop(self.ln(self.word(ids) + self.pos(pos) + self.tok_type(types)))
        m = mask[:, None, None, :].to(torch.bool)  # (B, 1, 1, T): True = attend
        for layer in self.layers:
            h = layer(h, m)
        return self.classifier(self.drop(torch.tanh(self.pooler(h[:, 0]))))


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
    out = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    if cfg["mode"] == "gemm":  # PyTorch's own GEMM rate: below 100 GFLOP/s it runs the reference BLAS
        M, K, N = cfg["shape"]
        a, b, c = torch.randn(M, K), torch.randn(K, N), torch.empty(M, N)
        s = timed(lambda: torch.matmul(a, b, out=c), cfg["time"], cfg["iters"], best=True)
        out.update(seconds=s, gflops=2 * M * N * K / s / 1e9)
        print(json.dumps(out))
        return
    B, T = cfg["batch"], cfg["seq"]
    model = Bert(cfg)
    ids = torch.randint(1, cfg["vocab"], (B, T))
    types = torch.zeros(B, T, dtype=torch.long)
    mask = torch.ones(B, T, dtype=torch.long)
    labels = torch.randint(0, 2, (B,))
    autocast = cfg.get("dtype") == "bf16"
    if cfg["mode"] == "infer":
        model.eval()

        def step():
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                model(ids, types, mask)
    else:
        if cfg["mode"] == "lora":
            for p in model.parameters():
                p.requires_grad_(False)
            for layer in model.layers:
                layer.query = LoraLinear(layer.query, 8, 16, 0.1)
                layer.value = LoraLinear(layer.value, 8, 16, 0.1)
            for p in model.classifier.parameters():
                p.requires_grad_(True)
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=1e-5, weight_decay=0.01)
        model.train()

        def step():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                loss = F.cross_entropy(model(ids, types, mask), labels)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)

    out["seconds"] = timed(step, cfg["time"], cfg["iters"])
    out["peakRssMB"] = rss_mb()
    print(json.dumps(out))


main()
