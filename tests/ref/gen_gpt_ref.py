#!/usr/bin/python3
"""gen_gpt_ref.py -- writes tests/ref/gpt_ref_<pe>.bin (pe = none, learned,
sinusoidal, rope, alibi), the PyTorch reference
that tests/test_gpt_ref.c compares the C GPT (src/model/gpt.c, adamw.c)
against, tensor by tensor.

The model is re-implemented here in PyTorch float64 from the design contract
(notes/gpt_design.md), not from the C code:
  GPT-2 (Radford et al. 2019): token embedding (+ learned wpe), L pre-LN blocks
  x += attn(ln1(x)); x += mlp(ln2(x)), final LayerNorm (eps 1e-5), LM head tied
  to wte, mean cross-entropy over B*T tokens.
  Attention: causal, scale 1/sqrt(HS), q = [0,C), k = [C,2C), v = [2C,3C) of
  the QKV projection, head h = channels [h*HS, (h+1)*HS) of each.
  MLP: 4C, GELU tanh approximation (Hendrycks & Gimpel 2016).
  RoPE (Su et al. 2021, RoFormer eq. 34): q and k of every head rotated after
  the projection, INTERLEAVED pairs (2i, 2i+1), angle t * base^(-2i/HS),
  base 10000, full rotary, positions t = 0..T-1 in every batch row.
  Sinusoidal (Vaswani et al. 2017 §3.4-3.5): x = wte[tok] * sqrt(C) + PE[t],
  PE[t, 2i] = sin(t / 10000^(2i/C)), PE[t, 2i+1] = cos(same).
  ALiBi (Press et al. 2022): score(t, j) -= m_h * (t - j), m_h = 2^(-8h/NH).
  None: no position signal beyond the causal mask.
  Optimizer: torch.optim.AdamW (betas 0.9/0.99, eps 1e-8), weight decay 0.1 on
  the 2-D weights (wte, wpe, qkvw, attprojw, fcw, fcprojw) and 0 elsewhere;
  gradients clipped to global norm 1.0 first (g *= 1/norm when norm > 1, the
  same rule as torch.nn.utils.clip_grad_norm_ without its +1e-6);
  learning rate from nanoGPT's get_lr (linear warmup, cosine to min_lr).
Weights are drawn here from a seeded torch generator (not the C init) at a
larger scale than GPT-2's init, with random biases and LayerNorm parameters,
so that every parameter matters in the forward, attention is far from uniform
and gradient clipping triggers. They are rounded to float32 first and the
reference runs on those exact values in float64, so the only differences the
C test sees are the C code's own float32 rounding.

File layout (little-endian, fields one by one; see tests/test_gpt_ref.c):
  char magic[8] = "RGPTREF1"; u32 version = 1; u32 header_bytes
  i32 V, L, NH, C, maxT, B, T, pe (gpt.h pe_type: 1 learned, 3 rope),
      rope_layout (0 interleaved), rotary_dim, n_steps, warmup, max_steps
      (pe: 0 none, 1 learned, 2 sinusoidal, 3 rope, 4 alibi)
  f64 rope_base, lr, min_lr, beta1, beta2, eps, weight_decay, grad_clip
  u64 num_params
  f32 params[num_params]            (flat order of gpt_design.md)
  i32 inputs[B*T], targets[B*T]
  f32 logits[B*T*V], f32 loss
  f32 grads[num_params]             (gradient of the mean loss, same order)
  f32 step_loss[n_steps + 1]        (loss before each AdamW step, then after the last)
  f32 step_norm[n_steps]            (global grad norm before clipping, each step)
  f32 final_params[num_params]      (after n_steps steps)
  u32 checksum                      (FNV-1a 32 of every byte before it)

Run:  /usr/bin/python3 tests/ref/gen_gpt_ref.py   (CI never runs Python; the
fixtures are committed.)
"""
import math
import os
import struct

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)

PE_NONE, PE_LEARNED, PE_SINUSOIDAL, PE_ROPE, PE_ALIBI = 0, 1, 2, 3, 4
CFG = dict(V=37, L=2, NH=2, C=16, maxT=8, B=2, T=8)
OPT = dict(n_steps=10, warmup=2, max_steps=10, lr=2e-2, min_lr=1e-3, beta1=0.9, beta2=0.99,
           eps=1e-8, weight_decay=0.1, grad_clip=1.0, rope_base=10000.0)
DECAYED = ("wte", "wpe", "qkvw", "attprojw", "fcw", "fcprojw")


