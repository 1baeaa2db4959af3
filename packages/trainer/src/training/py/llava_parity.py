"""Reference for the training-graph parity test: transformers' LlavaForConditionalGeneration (CLIP
vision tower unused: image features are fed, as Vlit feeds them from the encoder cache) with peft LoRA
on q_proj / v_proj, loss and torch autograd gradients on one batch, then torch.optim.AdamW steps.
Usage: llava_parity.py <config.json> <in.safetensors> <out.safetensors>"""
import json
import sys

import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import load_file, save_file
from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

torch.set_num_threads(1)
torch.manual_seed(0)
cfg = json.load(open(sys.argv[1]))
data = load_file(sys.argv[2])

text = LlamaConfig(**cfg["text_config"])
vision = CLIPVisionConfig(hidden_size=cfg["feature_dim"], intermediate_size=16, num_hidden_layers=1, num_attention_heads=2, image_size=28, patch_size=14)
config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=cfg["image_token_id"], projector_hidden_act="gelu", multimodal_projector_bias=True)
config._attn_implementation = "eager"
model = LlavaForConditionalGeneration(config).float()
weights = {k[len("weight."):]: v for k, v in data.items() if k.startswith("weight.")}
missing, unexpected = model.load_state_dict(weights, strict=False)
assert not unexpected, unexpected
assert all(k.startswith("model.vision_tower.") for k in missing), [k for k in missing if not k.startswith("model.vision_tower.")]

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

ids = data["batch.input_ids"].long()
mask = data["batch.attention_mask"].long()
labels = data["batch.labels"].long()
image_mask = data["batch.image_mask"].bool()
features = data["batch.features"].float()


def loss_fn():
    embeds = peft_model.get_input_embeddings()(ids)
    projected = projector(features)
    # LlavaModel.forward splices image features in exactly this way (masked_scatter in row-major order).
    embeds = embeds.masked_scatter(image_mask.unsqueeze(-1).expand_as(embeds), projected.reshape(-1, projected.shape[-1]).to(embeds.dtype))
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
