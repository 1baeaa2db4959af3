"""transformers' lr schedules (constant with warmup, linear, cosine) behind LambdaLR: the lr of each
optimizer step for several (warmup, total) pairs, base lr 1. Usage: schedules_reference.py <out.json>"""
import json
import sys

import torch
from transformers import (
    get_constant_schedule_with_warmup,
    get_cosine_schedule_with_warmup,
    get_linear_schedule_with_warmup,
)

cases = []
for kind in ["constant_with_warmup", "linear", "cosine"]:
    for warmup, total in [(0, 10), (3, 20), (5, 5), (1, 2), (10, 100)]:
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        if kind == "constant_with_warmup":
            sched = get_constant_schedule_with_warmup(opt, warmup)
        elif kind == "linear":
            sched = get_linear_schedule_with_warmup(opt, warmup, total)
        else:
            sched = get_cosine_schedule_with_warmup(opt, warmup, total)
        lrs = []
        # Two steps past the end: schedules must clamp at 0 (linear/cosine) like transformers.
        for _ in range(total + 3):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        cases.append({"type": kind, "warmup": warmup, "total": total, "lrs": lrs})
json.dump(cases, open(sys.argv[1], "w"))