def tensor_shapes(pe):
    V, L, C, maxT = CFG["V"], CFG["L"], CFG["C"], CFG["maxT"]
    return [("wte", (V, C)), ("wpe", (maxT, C) if pe == PE_LEARNED else (0,)),
            ("ln1w", (L, C)), ("ln1b", (L, C)), ("qkvw", (L, 3 * C, C)), ("qkvb", (L, 3 * C)),
            ("attprojw", (L, C, C)), ("attprojb", (L, C)), ("ln2w", (L, C)), ("ln2b", (L, C)),
            ("fcw", (L, 4 * C, C)), ("fcb", (L, 4 * C)), ("fcprojw", (L, C, 4 * C)),
            ("fcprojb", (L, C)), ("lnfw", (C,)), ("lnfb", (C,))]


def make_params(pe, gen):
    """Random parameters, rounded to float32, returned as float64 leaves."""
    C = CFG["C"]
    scale = {"wte": 0.4, "wpe": 0.4, "qkvw": 1.0 / math.sqrt(C), "attprojw": 1.0 / math.sqrt(C),
             "fcw": 1.0 / math.sqrt(C), "fcprojw": 1.0 / math.sqrt(4 * C)}
    params = {}
    for name, shape in tensor_shapes(pe):
        x = torch.randn(shape, generator=gen)
        if name in scale:
            x = x * scale[name]
        elif name.endswith("w"):          # LayerNorm gains around 1
            x = 1.0 + 0.2 * x
        else:                             # biases
            x = 0.1 * x
        params[name] = x.float().double().requires_grad_(True)
    return params


def rope_interleaved(x, base):
    """x (B, NH, T, HS): rotate pairs (2i, 2i+1) by t * base^(-2i/HS)."""
    T, HS = x.shape[2], x.shape[3]
    inv = 1.0 / base ** (torch.arange(0, HS, 2, dtype=torch.float64) / HS)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]   # (T, HS/2)
    cos, sin = torch.cos(ang), torch.sin(ang)
    x0, x1 = x[..., 0::2], x[..., 1::2]
    y0 = x0 * cos - x1 * sin
    y1 = x0 * sin + x1 * cos
    return torch.stack((y0, y1), dim=-1).flatten(-2)


def forward(p, pe, inp, tgt):
    V, L, NH, C = CFG["V"], CFG["L"], CFG["NH"], CFG["C"]
    B, T = inp.shape
    HS = C // NH
    x = p["wte"][inp]
    if pe == PE_LEARNED:
        x = x + p["wpe"][:T][None]
    elif pe == PE_SINUSOIDAL:
        i2 = torch.arange(0, C, 2, dtype=torch.float64)
        ang = torch.arange(T, dtype=torch.float64)[:, None] / 10000.0 ** (i2 / C)[None, :]
        table = torch.stack((torch.sin(ang), torch.cos(ang)), dim=-1).flatten(-2)[:, :C]
        x = x * math.sqrt(C) + table[None]
    slopes = 2.0 ** (-8.0 * torch.arange(1, NH + 1, dtype=torch.float64) / NH)
    dist = (torch.arange(T)[:, None] - torch.arange(T)[None, :]).double()   # t - j
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for l in range(L):
        h = F.layer_norm(x, (C,), p["ln1w"][l], p["ln1b"][l], eps=1e-5)
        qkv = h @ p["qkvw"][l].T + p["qkvb"][l]
        q, k, v = qkv.split(C, dim=-1)
        q, k, v = (t.view(B, T, NH, HS).transpose(1, 2) for t in (q, k, v))
        if pe == PE_ROPE:
            q = rope_interleaved(q, OPT["rope_base"])
            k = rope_interleaved(k, OPT["rope_base"])
        s = (q @ k.transpose(-1, -2)) / math.sqrt(HS)
        if pe == PE_ALIBI:
            s = s - slopes[None, :, None, None] * dist[None, None]
        s = s.masked_fill(~mask, float("-inf"))
        y = F.softmax(s, dim=-1) @ v
        y = y.transpose(1, 2).reshape(B, T, C)
        x = x + y @ p["attprojw"][l].T + p["attprojb"][l]
        h = F.layer_norm(x, (C,), p["ln2w"][l], p["ln2b"][l], eps=1e-5)
        h = F.gelu(h @ p["fcw"][l].T + p["fcb"][l], approximate="tanh")
        x = x + h @ p["fcprojw"][l].T + p["fcprojb"][l]
    x = F.layer_norm(x, (C,), p["lnfw"], p["lnfb"], eps=1e-5)
    logits = x @ p["wte"].T
    loss = F.cross_entropy(logits.view(-1, V), tgt.view(-1))
    return logits, loss


