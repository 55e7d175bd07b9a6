#!/usr/bin/env python3
"""Replays a lab run step by step in PyTorch and fails if the two trainings diverge.

    lab train bench/parity/dense.yaml --out /tmp/p --trace /tmp/p/trace
    python3 bench/torch_parity.py /tmp/p/trace [--tolerance 1e-4]

The trace (`lab train --trace`, src/train/trace.rs) holds the run config, the initial parameters
and every step's token rows, learning rate, loss and gradient norm. This twin builds the same
decoder from the config with PyTorch's own operations (embedding lookup, layer/RMS norm, scaled
dot-product attention with the causal or prefix mask, rotary positions, GELU or SwiGLU, log-softmax
cross-entropy), loads the initial parameters, and trains on the same rows with torch.optim.AdamW
(decoupled decay on the same parameters), global-norm clipping and its own warmup/cosine/WSD
schedule. Per step it compares the loss (before the update), the gradient norm and the learning
rate with lab's, and at the end the parameters with `final.safetensors`.

Exit status 0 when every step's loss agrees to --tolerance (relative), 1 on a divergence, 2 on a
trace it cannot replay (dropout, reduced precision).

Mixtures of experts choose experts discretely: where the best unchosen expert's score is within
--tie of a chosen one's (a tie at float32 resolution), the two frameworks, whose sums differ in the
last bits, may break the tie differently, and from then on the runs legitimately differ. A loss
that diverges within two steps of such a tie stops the replay there: the steps before it are
compared, and the check passes only if they are at least half of the run (otherwise the trace says
little: train another seed). A divergence with no tie before it fails as any other.
"""
import argparse
import json
import math
import struct
import sys
from pathlib import Path

import torch
import torch.nn.functional as F


def read_safetensors(path):
    """Named float32 tensors of a safetensors file (the format lab writes: F32, little-endian)."""
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        if meta["dtype"] != "F32":
            raise SystemExit(f"{path}: {name} is {meta['dtype']}, not F32")
        lo, hi = meta["data_offsets"]
        t = torch.frombuffer(bytearray(data[lo:hi]), dtype=torch.float32)
        out[name] = t.reshape(meta["shape"]).clone()
    return out


def lr_at(train, step, total):
    """lab's schedule (src/train/schedule.rs), written from its definition."""
    peak = train["lr"]
    floor = peak * train.get("min_lr_ratio", 0.1)
    half_up = lambda x: math.floor(x + 0.5)  # Rust's f64::round on these non-negative values
    warmup = train["warmup_steps"] if train.get("warmup_steps") is not None else half_up(train["warmup"] * total)
    if step < warmup:
        return peak * (step + 1) / warmup
    schedule = train.get("schedule", "cosine")
    if schedule == "constant":
        return peak
    if schedule == "cosine":
        p = min(max((step - warmup) / max(total - warmup, 1), 0.0), 1.0)
        return floor + 0.5 * (peak - floor) * (1 + math.cos(math.pi * p))
    if schedule == "wsd":
        start = total - half_up(train.get("cooldown", 0.2) * total)
        if step < start or total == start:
            return peak
        p = min(max((step - start + 1) / (total - start), 0.0), 1.0)
        shape = 1 - p if train.get("cooldown_shape", "sqrt") == "linear" else 1 - math.sqrt(p)
        return floor + (peak - floor) * shape
    raise SystemExit(f"schedule {schedule!r} is not replayed here")


def rope_tables(seq, head_dim, theta=10000.0):
    """cos and sin of burn's rotary encoding: frequency 1/theta^(2k/d) for the pair (2k, 2k+1)."""
    exponent = torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim
    freq = torch.exp(exponent * math.log(theta)).reciprocal()
    angles = torch.arange(seq, dtype=torch.float32)[:, None] * freq[None, :]
    return angles.cos(), angles.sin()


