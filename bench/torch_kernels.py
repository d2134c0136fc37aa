"""PyTorch side of `npm run bench`: the same shapes as bench/kernels.mjs, timed here, printed as JSON.
Run by the benchmark with Debian's python3-torch (/usr/bin/python3); never needed by the tests."""
import json, sys
import torch

from torch_common import timed

cfg = json.loads(sys.argv[1])
torch.set_num_threads(cfg["threads"])
torch.manual_seed(0)

out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "gemm": [], "attention": []}
for M, K, N in cfg["gemm"]:
    a, b = torch.randn(M, K), torch.randn(K, N)
    c = torch.empty(M, N)
    s = timed(lambda: torch.matmul(a, b, out=c), cfg["time"], cfg["iters"])
    out["gemm"].append({"shape": [M, K, N], "seconds": s})
for B, H, T, D in cfg["attention"]:
    q, k, v = (torch.randn(B, H, T, D, requires_grad=True) for _ in range(3))
    do = torch.randn(B, H, T, D)
    scale = D ** -0.5

    def step():
        p = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * scale, dim=-1)
        o = torch.matmul(p, v)
        o.backward(do)
        q.grad = k.grad = v.grad = None

    out["attention"].append({"shape": [B, H, T, D], "seconds": timed(step, cfg["time"], cfg["iters"])})
print(json.dumps(out))
