"""Reference decoders for packages/models/src/hf/decoder.test.ts, built with transformers from tiny random
configs (nothing downloaded) and saved with save_pretrained.

make OUT: for each case writes OUT/<case>/ (the checkpoint folder) and OUT/<case>.ref.safetensors holding
  logits [1, P, V] of the prompt, batch_logits [2, P, V] of two prompts (the second left-padded, with
  attention_mask and the position_ids generate derives from it), and greedy [32] (int64) tokens decoded one
  at a time with the KV cache. Also OUT/llama-sharded (3 shards) and OUT/llama-bf16 (bfloat16 weights,
  reference logits from the bf16-rounded weights computed in float32, plus the float32 model's logits).
check DIR OUT: loads DIR with AutoModelForCausalLM.from_pretrained and writes OUT (logits and greedy tokens).
tokenize DIR MESSAGES_JSON OUT_JSON: AutoTokenizer.from_pretrained(DIR), apply_chat_template with the generation
  prompt: the text and its ids.
"""
import json
import math
import os
import sys

import torch
from safetensors.torch import save_file

from greedy_decode import greedy_with_cache

torch.set_num_threads(1)
PROMPT = [3, 17, 42, 5, 99, 64, 23, 8, 77, 31, 12, 50]
SHORT = [9, 88, 14, 61, 27, 4, 70]
STEPS = 32


def widen(model, seed):
    """Re-initialise with wide weights: transformers' 0.02 init gives near-equal logits, making greedy ties."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif "embed_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p.shape[1]))
    return model


def positions(mask):
    pos = mask.long().cumsum(-1) - 1
    return pos.masked_fill(mask == 0, 1)


@torch.no_grad()
def reference(model):
    ids = torch.tensor([PROMPT])
    logits = model(input_ids=ids).logits.float()
    # Greedy with the KV cache, one token at a time.
    tokens = greedy_with_cache(model, model(input_ids=ids, use_cache=True), STEPS)
    pad = len(PROMPT) - len(SHORT)
    batch = torch.tensor([PROMPT, [0] * pad + SHORT])
    mask = torch.tensor([[1] * len(PROMPT), [0] * pad + [1] * len(SHORT)])
    batch_logits = model(input_ids=batch, attention_mask=mask, position_ids=positions(mask)).logits.float()
    return {"logits": logits.contiguous(), "batch_logits": batch_logits.contiguous(), "greedy": torch.tensor(tokens, dtype=torch.int64)}


def cases():
    from transformers import LlamaConfig, MistralConfig, Qwen2Config

    common = dict(vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=128)
    return {
        "llama-default-untied": LlamaConfig(**common, rms_norm_eps=1e-5, tie_word_embeddings=False),
        "llama-llama3-tied": LlamaConfig(**common, tie_word_embeddings=True, rope_parameters={
            "rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 32}),
        "llama-linear-bias": LlamaConfig(**common, tie_word_embeddings=False, attention_bias=True, mlp_bias=True,
                                         rope_parameters={"rope_type": "linear", "rope_theta": 1000.0, "factor": 2.5}),
        "qwen2": Qwen2Config(**common, tie_word_embeddings=True, rms_norm_eps=1e-6,
                             rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}),
        # A window shorter than prompt + generated tokens, so the window matters.
        "mistral-window": MistralConfig(**common, tie_word_embeddings=False, sliding_window=8, head_dim=16),
    }


def build(config, seed):
    from transformers import AutoModelForCausalLM

    config._attn_implementation = "eager"
    return widen(AutoModelForCausalLM.from_config(config, attn_implementation="eager"), seed).eval()


def make(out):
    from transformers import AutoModelForCausalLM

    for i, (name, config) in enumerate(cases().items()):
        model = build(config, 100 + i)
        model.save_pretrained(os.path.join(out, name))
        save_file(reference(model), os.path.join(out, f"{name}.ref.safetensors"))
        if name == "llama-default-untied":
            total = sum(p.numel() * 4 for p in model.state_dict().values())
            model.save_pretrained(os.path.join(out, "llama-sharded"), max_shard_size=total * 2 // 5)
            model.to(torch.bfloat16).save_pretrained(os.path.join(out, "llama-bf16"))
            rounded = AutoModelForCausalLM.from_pretrained(os.path.join(out, "llama-bf16"), dtype=torch.float32,
                                                           attn_implementation="eager").eval()
            save_file(reference(rounded), os.path.join(out, "llama-bf16.ref.safetensors"))


def check(folder, out):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval()
    ref = reference(model)
    save_file(ref, out)
    with open(out + ".json", "w") as f:
        json.dump({"class": type(model).__name__, "config": model.config.to_dict()}, f, default=str)


def tokenize(folder, messages_file, out):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    with open(messages_file) as f:
        messages = json.load(f)
    text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    with open(out, "w") as f:
        json.dump({"text": text, "ids": ids}, f)


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2])
    elif sys.argv[1] == "tokenize":
        tokenize(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        check(sys.argv[2], sys.argv[3])