def alibi_slopes(n):
    """ALiBi's head slopes (Press et al. 2022, their reference code)."""
    def power_of_two(p):
        start = 2 ** (-8 / p)
        return [start ** h for h in range(1, p + 1)]
    if n & (n - 1) == 0:
        return power_of_two(n)
    below = 1 << (n.bit_length() - 1)
    return power_of_two(below) + alibi_slopes(2 * below)[0::2][: n - below]


def sinusoids(t, d):
    """sin(p / 10000^(2i/d)) at 2i, cos at 2i + 1."""
    angles = torch.arange(t, dtype=torch.float64)[:, None] / 10000 ** (torch.arange(0, d, 2, dtype=torch.float64) / d)
    return torch.stack((angles.sin(), angles.cos()), dim=-1).flatten(-2).float()


def rotate(x, cos, sin):
    """Rotates interleaved pairs (x[2k], x[2k+1]) of the last dimension by the position's angles."""
    a, b = x[..., 0::2], x[..., 1::2]
    return torch.stack((a * cos - b * sin, a * sin + b * cos), dim=-1).flatten(-2)


class Twin:
    """lab's decoder (models/src/decoder.rs, layers.rs) over a dict of parameters named as lab
    names them; linear weights keep burn's [d_in, d_out] layout, so a layer is x @ W + b."""

    def __init__(self, model, params):
        self.m = model
        self.p = params
        self.d = model["d_model"]
        self.h = model["n_head"]
        self.kv = model.get("n_kv_head") or self.h
        self.position = model.get("position", "learned")
        self.rope = rope_tables(model["seq_len"], self.d // self.h) if self.position == "rope" else None
        self.mla = model.get("mla")
        rope_dim = (self.mla or {}).get("rope_dim", 0)
        self.mla_rope = rope_tables(model["seq_len"], rope_dim) if rope_dim else None
        self.post_norm = model.get("norm_placement", "pre") == "post"
        self.margin = math.inf  # smallest gap between a chosen expert and the best one not chosen
        self.memory = None  # an encoder-decoder's encoder states: (states, allowed keys, present rows)
        self.encoder = None
        if model.get("arch") == "encoder_decoder":
            self.encoder = Twin(encoder_model(model), {k[len("encoder."):]: v for k, v in params.items()
                                                       if k.startswith("encoder.")})

    def linear(self, name, x):
        y = x @ self.p[f"{name}.weight"]
        bias = self.p.get(f"{name}.bias")
        return y if bias is None else y + bias

    def rms(self, name, x):
        return x / torch.sqrt(x.square().mean(-1, keepdim=True) + 1e-5) * self.p[f"{name}.gamma"]

    def norm(self, name, x):
        if f"{name}.dyt.alpha" in self.p:
            return torch.tanh(self.p[f"{name}.dyt.alpha"] * x) * self.p[f"{name}.dyt.gamma"] + self.p[f"{name}.dyt.beta"]
        if f"{name}.rms.gamma" not in self.p and f"{name}.layer.gamma" not in self.p:
            return x  # the final norm of post-norm blocks
        if f"{name}.layer.gamma" in self.p:
            return F.layer_norm(x, (self.d,), self.p[f"{name}.layer.gamma"], self.p.get(f"{name}.layer.beta"), 1e-5)
        return self.rms(f"{name}.rms", x)

    def attention(self, name, x, allowed):
        b, t, d = x.shape
        hd = d // self.h
        q, k, v = self.linear(f"{name}.qkv", x).split([d, self.kv * hd, self.kv * hd], dim=2)
        heads = lambda z, n: z.reshape(b, t, n, hd).transpose(1, 2)
        q, k, v = heads(q, self.h), heads(k, self.kv), heads(v, self.kv)
        if self.rope is not None:
            cos, sin = self.rope[0][:t], self.rope[1][:t]
            q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        # Grouped-query attention: query head i reads key/value head i // (h / kv).
        k, v = k.repeat_interleave(self.h // self.kv, dim=1), v.repeat_interleave(self.h // self.kv, dim=1)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=self.score_mask(allowed, t))
        return self.linear(f"{name}.out", y.transpose(1, 2).reshape(b, t, d))

    def score_mask(self, allowed, t):
        """The additive mask: 0 where allowed, lab's finite -1e30 elsewhere (a query with no open
        key gets finite weights, as in models/src/attention.rs), plus -m_h |i - j| with ALiBi."""
        if self.position != "alibi":
            return torch.where(allowed, 0.0, -1e30)
        i, j = torch.arange(t)[:, None], torch.arange(t)[None, :]
        bias = -torch.tensor(alibi_slopes(self.h))[:, None, None] * (i - j).abs()[None].float()
        return torch.where(allowed, bias[None], torch.tensor(float("-inf")))

    def cross_attention(self, name, x):
        """Cross-attention to the encoder's states (models/src/attention.rs CrossAttention): no
        positions; a row with an empty input gets exactly 0."""
        states, allowed, present = self.memory
        b, t, d = x.shape
        ts, hd = states.shape[1], d // self.h
        q = self.linear(f"{name}.q", x).reshape(b, t, self.h, hd).transpose(1, 2)
        kv = self.linear(f"{name}.kv", states).reshape(b, ts, 2, self.h, hd)
        k, v = kv[:, :, 0].transpose(1, 2), kv[:, :, 1].transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=torch.where(allowed, 0.0, -1e30))
        return self.linear(f"{name}.out", y.transpose(1, 2).reshape(b, t, d)) * present

    def encode(self, source, lengths, shared_tok):
        """The encoder's states of padded input rows (each attends to its row's own tokens)."""
        b, t = source.shape
        x = self.p.get("tok.weight", shared_tok)[source]
        if "pos.weight" in self.p:
            x = x + self.p["pos.weight"][:t]
        if self.position == "sinusoidal":
            x = x + sinusoids(t, self.d)
        allowed = (torch.arange(t)[None, :] < torch.tensor(lengths)[:, None])[:, None, None, :]
        for layer in range(self.m["n_layer"]):
            x, _, _ = self.block(f"blocks.{layer}", x, allowed, None)
        present = torch.tensor([1.0 if n > 0 else 0.0 for n in lengths])[:, None, None]
        return self.norm("norm", x), allowed, present

    def latent_attention(self, name, x, allowed):
        """DeepSeek-V2's multi-head latent attention as lab builds it (models/src/attention.rs)."""
        b, t, d = x.shape
        h, hd = self.h, d // self.h
        r, rank = self.mla.get("rope_dim", 0), self.mla["kv_rank"]
        q = self.linear(f"{name}.q_up", self.rms(f"{name}.q_norm", self.linear(f"{name}.q_down", x)))
        q = q.reshape(b, t, h, hd + r).transpose(1, 2)
        kv_a = self.linear(f"{name}.kv_down", x)
        kv = self.linear(f"{name}.kv_up", self.rms(f"{name}.kv_norm", kv_a[..., :rank]))
        kv = kv.reshape(b, t, h, 2 * hd).transpose(1, 2)
        k, v = kv[..., :hd], kv[..., hd:]
        if r:
            cos, sin = self.mla_rope[0][:t], self.mla_rope[1][:t]
            q = torch.cat((q[..., :hd], rotate(q[..., hd:], cos, sin)), dim=-1)
            k_rope = rotate(kv_a[..., rank:].reshape(b, 1, t, r), cos, sin).expand(b, h, t, r)
            k = torch.cat((k, k_rope), dim=-1)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=self.score_mask(allowed, t))
        return self.linear(f"{name}.out", y.transpose(1, 2).reshape(b, t, h * hd))

    def moe(self, name, x, bias):
        """lab's fine-grained mixture of experts (models/src/moe.rs): experts chosen on the scores
        plus the balancing bias, gates from the scores, assignments past an expert's capacity
        dropped in token order. Returns the output, the auxiliary loss and each expert's load."""
        cfg = self.m["moe"]
        b, t, d = x.shape
        n = b * t
        e = cfg["n_experts"] * cfg.get("granularity", 1)
        k = cfg["top_k"] * cfg.get("granularity", 1)
        flat = x.reshape(n, d)
        logits = flat @ self.p[f"{name}.router.weight"]
        sigmoid = cfg.get("router", "softmax") == "sigmoid"
        scores = torch.sigmoid(logits) if sigmoid else F.softmax(logits, dim=1)
        select = scores.detach() + (torch.tensor(bias)[None, :] if bias is not None else 0.0)
        top = select.topk(k, dim=1)
        if k < e:  # how close the last chosen expert came to losing its place
            ranked = select.topk(k + 1, dim=1).values
            self.margin = min(self.margin, float((ranked[:, k - 1] - ranked[:, k]).min()))
        chosen = top.indices
        gates = scores.gather(1, chosen)
        if sigmoid:
            gates = gates / gates.sum(dim=1, keepdim=True)
        load = torch.bincount(chosen.flatten(), minlength=e)
        capacity = cfg.get("capacity_factor")
        cap = max(math.ceil(capacity * n * k / e), 1) if capacity else None
        out = torch.zeros(n, d)
        flat_chosen, flat_gates = chosen.flatten(), gates.flatten()
        for ex in range(e):
            assignments = (flat_chosen == ex).nonzero().flatten()[:cap]
            tokens = assignments // k
            h = self.expert(name, ex, flat[tokens])
            out = out.index_add(0, tokens, h * flat_gates[assignments][:, None])
        y = out.reshape(b, t, d)
        if f"{name}.shared.up.weight" in self.p:
            y = y + self.ffn(f"{name}.shared", x)
        aux = torch.zeros(())
        if cfg.get("balance", "aux_loss") == "aux_loss":
            f = e * load.float() / (k * n)
            aux = aux + (f * scores.mean(dim=0)).sum() * cfg.get("aux_weight", 0.01)
        if cfg.get("z_loss", 0.0) > 0:
            aux = aux + torch.logsumexp(logits, dim=1).square().mean() * cfg["z_loss"]
        return y, aux, load.tolist()

    def expert(self, name, ex, x):
        """Routed expert `ex` of the MoE layer `name` (weights [experts, d_in, d_out])."""
        def layer(w, bias, z):
            y = z @ self.p[f"{name}.{w}"][ex]
            return y + self.p[f"{name}.{bias}"][ex] if f"{name}.{bias}" in self.p else y

        if f"{name}.w_gate" in self.p:
            hidden = F.silu(layer("w_gate", "b_gate", x)) * layer("w_in", "b_in", x)
        else:
            hidden = F.gelu(layer("w_in", "b_in", x))
        return layer("w_out", "b_out", hidden)

    def ffn(self, name, x):
        if f"{name}.gate.weight" in self.p:
            hidden = F.silu(self.linear(f"{name}.gate", x)) * self.linear(f"{name}.up", x)
        else:
            hidden = F.gelu(self.linear(f"{name}.up", x))
        return self.linear(f"{name}.down", hidden)

    def logits(self, tokens, prefix, biases):
        """Logits, the summed auxiliary losses and each MoE layer's expert loads."""
        b, t = tokens.shape
        x = self.p["tok.weight"][tokens]
        if "pos.weight" in self.p:
            x = x + self.p["pos.weight"][:t]
        if self.position == "sinusoidal":
            x = x + sinusoids(t, self.d)
        i = torch.arange(t)[:, None]
        j = torch.arange(t)[None, :]
        allowed = (j <= i)[None, None] | (j[None, None] < torch.tensor(prefix)[:, None, None, None])
        aux, loads = torch.zeros(()), []
        for layer in range(self.m["n_layer"]):
            x, a, load = self.block(f"blocks.{layer}", x, allowed, biases[layer] if biases else None)
            aux = aux + a
            loads = loads + ([load] if load is not None else [])
        self.hidden = x  # the multi-token prediction modules' input
        return self.head(self.norm("norm", x)), aux, loads

    def head(self, x):
        return self.linear("head", x) if "head.weight" in self.p else x @ self.p["tok.weight"].T

    def block(self, name, x, allowed, bias):
        """One block: its output, its auxiliary loss and its expert loads (None when dense)."""
        # Pre-norm normalises each branch's input, post-norm each residual sum.
        branch_in = (lambda n, z: z) if self.post_norm else self.norm
        summed = self.norm if self.post_norm else (lambda n, z: z)
        attend = self.latent_attention if self.mla else self.attention
        attn = f"{name}.mla" if self.mla else f"{name}.attn"
        x = summed(f"{name}.norm1", x + attend(attn, branch_in(f"{name}.norm1", x), allowed))
        if self.memory is not None and f"{name}.cross.q.weight" in self.p:
            x = summed(f"{name}.norm_cross", x + self.cross_attention(f"{name}.cross", branch_in(f"{name}.norm_cross", x)))
        h = branch_in(f"{name}.norm2", x)
        aux, load = torch.zeros(()), None
        if self.m.get("ffn", "dense") == "moe":
            y, aux, load = self.moe(f"{name}.moe", h, bias)
        else:
            y = self.ffn(f"{name}.ffn", h)
        return summed(f"{name}.norm2", x + y), aux, load

    def mtp_loss(self, x, y):
        """DeepSeek-V3's multi-token prediction (models/src/mtp.rs): module k combines the previous
        depth's hidden state with the embedding of the token k ahead and predicts the token k + 1
        ahead through the shared head; the weighted mean of the modules' mean cross-entropies."""
        cfg = self.m.get("mtp") or {}
        depth = cfg.get("depth", 0)
        if depth == 0:
            return torch.zeros(())
        t = x.shape[1]
        h, total = self.hidden, torch.zeros(())
        for k in range(1, depth + 1):
            name = f"mtp.{k - 1}"
            ahead = self.p["tok.weight"][x[:, k:]]
            joined = torch.cat((self.norm(f"{name}.norm_hidden", h[:, : t - k]), self.norm(f"{name}.norm_embedding", ahead)), dim=-1)
            i, j = torch.arange(t - k)[:, None], torch.arange(t - k)[None, :]
            h, _, _ = self.block(f"{name}.block", self.linear(f"{name}.proj", joined), (j <= i)[None, None], None)
            logits = self.head(self.norm(f"{name}.norm_out", h))
            total = total + F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y[:, k:].reshape(-1))
        return total * cfg["weight"] / depth

    def loss(self, rows, prefix, biases):
        """The objective (cross-entropy plus the routers' auxiliary losses), the mean cross-entropy
        over the loss-bearing targets (a prefix decoder's prefix carries none) and the expert loads."""
        if self.encoder is not None:
            return self.seq2seq_loss(rows, prefix)
        rows = torch.tensor(rows, dtype=torch.long)
        x, y = rows[:, :-1], rows[:, 1:]
        seq = x.shape[1]
        logits, aux, loads = self.logits(x, prefix, biases)
        nll = -F.log_softmax(logits, dim=-1).gather(-1, y[..., None])[..., 0]
        weights = torch.tensor([[1.0 if i + 1 >= p else 0.0 for i in range(seq)] for p in prefix])
        denominator = sum(seq - max(p - 1, 0) for p in prefix)
        ce = (nll * weights).sum() / denominator
        return ce + aux + self.mtp_loss(x, y), ce, loads


    def seq2seq_loss(self, rows, prefix):
        """An encoder-decoder's loss as src/train/batch.rs lays the batch out: the encoder reads a
        row's first p tokens, the decoder tokens s..seq (s = max(p - 1, 0)) and predicts s + 1..=seq,
        rows padded at the end with token 0 (padding carries no loss)."""
        seq = len(rows[0]) - 1
        starts = [max(p - 1, 0) for p in prefix]
        t = seq - min(starts)
        pad = lambda r, n: r + [0] * (n - len(r))
        x = torch.tensor([pad(r[s:seq], t) for r, s in zip(rows, starts)], dtype=torch.long)
        y = torch.tensor([pad(r[s + 1:], t) for r, s in zip(rows, starts)], dtype=torch.long)
        weights = torch.tensor([[1.0 if i < seq - s else 0.0 for i in range(t)] for s in starts])
        longest = max(max(prefix), 1)
        source = torch.tensor([pad(r[:p], longest) for r, p in zip(rows, prefix)], dtype=torch.long)
        self.memory = self.encoder.encode(source, prefix, self.p["tok.weight"])
        logits, aux, loads = self.logits(x, [0] * len(rows), [])
        self.memory = None
        nll = -F.log_softmax(logits, dim=-1).gather(-1, y[..., None])[..., 0]
        ce = (nll * weights).sum() / sum(seq - s for s in starts)
        return ce + aux, ce, loads


