"""Logits of a tiny LlavaForConditionalGeneration with a Vlit-trained projector and a Vlit-written PEFT
adapter folder loaded by PeftModel.from_pretrained (image features fed, spliced as LlavaModel does).
Usage: peft_logits.py <config.json> <in.safetensors> <trained.safetensors> <adapter_dir> <out.safetensors>"""
import json
import sys

import torch
from peft import PeftModel
from safetensors.torch import load_file, save_file

from tiny_llava import batch, build_model, splice_image_features

torch.set_num_threads(1)
cfg = json.load(open(sys.argv[1]))
data = load_file(sys.argv[2])
# The trained projector comes under its transformers names.
model = build_model(cfg, data, load_file(sys.argv[3]))
model = PeftModel.from_pretrained(model, sys.argv[4]).eval()

ids, mask, image_mask, features = batch(data)
with torch.no_grad():
    projected = model.base_model.model.model.multi_modal_projector(features)
    embeds = splice_image_features(model.get_input_embeddings()(ids), image_mask, projected)
    logits = model(inputs_embeds=embeds, attention_mask=mask).logits
save_file({"logits": logits.contiguous()}, sys.argv[5])
