#!/usr/bin/env python3
"""PyTorch twin of `lab bench`: the same shapes S and M, same optimizer, same token counts.

Usage: python3 bench/torch_bench.py [--model S|M|L|all] [--steps 20] [--threads 2]
       python3 bench/torch_bench.py --device cuda --dtype bf16 --model L
Prints tokens/s and GFLOP/s (lab's exact FLOP accounting) for comparison with `lab bench`: eager
PyTorch, with bf16/f16 through autocast (f32 master weights, as lab's mixed precision).
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


class Block(nn.Module):
    def __init__(self, d, n_head):
        super().__init__()
        self.n_head = n_head
        self.ln1 = nn.LayerNorm(d, bias=False)
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.out = nn.Linear(d, d, bias=False)
        self.ln2 = nn.LayerNorm(d, bias=False)
        self.up = nn.Linear(d, 4 * d, bias=False)
        self.down = nn.Linear(4 * d, d, bias=False)

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
        return x + self.down(F.gelu(self.up(self.ln2(x))))


class Decoder(nn.Module):
    def __init__(self, n_layer, d, n_head, seq, vocab, **_):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(seq, d)
        self.blocks = nn.ModuleList(Block(d, n_head) for _ in range(n_layer))
        self.ln = nn.LayerNorm(d, bias=False)
        self.head = nn.Linear(d, vocab, bias=False)

    def forward(self, idx, sdpa):
        x = self.tok(idx) + self.pos(torch.arange(idx.shape[1], device=idx.device))
        for blk in self.blocks:
            x = blk(x, sdpa)
        return self.head(self.ln(x))


def flops_per_token(n_layer, d, seq, vocab, **_):
    """lab's exact accounting: 3 x (2 x matmul params + 4 x n_layer x seq x d)."""
    return 3 * (2 * (n_layer * 12 * d * d + d * vocab) + 4 * n_layer * seq * d)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="all")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="f32", choices=["f32", "bf16", "f16"])
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    gpu = dev.type == "cuda"
    names = (["S", "M", "L"] if gpu else ["S", "M"]) if a.model == "all" else [a.model]
    where = torch.cuda.get_device_name(dev) if gpu else f"threads {torch.get_num_threads()}"
    print(f"torch {torch.__version__}, {a.device} ({where}), {a.dtype}")
    half = {"bf16": torch.bfloat16, "f16": torch.float16}.get(a.dtype)
    for name in names:
        s = SHAPES[name]
        for sdpa in (True, False):
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
                    logits = model(idx[:, :-1], sdpa)
                    loss = F.cross_entropy(logits.float().reshape(-1, s["vocab"]),
                                           idx[:, 1:].reshape(-1))
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
