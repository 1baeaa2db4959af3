"""Logits of a tiny LlavaForConditionalGeneration with a Vlit-trained projector and a Vlit-written PEFT
adapter folder loaded by PeftModel.from_pretrained (image features fed, spliced as LlavaModel does).
Usage: peft_logits.py <config.json> <in.safetensors> <trained.safetensors> <adapter_dir> <out.safetensors>"""
import json
import sys

import torch
from peft import PeftModel
from safetensors.torch import load_file, save_file
from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

torch.set_num_threads(1)
cfg = json.load(open(sys.argv[1]))
data = load_file(sys.argv[2])
text = LlamaConfig(**cfg["text_config"])
vision = CLIPVisionConfig(hidden_size=cfg["feature_dim"], intermediate_size=16, num_hidden_layers=1, num_attention_heads=2, image_size=28, patch_size=14)
config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=cfg["image_token_id"], projector_hidden_act="gelu", multimodal_projector_bias=True)
config._attn_implementation = "eager"
model = LlavaForConditionalGeneration(config).float()
state = {k[len("weight."):]: v for k, v in data.items() if k.startswith("weight.")}
state.update(load_file(sys.argv[3]))  # the trained projector, under its transformers names
missing, unexpected = model.load_state_dict(state, strict=False)
assert not unexpected, unexpected
assert all(k.startswith("model.vision_tower.") for k in missing), missing
model = PeftModel.from_pretrained(model, sys.argv[4]).eval()

ids = data["batch.input_ids"].long()
mask = data["batch.attention_mask"].long()
image_mask = data["batch.image_mask"].bool()
features = data["batch.features"].float()
with torch.no_grad():
    embeds = model.get_input_embeddings()(ids)
    projected = model.base_model.model.model.multi_modal_projector(features)
    embeds = embeds.masked_scatter(image_mask.unsqueeze(-1).expand_as(embeds), projected.reshape(-1, projected.shape[-1]))
    logits = model(inputs_embeds=embeds, attention_mask=mask).logits
save_file({"logits": logits.contiguous()}, sys.argv[5])
