#!/usr/bin/python3
"""gen_rope_ref.py -- writes tests/ref/rope_freqs_ref.txt, the reference
inverse frequencies and attention factors that tests/test_rope_ref.c compares
librope's rope_freqs() against.

The formulas are re-implemented here in PyTorch float64, vectorised over the
pairs the way the published sources write them (Hugging Face
modeling_rope_utils.py: 1 / base ** (arange(0, d, 2) / d), torch.where bands,
a clamped ramp), independently of the C code (which works per pair with
pow(base, -2i/d)). Sources per scaling:
  linear    Chen et al. 2023, arXiv:2306.15595 (Position Interpolation)
  ntk       bloc97 / exllama #126: base * s ** (d / (d - 2))
  dynamic   HF _compute_dynamic_ntk_parameters (emozilla)
  yarn      Peng et al. 2023, arXiv:2309.00071; HF _compute_yarn_parameters;
            vLLM's extrapolation_factor; DeepSeek mscale ratio
  llama3    Meta llama-models apply_scaling; HF _compute_llama3_parameters
  longrope  Ding et al. 2024, arXiv:2402.13753; HF _compute_longrope_parameters
  freq_factors  ggml freq_factors: theta / f
Run:  /usr/bin/python3 tests/ref/gen_rope_ref.py   (CI never runs Python; the
fixture is committed.)
"""
import math
import os

import torch

torch.set_default_dtype(torch.float64)

DEFAULTS = dict(head_dim=64, rotary_dim=64, base=10000.0, scaling="none", factor=1.0,
                original_max_positions=2048, attention_factor=float("nan"),
                beta_fast=32.0, beta_slow=1.0, mscale=0.0, mscale_all_dim=0.0,
                extrapolation_factor=1.0, truncate=1, low_freq_factor=1.0,
                high_freq_factor=4.0, short_factor=None, long_factor=None, seq_len=0)


def pair_exponents(d):
    return torch.arange(0, d, 2, dtype=torch.float64) / d


def default_inv(base, d):
    return 1.0 / (base ** pair_exponents(d))


def ref_none(c):
    return default_inv(c["base"], c["rotary_dim"]), 1.0


def ref_linear(c):
    return default_inv(c["base"], c["rotary_dim"]) / c["factor"], 1.0


def ref_ntk(c):
    d = c["rotary_dim"]
    return default_inv(c["base"] * c["factor"] ** (d / (d - 2)), d), 1.0


def ref_dynamic(c):
    d, s, l0 = c["rotary_dim"], c["factor"], c["original_max_positions"]
    n = max(c["seq_len"], l0)
    base = c["base"] * ((s * n / l0) - (s - 1)) ** (d / (d - 2))
    return default_inv(base, d), 1.0


def yarn_mscale(s, m=1.0):
    return 1.0 if s <= 1 else 0.1 * m * math.log(s) + 1.0


