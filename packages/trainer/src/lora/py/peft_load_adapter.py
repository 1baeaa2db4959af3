"""Load an adapter folder written by Vlit with PeftModel.from_pretrained on the tiny Llama base, and
report how it compares with what Vlit meant: the lora_A/lora_B values per module, the scaling peft
derived, and merge_and_unload() weights against Vlit's merge.
Usage: peft_load_adapter.py <base dir> <adapter dir> <expected lora .safetensors> <vlit merged .safetensors> <out.json>"""
import json
import sys

import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import LlamaForCausalLM

torch.set_num_threads(1)
base_dir, adapter_dir, expected_file, merged_file, out = sys.argv[1:6]
expected = load_file(expected_file)
vlit_merged = load_file(merged_file)
model = PeftModel.from_pretrained(LlamaForCausalLM.from_pretrained(base_dir), adapter_dir)

lora_diff = 0.0
modules = []
scaling = {}
for name, module in model.base_model.model.named_modules():
    if hasattr(module, "lora_A") and "default" in module.lora_A:
        modules.append(name)
        a = module.lora_A["default"].weight.detach()
        b = module.lora_B["default"].weight.detach()
        lora_diff = max(lora_diff, (a - expected[f"{name}.A"]).abs().max().item(), (b - expected[f"{name}.B"]).abs().max().item())
        scaling[name] = module.scaling["default"]

merged = model.merge_and_unload().state_dict()
merged_diff = 0.0
for key, value in vlit_merged.items():
    merged_diff = max(merged_diff, (merged[key] - value).abs().max().item())
json.dump({"modules": sorted(modules), "loraMaxDiff": lora_diff, "mergedMaxDiff": merged_diff, "mergedCompared": len(vlit_merged),
           "scaling": scaling}, open(out, "w"))
