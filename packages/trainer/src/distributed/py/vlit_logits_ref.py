"""PyTorch's logits of a trained tiny LLaVA, for Vlit to reproduce: the first samples of a Vlit job's data
shards, one at a time (batch 1, no padding), through LlavaForConditionalGeneration loaded from a checkpoint
folder, or through that folder + a PEFT adapter (+ the non_lora_trainables.safetensors saved beside it).
Writes input_ids_<k> [1, T] int64, pixel_values_<k> [1, 3, S, S] and logits_<k> [1, T, vocab] float32.

Usage: vlit_logits_ref.py <job.json> <out.safetensors> <model_dir> [<adapter_dir>]
"""
import json
import os
import sys

import torch
from peft import PeftModel
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from transformers import LlavaForConditionalGeneration

COUNT = 3
IMAGE_TOKEN = 99  # make_tiny_llava.py's image_token_index
torch.set_num_threads(1)
job = json.load(open(sys.argv[1]))
shard = job["shards"][0]
h = safe_open(shard["file"], "pt")
t = {k: h.get_tensor(k) for k in h.keys()}
off = t["sample_offsets"].tolist()
ioff = t["image_offsets"].tolist()

model = LlavaForConditionalGeneration.from_pretrained(sys.argv[3], dtype=torch.float32)
if len(sys.argv) > 4:
    adapter = sys.argv[4]
    model = PeftModel.from_pretrained(model, adapter)
    extra_file = os.path.join(adapter, "non_lora_trainables.safetensors")
    if os.path.exists(extra_file):
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name, value in load_file(extra_file).items():
                params["base_model.model." + name].copy_(value)
model.eval()

out = {}
for k in range(min(COUNT, shard["count"])):
    ids = t["input_ids"][off[k] : off[k + 1]].clone().long()
    for row in t["image_spans"].tolist():
        if row[0] == k:
            ids[row[2] : row[3]] = IMAGE_TOKEN
    pixels = t["pixel_values"][ioff[k] : ioff[k + 1]].float().contiguous()
    with torch.no_grad():
        logits = model(input_ids=ids[None], attention_mask=torch.ones(1, len(ids), dtype=torch.long), pixel_values=pixels).logits
    out[f"input_ids_{k}"] = ids[None].contiguous()
    out[f"pixel_values_{k}"] = pixels
    out[f"logits_{k}"] = logits.float().contiguous()
save_file(out, sys.argv[2])
print(json.dumps({"samples": min(COUNT, shard["count"])}))