def ref_yarn(c):
    d, s, base, l0 = c["rotary_dim"], c["factor"], c["base"], c["original_max_positions"]

    def corr_dim(n_rot):
        return (d * math.log(l0 / (n_rot * 2 * math.pi))) / (2 * math.log(base))

    low, high = corr_dim(c["beta_fast"]), corr_dim(c["beta_slow"])
    if c["truncate"]:
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, d - 1)
    if low == high:
        high += 0.001
    ramp = torch.clamp((torch.arange(d // 2, dtype=torch.float64) - low) / (high - low), 0, 1)
    extrap = (1 - ramp) * c["extrapolation_factor"]
    pos_freqs = base ** pair_exponents(d)
    inv = (1.0 / (s * pos_freqs)) * (1 - extrap) + (1.0 / pos_freqs) * extrap
    if c["mscale"] and c["mscale_all_dim"]:
        attn = yarn_mscale(s, c["mscale"]) / yarn_mscale(s, c["mscale_all_dim"])
    else:
        attn = yarn_mscale(s)
    return inv, attn


def ref_llama3(c):
    s, lf, hf, l0 = c["factor"], c["low_freq_factor"], c["high_freq_factor"], c["original_max_positions"]
    inv0 = default_inv(c["base"], c["rotary_dim"])
    wavelen = 2 * math.pi / inv0
    inv = torch.where(wavelen > l0 / lf, inv0 / s, inv0)
    smooth = (l0 / wavelen - lf) / (hf - lf)
    smoothed = (1 - smooth) * inv / s + smooth * inv
    medium = ~(wavelen < l0 / hf) & ~(wavelen > l0 / lf)
    return torch.where(medium, smoothed, inv), 1.0


def ref_longrope(c):
    d, s, l0 = c["rotary_dim"], c["factor"], c["original_max_positions"]
    ext = torch.tensor(c["long_factor"] if c["seq_len"] > l0 else c["short_factor"])
    inv = 1.0 / (ext * c["base"] ** pair_exponents(d))
    attn = 1.0 if s <= 1 else math.sqrt(1 + math.log(s) / math.log(l0))
    return inv, attn


def ref_freq_factors(c):
    return default_inv(c["base"], c["rotary_dim"]) / torch.tensor(c["short_factor"]), 1.0


REFS = dict(none=ref_none, linear=ref_linear, ntk=ref_ntk, dynamic=ref_dynamic, yarn=ref_yarn,
            llama3=ref_llama3, longrope=ref_longrope, freq_factors=ref_freq_factors)


def expected(c):
    inv, attn = REFS[c["scaling"]](c)
    if not math.isnan(c["attention_factor"]):
        attn = c["attention_factor"]   # an explicit value is used as is
    return inv, attn


def made_up(n, lo, hi, k):
    """Deterministic, non-monotone per-pair factors in [lo, hi]."""
    return [lo + (hi - lo) * (0.5 + 0.5 * math.sin(1.7 * i + k)) for i in range(n)]


def cases():
    C = []

    def add(name, **kw):
        c = dict(DEFAULTS)
        c.update(kw)
        C.append((name, c))

    add("default_d64")
    add("default_d128_b500k", head_dim=128, rotary_dim=128, base=500000.0)
    add("partial_32_of_64", head_dim=64, rotary_dim=32)
    add("linear_s4", scaling="linear", factor=4.0)
    add("linear_s4_partial", scaling="linear", factor=4.0, head_dim=64, rotary_dim=32)
    add("ntk_s4", scaling="ntk", factor=4.0)
    add("ntk_s4_d128_b500k", scaling="ntk", factor=4.0, head_dim=128, rotary_dim=128, base=500000.0)
    add("dynamic_s10_n16384", scaling="dynamic", factor=10.0, original_max_positions=2048, seq_len=16384)
    add("dynamic_s10_n1000", scaling="dynamic", factor=10.0, original_max_positions=2048, seq_len=1000)
    add("dynamic_s10_n16384_partial", scaling="dynamic", factor=10.0, original_max_positions=2048,
        seq_len=16384, head_dim=64, rotary_dim=32)
    add("yarn_s10_L2048_d64", scaling="yarn", factor=10.0, original_max_positions=2048)
    add("yarn_s10_L2048_d128_b500k", scaling="yarn", factor=10.0, original_max_positions=2048,
        head_dim=128, rotary_dim=128, base=500000.0)
    add("yarn_s10_L2048_d128_b10k", scaling="yarn", factor=10.0, original_max_positions=2048,
        head_dim=128, rotary_dim=128)
    add("yarn_s40_mscale_ratio", scaling="yarn", factor=40.0, original_max_positions=4096,
        head_dim=128, rotary_dim=64, mscale=1.0, mscale_all_dim=0.707)
    add("yarn_s40_mscale_only", scaling="yarn", factor=40.0, original_max_positions=4096,
        mscale=0.707, mscale_all_dim=0.0)
    add("yarn_s8_notrunc_betas_ext", scaling="yarn", factor=8.0, original_max_positions=4096,
        truncate=0, beta_fast=16.0, beta_slow=2.0, extrapolation_factor=0.7465)
    add("yarn_s4_explicit_attn", scaling="yarn", factor=4.0, original_max_positions=2048,
        attention_factor=0.5, head_dim=64, rotary_dim=32)
    add("llama3_s8_L8192_b500k", scaling="llama3", factor=8.0, original_max_positions=8192,
        head_dim=128, rotary_dim=128, base=500000.0)
    add("llama3_s10_L2048_b500k", scaling="llama3", factor=10.0, original_max_positions=2048,
        head_dim=128, rotary_dim=128, base=500000.0)
    add("llama3_s10_L2048_lf2_hf8_d64", scaling="llama3", factor=10.0, original_max_positions=2048,
        low_freq_factor=2.0, high_freq_factor=8.0)
    sf, lf = made_up(32, 1.0, 1.3, 0.3), made_up(32, 1.0, 30.0, 1.1)
    add("longrope_s8_short", scaling="longrope", factor=8.0, original_max_positions=4096,
        short_factor=sf, long_factor=lf, seq_len=4096)
    add("longrope_s8_long", scaling="longrope", factor=8.0, original_max_positions=4096,
        short_factor=sf, long_factor=lf, seq_len=4097)
    add("longrope_s32_long_partial", scaling="longrope", factor=32.0, original_max_positions=4096,
        head_dim=64, rotary_dim=32, short_factor=sf[:16], long_factor=lf[:16], seq_len=131072)
    add("freq_factors_d64", scaling="freq_factors", short_factor=made_up(32, 0.9, 1.1, 2.0))
    add("freq_factors_partial_b500k", scaling="freq_factors", head_dim=128, rotary_dim=64,
        base=500000.0, short_factor=made_up(32, 1.0, 8.0, 0.7))
    return C


def fmt(x):
    return "nan" if math.isnan(x) else "%.17g" % x


def arr(v):
    return "0" if v is None else "%d %s" % (len(v), " ".join(fmt(float(x)) for x in v))


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rope_freqs_ref.txt")
    C = cases()
    lines = ["# rope_freqs_ref: written by tests/ref/gen_rope_ref.py (PyTorch %s, float64)."
             % torch.__version__,
             "# Per case: config, seq_len, expected attention factor and inv_freq (all pairs).",
             "rope_freqs_ref 1", "ncases %d" % len(C)]
    for name, c in C:
        inv, attn = expected(c)
        assert inv.dtype == torch.float64 and inv.numel() == c["rotary_dim"] // 2
        lines += ["case %s" % name,
                  "head_dim %d" % c["head_dim"], "rotary_dim %d" % c["rotary_dim"],
                  "base %s" % fmt(c["base"]), "scaling %s" % c["scaling"],
                  "factor %s" % fmt(c["factor"]),
                  "original_max_positions %d" % c["original_max_positions"],
                  "attention_factor %s" % fmt(c["attention_factor"]),
                  "beta_fast %s" % fmt(c["beta_fast"]), "beta_slow %s" % fmt(c["beta_slow"]),
                  "mscale %s" % fmt(c["mscale"]), "mscale_all_dim %s" % fmt(c["mscale_all_dim"]),
                  "extrapolation_factor %s" % fmt(c["extrapolation_factor"]),
                  "truncate %d" % c["truncate"],
                  "low_freq_factor %s" % fmt(c["low_freq_factor"]),
                  "high_freq_factor %s" % fmt(c["high_freq_factor"]),
                  "short_factor %s" % arr(c["short_factor"]),
                  "long_factor %s" % arr(c["long_factor"]),
                  "seq_len %d" % c["seq_len"],
                  "expect_attention %s" % fmt(attn),
                  "expect_inv %s" % arr(inv.tolist()),
                  "end"]
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote %s (%d cases)" % (out, len(C)))


if __name__ == "__main__":
    main()
