"""torch.optim.AdamW + clip_grad_norm_ + transformers' cosine warmup schedule on the parameters and
gradients the TypeScript test wrote; writes the final parameters, optimizer state, per-step lrs and
pre-clip norms for the test to compare. Usage: adamw_reference.py <inputs.safetensors> <spec.json> <out dir>"""
import json
import os
import sys

import torch
from safetensors.torch import load_file, save_file
from transformers import get_cosine_schedule_with_warmup

torch.set_num_threads(1)
inputs = load_file(sys.argv[1])
spec = json.load(open(sys.argv[2]))
out = sys.argv[3]

params = {name: torch.nn.Parameter(inputs[f"init.{name}"].clone()) for name in spec["names"]}
groups = [
    {"params": [params[n] for n in g["names"]], "lr": g["lr"], "weight_decay": g["weight_decay"]}
    for g in spec["groups"]
]
opt = torch.optim.AdamW(groups, lr=spec["lr"], betas=tuple(spec["betas"]), eps=spec["eps"], weight_decay=spec["weight_decay"])
sched = get_cosine_schedule_with_warmup(opt, spec["warmup"], spec["total"])
lrs, norms = [], []
for step in range(spec["steps"]):
    for name, p in params.items():
        p.grad = inputs[f"grad.{step}.{name}"].clone()
    norm = torch.nn.utils.clip_grad_norm_(list(params.values()), spec["max_norm"])
    norms.append(float(norm))
    lrs.append([g["lr"] for g in opt.param_groups])
    opt.step()
    sched.step()

result = {f"param.{n}": p.detach().clone() for n, p in params.items()}
for n, p in params.items():
    st = opt.state[p]
    result[f"exp_avg.{n}"] = st["exp_avg"].clone()
    result[f"exp_avg_sq.{n}"] = st["exp_avg_sq"].clone()
    result[f"step.{n}"] = st["step"].clone().reshape(())
save_file(result, os.path.join(out, "torch-result.safetensors"))
json.dump({"lrs": lrs, "norms": norms}, open(os.path.join(out, "torch-result.json"), "w"))