def encoder_model(model):
    """The encoder's configuration (models/src/config.rs encoder_config): the decoder's choices
    with the encoder's shape."""
    enc = model.get("encoder") or {}
    out = dict(model, arch="causal", encoder=None, mtp=None)
    out["n_layer"] = enc.get("n_layer") or model["n_layer"]
    out["d_model"] = enc.get("d_model") or model["d_model"]
    out["n_head"] = enc.get("n_head") or model["n_head"]
    out["d_ff"] = enc.get("d_ff") or (None if enc.get("d_model") else model.get("d_ff"))
    out["n_kv_head"] = None if enc.get("n_head") else model.get("n_kv_head")
    return out


def decays(name, rank, decay_all):
    """lab's rule (src/train/optim.rs): matrices outside the embeddings, unless decay_all."""
    return decay_all or (rank >= 2 and not name.startswith(("tok.", "pos.", "encoder.tok.", "encoder.pos.")))


def relative(a, b):
    return abs(a - b) / max(abs(b), 1e-30)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("trace", type=Path, help="folder written by `lab train --trace`")
    ap.add_argument("--tolerance", type=float, default=1e-4, help="largest relative loss difference")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tie", type=float, default=1e-6,
                    help="routing gap below which a step is a tie the frameworks may break differently")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    cfg = json.loads((args.trace / "config.json").read_text())
    model, train = cfg["model"], cfg["train"]
    if model.get("dropout", 0.0) != 0.0 or train.get("precision") not in (None, "f32"):
        print(f"{args.trace}: dropout and reduced precision are not replayed (they are not deterministic across frameworks)", file=sys.stderr)
        return 2
    steps = [json.loads(line) for line in (args.trace / "steps.jsonl").read_text().splitlines()]
    total = math.ceil(train["tokens"] / (train["batch_size"] * model["seq_len"]))

    params = {k: v.requires_grad_() for k, v in read_safetensors(args.trace / "init.safetensors").items()}
    twin = Twin(model, params)
    groups = [
        {"params": [p for n, p in params.items() if decays(n, p.dim(), train.get("decay_all", False))],
         "weight_decay": train.get("weight_decay", 0.1)},
        {"params": [p for n, p in params.items() if not decays(n, p.dim(), train.get("decay_all", False))],
         "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=train["lr"], betas=(train.get("beta1", 0.9), train.get("beta2", 0.95)),
                            eps=train.get("eps", 1e-8), foreach=False)
    clip = train.get("grad_clip", 1.0)

    moe = model.get("moe") if model.get("ffn", "dense") == "moe" else None
    biases = [[0.0] * (moe["n_experts"] * moe.get("granularity", 1)) for _ in range(model["n_layer"])] \
        if moe and moe.get("balance") == "bias" else []
    worst = {"loss": 0.0, "grad_norm": 0.0, "lr": 0.0, "bias": 0.0}
    margin = math.inf
    print(f"{'step':>5} {'lab loss':>12} {'torch loss':>12} {'rel diff':>9} {'grad norm rel':>13} {'clip':>6}"
          + (f" {'routing gap':>11}" if moe else ""))
    tie = None  # the step at which a divergence after a routing tie stopped the replay
    compared = 0
    gaps = []  # each step's routing gap
    for rec in steps:
        lr = lr_at(train, rec["step"], total)
        opt.zero_grad(set_to_none=True)
        bias_diff = max((abs(a - b) for mine, theirs in zip(biases, rec["biases"]) for a, b in zip(mine, theirs)),
                        default=0.0)
        twin.margin = math.inf
        objective, loss, loads = twin.loss(rec["rows"], rec["prefix"], biases)
        gaps.append(twin.margin)
        objective.backward()
        norm = math.sqrt(sum(float(p.grad.double().square().sum()) for p in params.values()))
        scale = clip / norm if clip > 0 and norm > clip else 1.0
        if scale != 1.0:
            for p in params.values():
                p.grad.mul_(scale)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.step()
        for bias, load in zip(biases, loads):  # models/src/moe.rs update_bias, in f32 as lab keeps it
            mean = sum(load) / len(load)
            for i, count in enumerate(load):
                step = moe.get("bias_rate", 0.001) * (count < mean) - moe.get("bias_rate", 0.001) * (count > mean)
                bias[i] = float(torch.tensor(bias[i], dtype=torch.float32) + torch.tensor(step, dtype=torch.float32))
        diffs = {"loss": relative(loss.item(), rec["loss"]), "grad_norm": relative(norm, rec["grad_norm"]),
                 "lr": relative(lr, rec["lr"])}
        # A divergence within two steps of a tie (the flipped choice changes this step's forward, or
        # the loads and so the next step's biases) is the tie's, not a bug's.
        if moe and diffs["loss"] > args.tolerance and min(gaps[-3:]) < args.tie:
            tie = (rec["step"], min(gaps[-3:]))
            print(f"{rec['step']:>5} {rec['loss']:>12.7f} {loss.item():>12.7f} {diffs['loss']:>9.1e}  after a routing "
                  f"tie (gap {tie[1]:.1e} < {args.tie:g}): replay stops, this step and later ones not compared")
            break
        compared += 1
        margin = min(margin, twin.margin)
        worst["bias"] = max(worst["bias"], bias_diff)
        for k, v in diffs.items():
            worst[k] = max(worst[k], v)
        print(f"{rec['step']:>5} {rec['loss']:>12.7f} {loss.item():>12.7f} {diffs['loss']:>9.1e} "
              f"{diffs['grad_norm']:>13.1e} {'yes' if scale != 1.0 else '':>6}"
              + (f" {twin.margin:>11.1e}" if moe else ""))

    if tie is None:
        final = read_safetensors(args.trace / "final.safetensors")
        param_diff, param_name = max((float((params[n].detach() - w).abs().max() / w.abs().max().clamp_min(1e-30)), n)
                                     for n, w in final.items())
        params_line = f"final parameters {param_diff:.2e} ({param_name}: largest difference over the tensor's largest value)"
    else:
        params_line = "final parameters not compared (the replay stopped at a routing tie)"
    clipped = sum(1 for r in steps[:compared] if r["clip_scale"] != 1.0)
    print(f"{compared} of {len(steps)} steps compared ({clipped} clipped by lab): largest relative difference of the loss "
          f"{worst['loss']:.2e}, of the gradient norm {worst['grad_norm']:.2e}, of the learning rate "
          f"{worst['lr']:.2e}; {params_line}")
    if moe:
        print(f"routing: smallest gap between a chosen expert and the best unchosen one {margin:.2e} over the "
              f"compared steps; largest difference of the balancing biases {worst['bias']:.2e}")
    ok = worst["loss"] <= args.tolerance and worst["lr"] <= 1e-9
    if tie is not None and 2 * compared < len(steps):
        print(f"parity: too few steps compared ({compared} of {len(steps)}) before a routing tie at step {tie[0]}")
        return 1
    print("parity: " + ("agree" if ok else f"DIVERGED (tolerance {args.tolerance:g})")
          + (f" over the {compared} steps before a routing tie at step {tie[0]} (gap {tie[1]:.1e})" if tie and ok else ""))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
