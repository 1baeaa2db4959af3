"""PyTorch side of bench/train-step.mjs: the same projector + Llama decoder + peft LoRA, the same
weights and batch (from the safetensors file the bench writes), timed for forward + backward +
torch.optim.AdamW step in eager mode. Usage: train_step_torch.py <config.json> <in.safetensors>
Prints one JSON line: {"loss0": ..., "step_ms": [...], "torch": ..., "threads": ...}."""
import json
import sys
import time

import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import load_file
from transformers import LlamaConfig, LlamaForCausalLM

cfg = json.load(open(sys.argv[1]))
torch.set_num_threads(cfg["threads"])
torch.manual_seed(0)
data = load_file(sys.argv[2])

text = LlamaConfig(**cfg["text_config"])
text._attn_implementation = cfg["attn_implementation"]
model = LlamaForCausalLM(text).float()


class Projector(torch.nn.Module):
    def __init__(self, d_in, d_out):
        super().__init__()
        self.linear_1 = torch.nn.Linear(d_in, d_out)
        self.act = torch.nn.GELU()
        self.linear_2 = torch.nn.Linear(d_out, d_out)

    def forward(self, x):
        return self.linear_2(self.act(self.linear_1(x)))


projector = Projector(cfg["feature_dim"], text.hidden_size)
proj_sd = {k[len("weight.model.multi_modal_projector."):]: v for k, v in data.items() if k.startswith("weight.model.multi_modal_projector.")}
projector.load_state_dict(proj_sd, strict=True)
lm_sd = {}
for k, v in data.items():
    if k.startswith("weight.model.language_model."):
        lm_sd["model." + k[len("weight.model.language_model."):]] = v
    elif k.startswith("weight.lm_head."):
        lm_sd[k[len("weight."):]] = v
model.load_state_dict(lm_sd, strict=True)

peft_model = get_peft_model(model, LoraConfig(r=cfg["r"], lora_alpha=cfg["alpha"], target_modules=cfg["target_modules"], lora_dropout=0.0))
params = []
for name, module in peft_model.named_modules():
    if hasattr(module, "lora_A") and "default" in module.lora_A:
        path = "model.language_model." + name[len("base_model.model.model."):]
        with torch.no_grad():
            module.lora_A["default"].weight.copy_(data[f"lora.{path}.lora_A.weight"])
            module.lora_B["default"].weight.copy_(data[f"lora.{path}.lora_B.weight"])
        params += [module.lora_A["default"].weight, module.lora_B["default"].weight]
assert len(params) == cfg["lora_tensors"], (len(params), cfg["lora_tensors"])
params += list(projector.parameters())
peft_model.eval()  # LoRA dropout 0, no dropout anywhere

ids = data["batch.input_ids"].long()
mask = data["batch.attention_mask"].long()
labels = data["batch.labels"].long()
image_mask = data["batch.image_mask"].bool()
features = data["batch.features"].float()
opt = torch.optim.AdamW(params, lr=cfg["lr"], betas=(0.9, 0.999), eps=1e-8, weight_decay=cfg["weight_decay"])


def step():
    opt.zero_grad(set_to_none=True)
    embeds = peft_model.get_input_embeddings()(ids)
    projected = projector(features)
    embeds = embeds.masked_scatter(image_mask.unsqueeze(-1).expand_as(embeds), projected.reshape(-1, projected.shape[-1]))
    loss = peft_model(inputs_embeds=embeds, attention_mask=mask, labels=labels).loss
    loss.backward()
    opt.step()
    return loss.item()


times = []
loss0 = None
for i in range(cfg["warmup"] + cfg["runs"]):
    t0 = time.perf_counter()
    loss = step()
    dt = (time.perf_counter() - t0) * 1000
    if loss0 is None:
        loss0 = loss
    if i >= cfg["warmup"]:
        times.append(dt)
print(json.dumps({"loss0": loss0, "step_ms": times, "torch": torch.__version__, "threads": torch.get_num_threads(), "attn": cfg["attn_implementation"]}))
