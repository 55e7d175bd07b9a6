#!/usr/bin/env python3
"""PyTorch twin of `lab bench`: the same shapes S and M, same optimizer, same token counts.

Usage: python3 bench/torch_bench.py [--model S|M|L|all] [--steps 20] [--threads 2]
       python3 bench/torch_bench.py --device cuda --dtype bf16 --model L
       python3 bench/torch_bench.py --model S --moe 8:1 --granularity 1,8
Prints tokens/s and GFLOP/s (lab's exact FLOP accounting) for comparison with `lab bench`: eager
PyTorch, with bf16/f16 through autocast (f32 master weights, as lab's mixed precision). With --moe,
also the MoE twins `lab bench --moe` trains: E x g experts of width 4d / g, the top K x g of a
softmax router, gates from the scores, the auxiliary balance loss (weight 0.01), no capacity limit;
each expert gathers its tokens and scatters its output back (the usual eager loop over experts).
"""
import argparse
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

SHAPES = {"S": dict(n_layer=4, d=128, n_head=4, seq=128, batch=16, vocab=256),
          "M": dict(n_layer=6, d=384, n_head=6, seq=256, batch=16, vocab=4096),
          "L": dict(n_layer=12, d=768, n_head=12, seq=512, batch=16, vocab=16384)}


class Dense(nn.Module):
    """The GELU feed-forward block, 4d wide."""

    def __init__(self, d):
        super().__init__()
        self.up = nn.Linear(d, 4 * d, bias=False)
        self.down = nn.Linear(4 * d, d, bias=False)

    def forward(self, x):
        return self.down(F.gelu(self.up(x))), x.new_zeros(())


class Experts(nn.Module):
    """lab's MoE twin (models/src/moe.rs) with the routing of `lab bench --moe`."""

    def __init__(self, d, experts, top_k, granularity):
        super().__init__()
        self.e, self.k = experts * granularity, top_k * granularity
        f = 4 * d // granularity
        self.router = nn.Linear(d, self.e, bias=False)
        self.w_in = nn.Parameter(torch.randn(self.e, d, f) * 0.02)
        self.w_out = nn.Parameter(torch.randn(self.e, f, d) * 0.02)

    def forward(self, x):
        b, t, d = x.shape
        n = b * t
        flat = x.reshape(n, d)
        scores = F.softmax(self.router(flat).float(), dim=1)
        gates, chosen = scores.topk(self.k, dim=1)
        flat_chosen, flat_gates = chosen.flatten(), gates.flatten().to(flat.dtype)
        out = torch.zeros_like(flat)
        for ex in range(self.e):
            assignments = (flat_chosen == ex).nonzero().flatten()
            tokens = assignments // self.k
            h = F.gelu(flat[tokens] @ self.w_in[ex]) @ self.w_out[ex]
            out = out.index_add(0, tokens, h * flat_gates[assignments][:, None])
        load = torch.bincount(flat_chosen, minlength=self.e).float()
        aux = (self.e * load / (self.k * n) * scores.mean(dim=0)).sum() * 0.01
        return out.reshape(b, t, d), aux


class Block(nn.Module):
    def __init__(self, d, n_head, moe=None):
        super().__init__()
        self.n_head = n_head
        self.ln1 = nn.LayerNorm(d, bias=False)
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.out = nn.Linear(d, d, bias=False)
        self.ln2 = nn.LayerNorm(d, bias=False)
        self.ffn = Experts(d, *moe) if moe else Dense(d)

    def forward(self, x, sdpa):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.n_head, d // self.n_head).transpose(1, 2) for z in (q, k, v))
        if sdpa:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            att = (q @ k.transpose(-2, -1)) / math.sqrt(d // self.n_head)
            mask = torch.triu(torch.ones(t, t, dtype=torch.bool, device=x.device), 1)
            y = att.masked_fill(mask, float("-inf")).softmax(-1) @ v
        x = x + self.out(y.transpose(1, 2).reshape(b, t, d))
        h, aux = self.ffn(self.ln2(x))
        return x + h, aux


class Decoder(nn.Module):
    def __init__(self, n_layer, d, n_head, seq, vocab, moe=None, **_):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(seq, d)
        self.blocks = nn.ModuleList(Block(d, n_head, moe) for _ in range(n_layer))
        self.ln = nn.LayerNorm(d, bias=False)
        self.head = nn.Linear(d, vocab, bias=False)

    def forward(self, idx, sdpa):
        """Logits and the summed auxiliary losses."""
        x = self.tok(idx) + self.pos(torch.arange(idx.shape[1], device=idx.device))
        aux = x.new_zeros(())
        for blk in self.blocks:
            x, a = blk(x, sdpa)
            aux = aux + a
        return self.head(self.ln(x)), aux


def flops_per_token(n_layer, d, seq, vocab, moe=None, **_):
    """lab's exact accounting: 3 x (2 x matmul params + 4 x n_layer x seq x d); a MoE layer's
    active expert weights equal the dense block's, plus its router (d x E x g)."""
    router = moe[0] * moe[2] * d if moe else 0
    return 3 * (2 * (n_layer * (12 * d * d + router) + d * vocab) + 4 * n_layer * seq * d)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="all")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="f32", choices=["f32", "bf16", "f16"])
    p.add_argument("--moe", help="also the MoE twins: EXPERTS:TOP_K, as `lab bench --moe`")
    p.add_argument("--granularity", default="1", help="granularities of the MoE twins, e.g. 1,8")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    gpu = dev.type == "cuda"
    names = (["S", "M", "L"] if gpu else ["S", "M"]) if a.model == "all" else [a.model]
    where = torch.cuda.get_device_name(dev) if gpu else f"threads {torch.get_num_threads()}"
    print(f"torch {torch.__version__}, {a.device} ({where}), {a.dtype}")
    half = {"bf16": torch.bfloat16, "f16": torch.float16}.get(a.dtype)
    runs = []
    for name in names:
        runs += [(name, SHAPES[name], sdpa) for sdpa in (True, False)]
        if a.moe:
            experts, top_k = (int(v) for v in a.moe.split(":"))
            for g in (int(v) for v in a.granularity.split(",")):
                twin = dict(SHAPES[name], moe=(experts, top_k, g))
                runs.append((f"{name}-moe{experts}x{top_k}-g{g}", twin, True))
    for name, s, sdpa in runs:
        torch.manual_seed(0)
        model = Decoder(**s).to(dev)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
        scaler = torch.amp.GradScaler(enabled=a.dtype == "f16")
        for step in range(a.warmup + a.steps):
            if step == a.warmup:
                if gpu:
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
            idx = torch.randint(0, s["vocab"], (s["batch"], s["seq"] + 1), device=dev)
            with torch.autocast(dev.type, dtype=half, enabled=half is not None):
                logits, aux = model(idx[:, :-1], sdpa)
                loss = F.cross_entropy(logits.float().reshape(-1, s["vocab"]),
                                       idx[:, 1:].reshape(-1)) + aux
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            scaler.step(opt)
            scaler.update()
            loss.item()
        el = time.perf_counter() - t0
        tps = a.steps * s["batch"] * s["seq"] / el
        print(f"{name} {'sdpa' if sdpa else 'manual'}: {tps:.0f} tokens/s, "
              f"{tps * flops_per_token(**s) / 1e9:.2f} GFLOP/s")


if __name__ == "__main__":
    main()
