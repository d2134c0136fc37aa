"""PyTorch side of `npm run bench:train`: one case (config JSON in argv[1]) of the same plain BERT as
tunekit's (embeddings, post-LN encoder layers, pooler, classifier), random weights, timed here; prints
one JSON line with seconds per step and this process's peak RSS. Run by bench/train.mjs with Debian's
python3-torch (/usr/bin/python3); never needed by the tests.

case: {"mode": "full"|"lora"|"infer"|"gemm"|"export", "layers", "hidden", "heads", "inter", "vocab", "batch", "seq",
       "threads", "time", "iters", "dtype": "fp32"|"bf16"}
full: forward + backward + clip_grad_norm_(1.0) + AdamW (every parameter trains);
lora: r=8, alpha=16, dropout 0.1 on query and value, classifier head trainable, the rest frozen (PEFT SEQ_CLS);
infer: eval-mode forward under torch.inference_mode();
export (bench/infer.mjs): the eval-mode model to ONNX and to a Hugging Face BERT folder, nothing timed.
Attention is F.scaled_dot_product_attention (HF's default) where torch has it, else HF's eager attention."""
import json
import math
import os
import resource
import struct
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


def hf_state_dict(model):
    """The model's weights under the names of HF's BertForSequenceClassification."""
    names = {"word": "embeddings.word_embeddings", "pos": "embeddings.position_embeddings", "tok_type": "embeddings.token_type_embeddings",
             "ln": "embeddings.LayerNorm", "pooler": "pooler.dense"}
    per_layer = {"query": "attention.self.query", "key": "attention.self.key", "value": "attention.self.value",
                 "attn_out": "attention.output.dense", "ln1": "attention.output.LayerNorm", "inter": "intermediate.dense",
                 "out": "output.dense", "ln2": "output.LayerNorm"}
    sd = {}
    for k, t in model.state_dict().items():
        mod, leaf = k.rsplit(".", 1)
        if mod == "classifier":
            sd[k] = t
        elif mod.startswith("layers."):
            _, i, sub = mod.split(".")
            sd[f"bert.encoder.layer.{i}.{per_layer[sub]}.{leaf}"] = t
        else:
            sd[f"bert.{names[mod]}.{leaf}"] = t
    return sd


def save_safetensors(path, tensors):
    """F32 safetensors as save_pretrained writes them (no safetensors package here)."""
    header, chunks, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        b = tensors[name].detach().contiguous().float().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [off, off + len(b)]}
        chunks.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(chunks))


def check_batch(B, T, vocab):
    """bench/bert_step.mjs's fullBatch: token i is 1 + (i·7919 mod (vocab−1)), no padding, one segment."""
    ids = torch.tensor([1 + (i * 7919) % (vocab - 1) for i in range(B * T)]).view(B, T)
    return ids, torch.zeros(B, T, dtype=torch.long), torch.ones(B, T, dtype=torch.long)


def export(model):
    """cfg["out"] gets model.onnx (opset 17, batch and sequence dynamic; inputs input_ids, token_type_ids,
    attention_mask as int64, output logits) and config.json + model.safetensors, the same weights as HF names
    them; prints this model's logits on fullBatch(B, seq) for each B of cfg["batches"], for the comparison."""
    model.eval()
    out_dir = cfg["out"]
    save_safetensors(os.path.join(out_dir, "model.safetensors"), hf_state_dict(model))
    config = {"architectures": ["BertForSequenceClassification"], "model_type": "bert", "vocab_size": cfg["vocab"], "hidden_size": cfg["hidden"],
              "num_hidden_layers": cfg["layers"], "num_attention_heads": cfg["heads"], "intermediate_size": cfg["inter"], "hidden_act": "gelu",
              "max_position_embeddings": 512, "type_vocab_size": 2, "layer_norm_eps": 1e-12, "hidden_dropout_prob": 0.1,
              "attention_probs_dropout_prob": 0.1, "pad_token_id": 0, "initializer_range": 0.02, "id2label": {"0": "LABEL_0", "1": "LABEL_1"},
              "label2id": {"LABEL_0": 0, "LABEL_1": 1}}
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    names = ["input_ids", "token_type_ids", "attention_mask"]
    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    axes["logits"] = {0: "batch"}
    with torch.no_grad():
        torch.onnx.export(model, check_batch(2, cfg["seq"], cfg["vocab"]), os.path.join(out_dir, "model.onnx"), opset_version=17,
                          input_names=names, output_names=["logits"], dynamic_axes=axes)
        logits = {str(B): model(*check_batch(B, cfg["seq"], cfg["vocab"])).flatten().tolist() for B in cfg["batches"]}
    print(json.dumps({"torch": torch.__version__, "onnxOpset": 17, "logits": logits}))


def main():
    out = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    if cfg["mode"] == "gemm":  # PyTorch's own GEMM rate: below 100 GFLOP/s it runs the reference BLAS
        M, K, N = cfg["shape"]
        a, b, c = torch.randn(M, K), torch.randn(K, N), torch.empty(M, N)
        s = timed(lambda: torch.matmul(a, b, out=c), cfg["time"], cfg["iters"], best=True)
        out.update(seconds=s, gflops=2 * M * N * K / s / 1e9)
        print(json.dumps(out))
        return
    if cfg["mode"] == "export":
        export(Bert(cfg))
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
