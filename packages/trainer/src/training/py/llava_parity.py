"""Reference for the training-graph parity test: transformers' LlavaForConditionalGeneration (CLIP
vision tower unused: image features are fed, as Vlit feeds them from the encoder cache) with peft LoRA
on q_proj / v_proj, loss and torch autograd gradients on one batch, then torch.optim.AdamW steps.
Usage: llava_parity.py <config.json> <in.safetensors> <out.safetensors>"""
import json
import sys

import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import load_file, save_file

from tiny_llava import batch, build_model, splice_image_features

torch.set_num_threads(1)
torch.manual_seed(0)
cfg = json.load(open(sys.argv[1]))
data = load_file(sys.argv[2])
model = build_model(cfg, data)

peft_model = get_peft_model(model, LoraConfig(r=cfg["r"], lora_alpha=cfg["alpha"], target_modules=["q_proj", "v_proj"], lora_dropout=0.0))
lora = {k[len("lora."):]: v for k, v in data.items() if k.startswith("lora.")}
named = {}
for name, module in peft_model.named_modules():
    if hasattr(module, "lora_A") and "default" in module.lora_A:
        path = name[len("base_model.model."):]
        if path.startswith("model.vision_tower."):
            continue
        with torch.no_grad():
            module.lora_A["default"].weight.copy_(lora[f"{path}.lora_A.weight"])
            module.lora_B["default"].weight.copy_(lora[f"{path}.lora_B.weight"])
        named[f"{path}.lora_A.weight"] = module.lora_A["default"].weight
        named[f"{path}.lora_B.weight"] = module.lora_B["default"].weight
assert len(named) == len(lora), (sorted(named), sorted(lora))
projector = peft_model.base_model.model.model.multi_modal_projector
for n, p in projector.named_parameters():
    p.requires_grad_(True)
    named[f"model.multi_modal_projector.{n}"] = p
peft_model.eval()  # no dropout anywhere; LoRA dropout is 0

ids, mask, image_mask, features = batch(data)
labels = data["batch.labels"].long()


def loss_fn():
    embeds = splice_image_features(peft_model.get_input_embeddings()(ids), image_mask, projector(features))
    return peft_model(inputs_embeds=embeds, attention_mask=mask, labels=labels).loss


out = {}
loss = loss_fn()
loss.backward()
out["loss"] = loss.detach().reshape(1)
for k, p in named.items():
    out[f"grad.{k}"] = p.grad.detach().clone()
    p.grad = None

params = list(named.values())
opt = torch.optim.AdamW(params, lr=cfg["lr"], betas=tuple(cfg["betas"]), eps=cfg["eps"], weight_decay=cfg["weight_decay"])
for _ in range(cfg["steps"]):
    opt.zero_grad()
    loss_fn().backward()
    opt.step()
for k, p in named.items():
    out[f"final.{k}"] = p.detach().clone()
save_file({k: v.contiguous() for k, v in out.items()}, sys.argv[3])
