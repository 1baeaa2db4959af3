"""torch autograd in float64 as the reference for Vlit's ONNX gradient graphs.

usage: autodiff_reference.py IN.safetensors OUT.safetensors CASE WRT[,WRT...]
Reads the feeds Vlit used, recomputes the case's forward pass in float64 with torch, and writes
`loss` and `grad.<name>` for every name in WRT (all float64).
"""
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

torch.set_num_threads(1)


def sin_loss(out):
    return torch.sin(out).sum()


def mlp_ce(t):
    # LLaVA's projector (Linear, GELU, Linear) then a frozen LM head and the shifted, masked
    # next-token cross-entropy transformers' causal LM computes.
    h = F.gelu(t["features"] @ t["fc1.weight"].T + t["fc1.bias"])
    h = h @ t["fc2.weight"].T + t["fc2.bias"]
    logits = h @ t["lm_head.weight"].T
    v = logits.shape[-1]
    return F.cross_entropy(logits[:, :-1].reshape(-1, v), t["labels"][:, 1:].reshape(-1), ignore_index=-100)


def llama_block(t):
    # One Llama decoder layer's attention half, as written in transformers' modeling_llama (eager).
    x = t["x"]
    b, s, h = x.shape
    nh, kvh, hd = 4, 2, h // 4

    def rms(v, w):
        return v * torch.rsqrt(v.pow(2).mean(-1, keepdim=True) + 1e-6) * w

    n = rms(x, t["input_layernorm.weight"])
    q = (n @ t["q_proj.weight"].T).view(b, s, nh, hd).transpose(1, 2)
    k = (n @ t["k_proj.weight"].T).view(b, s, kvh, hd).transpose(1, 2)
    v = (n @ t["v_proj.weight"].T).view(b, s, kvh, hd).transpose(1, 2)
    pos = torch.arange(s, dtype=torch.float64)
    inv = 1.0 / (10000.0 ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    ang = torch.cat([torch.outer(pos, inv)] * 2, dim=-1)
    cos, sin = ang.cos()[None, None], ang.sin()[None, None]

    def rot(u):
        return torch.cat([-u[..., hd // 2 :], u[..., : hd // 2]], dim=-1)

    q = q * cos + rot(q) * sin
    k = k * cos + rot(k) * sin
    k = k.repeat_interleave(nh // kvh, dim=1)
    v = v.repeat_interleave(nh // kvh, dim=1)
    scores = q @ k.transpose(-1, -2) / hd**0.5
    causal = torch.ones(s, s, dtype=torch.bool).tril()
    scores = scores.masked_fill(~causal, -1e9)
    ctx = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, s, nh * hd)
    out = x + ctx @ t["o_proj.weight"].T
    return sin_loss(out)


CASES = {
    "gelu": lambda t: sin_loss(F.gelu(t["x"] * t["w"])),
    "erf": lambda t: sin_loss(torch.erf(t["x"] * t["w"])),
    "conv": lambda t: sin_loss(F.conv2d(t["pixels"], t["weight"], t["bias"], stride=4)),
    "avgpool": lambda t: sin_loss(F.avg_pool2d(t["x"] * t["w"], kernel_size=(2, 3), stride=(2, 3))),
    "mlp_ce": mlp_ce,
    "llama_block": llama_block,
}


def main():
    src, dst, case, wrt = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(",")
    t = {}
    for name, value in load_file(src).items():
        if value.is_floating_point():
            value = value.to(torch.float64).requires_grad_(name in wrt)
        t[name] = value
    loss = CASES[case](t)
    loss.backward()
    out = {"loss": loss.detach().reshape(())}
    for name in wrt:
        out["grad." + name] = t[name].grad.contiguous()
    save_file(out, dst)


if __name__ == "__main__":
    main()