def get_lr(it):
    """nanoGPT train.py get_lr."""
    o = OPT
    if it < o["warmup"]:
        return o["lr"] * (it + 1) / (o["warmup"] + 1)
    if it > o["max_steps"]:
        return o["min_lr"]
    ratio = (it - o["warmup"]) / (o["max_steps"] - o["warmup"])
    return o["min_lr"] + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (o["lr"] - o["min_lr"])


def flat(tensors, names):
    return torch.cat([tensors[n].detach().reshape(-1) for n in names])


def fnv1a(data):
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def generate(pe, seed):
    gen = torch.Generator().manual_seed(seed)
    names = [n for n, _ in tensor_shapes(pe)]
    p = make_params(pe, gen)
    live = [n for n in names if p[n].numel() > 0]   # wpe is empty without PE_LEARNED
    B, T, V = CFG["B"], CFG["T"], CFG["V"]
    inp = torch.randint(0, V, (B, T), generator=gen)
    tgt = torch.randint(0, V, (B, T), generator=gen)
    params0 = flat(p, names)

    logits, loss = forward(p, pe, inp, tgt)
    loss.backward()
    grads = flat({n: p[n].grad if n in live else p[n] for n in names}, names)
    logits0, loss0 = logits.detach(), loss.item()

    # 10 AdamW steps on the same batch, starting again from the same weights.
    for n in live:
        p[n].grad = None
    groups = [{"params": [p[n] for n in live if n in DECAYED], "weight_decay": OPT["weight_decay"]},
              {"params": [p[n] for n in live if n not in DECAYED], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=OPT["lr"], betas=(OPT["beta1"], OPT["beta2"]),
                            eps=OPT["eps"], foreach=False)
    step_loss, step_norm = [], []
    for it in range(OPT["n_steps"]):
        for g in opt.param_groups:
            g["lr"] = get_lr(it)
        opt.zero_grad(set_to_none=True)
        _, loss = forward(p, pe, inp, tgt)
        loss.backward()
        step_loss.append(loss.item())
        norm = math.sqrt(sum(float((p[n].grad ** 2).sum()) for n in live))
        step_norm.append(norm)
        if norm > OPT["grad_clip"]:
            for n in live:
                p[n].grad.mul_(OPT["grad_clip"] / norm)
        opt.step()
    with torch.no_grad():
        _, loss = forward(p, pe, inp, tgt)
    step_loss.append(loss.item())
    final = flat(p, names)

    def f32(t):
        return t.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()

    def i32(t):
        return t.to(torch.int32).contiguous().numpy().astype("<i4").tobytes()

    ints = [V, CFG["L"], CFG["NH"], CFG["C"], CFG["maxT"], B, T, pe, 0, CFG["C"] // CFG["NH"],
            OPT["n_steps"], OPT["warmup"], OPT["max_steps"]]
    dbls = [OPT[k] for k in ("rope_base", "lr", "min_lr", "beta1", "beta2", "eps",
                             "weight_decay", "grad_clip")]
    header_bytes = 8 + 4 + 4 + 4 * len(ints) + 8 * len(dbls) + 8
    body = b"RGPTREF1" + struct.pack("<II", 1, header_bytes)
    body += struct.pack("<%di" % len(ints), *ints) + struct.pack("<%dd" % len(dbls), *dbls)
    body += struct.pack("<Q", params0.numel())
    assert len(body) == header_bytes
    body += f32(params0) + i32(inp) + i32(tgt) + f32(logits0) + struct.pack("<f", loss0)
    body += f32(grads) + struct.pack("<%df" % len(step_loss), *step_loss)
    body += struct.pack("<%df" % len(step_norm), *step_norm) + f32(final)
    body += struct.pack("<I", fnv1a(body))
    return body, loss0, step_loss, step_norm


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    for pe, name in ((PE_NONE, "none"), (PE_LEARNED, "learned"), (PE_SINUSOIDAL, "sinusoidal"),
                     (PE_ROPE, "rope"), (PE_ALIBI, "alibi")):
        seed = 1234
        body, loss0, sl, sn = generate(pe, seed)
        path = os.path.join(here, "gpt_ref_%s.bin" % name)
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(body)
        os.replace(tmp, path)
        print("%s: %d bytes, loss %.6f, losses %s, norms %s" % (
            path, len(body), loss0, " ".join("%.4f" % x for x in sl),
            " ".join("%.3f" % x for x in sn)))


if __name__ == "__main__":
    main()
