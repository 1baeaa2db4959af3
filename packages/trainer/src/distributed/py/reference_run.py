"""Single-process reference of a two-stage tiny LLaVA run: plain transformers + peft + torch, no DDP,
no micro-batches. Each optimiser step is one forward/backward over the whole global batch (the
sample indices a Vlit job lists for that step, read from the job's data shards), loss = summed
token cross-entropy / trained tokens, torch clip_grad_norm_, torch AdamW, transformers' cosine
schedule. Hyperparameters come from the test as JSON, not from the job.

Usage: reference_run.py <spec.json> <out.json>
spec: {model, seed, stages: [{job, out, lr, weightDecay, warmup, clip, lora: null | {r, alpha}}],
       ours: {model, adapter, base}}  (ours: the distributed run's final folders, to compare logits)
"""
import json
import sys

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors import safe_open
from safetensors.torch import load_file
from transformers import LlavaForConditionalGeneration, get_cosine_schedule_with_warmup

torch.set_num_threads(1)
spec = json.load(open(sys.argv[1]))


def load_samples(job):
    out = {}
    for s in job["shards"]:
        h = safe_open(s["file"], "pt")
        t = {k: h.get_tensor(k) for k in h.keys()}
        off = t["sample_offsets"].tolist()
        ioff = t["image_offsets"].tolist()
        for i in range(s["count"]):
            a, b = off[i], off[i + 1]
            spans = [row for row in t["image_spans"].tolist() if row[0] == i]
            out[s["first"] + i] = {
                "ids": t["input_ids"][a:b],
                "labels": t["labels"][a:b],
                "spans": spans,
                "pixels": t["pixel_values"][ioff[i] : ioff[i + 1]],
            }
    return out


def batch_of(samples, idx):
    rows = [samples[i] for i in idx]
    T = max(len(r["ids"]) for r in rows)
    ids = torch.zeros(len(rows), T, dtype=torch.long)
    labels = torch.full((len(rows), T), -100, dtype=torch.long)
    mask = torch.zeros(len(rows), T, dtype=torch.long)
    pixels = []
    for k, r in enumerate(rows):
        n = len(r["ids"])
        ids[k, :n], labels[k, :n], mask[k, :n] = r["ids"], r["labels"], 1
        for _, image, start, end in sorted(r["spans"], key=lambda s: s[2]):
            ids[k, start:end] = 99
            pixels.append(r["pixels"][image])
    return ids, labels, mask, torch.stack(pixels)


def logits_of(model, batch):
    ids, _, mask, pixels = batch
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask, pixel_values=pixels).logits


model = LlavaForConditionalGeneration.from_pretrained(spec["model"], dtype=torch.float32)
result = {"stages": []}
probe = None
for st in spec["stages"]:
    job = json.load(open(st["job"]))
    samples = load_samples(job)
    if probe is None:
        probe = batch_of(samples, sorted(samples)[:6])
    for p in model.parameters():
        p.requires_grad_(False)
    if st["lora"]:
        torch.manual_seed(spec["seed"])
        cfg = LoraConfig(r=st["lora"]["r"], lora_alpha=st["lora"]["alpha"], lora_dropout=0.0, target_modules=r".*language_model.*\.(q_proj|v_proj)")
        model = get_peft_model(model, cfg)
    trained = [(n, p) for n, p in model.named_parameters() if "multi_modal_projector" in n or "lora_" in n]
    for _, p in trained:
        p.requires_grad_(True)
    groups = [{"params": [p], "weight_decay": 0.0 if (n.endswith(".bias") or "norm" in n.lower()) else st["weightDecay"]} for n, p in trained]
    opt = torch.optim.AdamW(groups, lr=st["lr"], betas=(0.9, 0.999), eps=1e-8)
    total = len(job["steps"])
    sched = get_cosine_schedule_with_warmup(opt, st["warmup"], total)
    losses = []
    model.train()
    for step in job["steps"]:
        ids, labels, mask, pixels = batch_of(samples, step["samples"])
        logits = model(input_ids=ids, attention_mask=mask, pixel_values=pixels).logits.float()
        lab = labels[:, 1:].reshape(-1)
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), lab, ignore_index=-100, reduction="sum") / (lab != -100).sum()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in trained], st["clip"])
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(loss))
    model.eval()
    if st["lora"]:
        model = model.merge_and_unload()
    model.save_pretrained(st["out"])
    result["stages"].append({"losses": losses})

ours = spec["ours"]
ref_logits = logits_of(model, probe)
merged = LlavaForConditionalGeneration.from_pretrained(ours["model"], dtype=torch.float32).eval()
result["mergedLogitsMaxDiff"] = float((logits_of(merged, probe) - ref_logits).abs().max())
# The adapter route: stage-1 base + PEFT adapter + the projector saved beside it.
base = LlavaForConditionalGeneration.from_pretrained(ours["base"], dtype=torch.float32)
with_adapter = PeftModel.from_pretrained(base, ours["adapter"]).eval()
extra = load_file(f"{ours['adapter']}/non_lora_trainables.safetensors")
params = dict(with_adapter.named_parameters())
with torch.no_grad():
    for name, value in extra.items():
        params["base_model.model." + name].copy_(value)
result["adapterLogitsMaxDiff"] = float((logits_of(with_adapter, probe) - ref_logits).abs().max())
result["logitsMaxAbs"] = float(ref_logits.abs().max())
json.dump(result, open(sys.argv[2], "w"))
