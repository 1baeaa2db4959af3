"""A tiny random LlamaForCausalLM (from a config, no download) saved as a checkpoint folder, two LoRA
adapters made by peft 0.21 with non-zero B (plain: q_proj,v_proj r=4 alpha=8; patterns: rsLoRA with
rank_pattern/alpha_pattern on q,v,o_proj), and each adapter's merge_and_unload() weights.
Usage: peft_make_adapter.py <out dir>"""
import os
import sys

import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM

torch.manual_seed(0)
torch.set_num_threads(1)
out = sys.argv[1]
config = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                     num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64)
LlamaForCausalLM(config).save_pretrained(os.path.join(out, "base"))

cases = {
    "plain": LoraConfig(r=4, lora_alpha=8, lora_dropout=0.05, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"),
    "patterns": LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "o_proj"], use_rslora=True,
                           rank_pattern={"v_proj": 2}, alpha_pattern={"q_proj": 3}, task_type="CAUSAL_LM"),
}
for name, lora in cases.items():
    model = LlamaForCausalLM.from_pretrained(os.path.join(out, "base"))
    peft_model = get_peft_model(model, lora)
    with torch.no_grad():
        for pname, p in peft_model.named_parameters():
            if "lora_B" in pname:
                p.normal_(0, 0.5)  # peft initialises B to zero; a zero B would make the merge test vacuous
    peft_model.save_pretrained(os.path.join(out, f"adapter-{name}"))
    merged = peft_model.merge_and_unload()
    save_file({k: v.contiguous() for k, v in merged.state_dict().items()}, os.path.join(out, f"merged-{name}.safetensors"))
