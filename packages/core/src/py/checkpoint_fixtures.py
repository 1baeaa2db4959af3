"""Checkpoint folders written by the reference implementation (safetensors, transformers), and a reader
of folders Vlit writes, for packages/core/src/checkpoint-node.test.ts.

make OUT: writes OUT/single (safetensors.torch.save_file, mixed dtypes), OUT/sharded (LlamaForCausalLM
save_pretrained over 3 shards), OUT/bf16 (the same model in bfloat16), each with expected.json holding
every tensor's values as float64 lists.
read DIR OUT_JSON: loads DIR's weights with safetensors (following the index when there is one) and
writes dtype, shape and values of every tensor.
"""
import json
import os
import sys

import torch
from safetensors import safe_open
from safetensors.torch import save_file


def dump(tensors, path):
    out = {k: {"shape": list(v.shape), "values": v.detach().to(torch.float64).flatten().tolist()} for k, v in tensors.items()}
    with open(path, "w") as f:
        json.dump(out, f)


def make(out):
    torch.manual_seed(0)
    single = os.path.join(out, "single")
    os.makedirs(single, exist_ok=True)
    tensors = {
        "a.f32": torch.randn(3, 5),
        "b.f16": torch.randn(4, 2).to(torch.float16),
        "c.bf16": torch.randn(7).to(torch.bfloat16),
        "d.f64": torch.randn(2, 3, 2, dtype=torch.float64),
        "e.scalar": torch.tensor(1.5),
    }
    save_file(tensors, os.path.join(single, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(single, "config.json"), "w") as f:
        json.dump({"model_type": "test", "hidden_size": 5}, f)
    with open(os.path.join(single, "tokenizer_config.json"), "w") as f:
        json.dump({"chat_template": "{{ messages }}"}, f)
    dump(tensors, os.path.join(out, "single.expected.json"))

    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                         tie_word_embeddings=False)
    model = LlamaForCausalLM(config).eval()
    sd = model.state_dict()
    total = sum(v.numel() * 4 for v in sd.values())
    # Two fifths of the weights per shard gives 3 shards for this layout (the test checks the count).
    model.save_pretrained(os.path.join(out, "sharded"), max_shard_size=total * 2 // 5)
    dump(sd, os.path.join(out, "sharded.expected.json"))
    bf = model.to(torch.bfloat16)
    bf.save_pretrained(os.path.join(out, "bf16"))
    dump(bf.state_dict(), os.path.join(out, "bf16.expected.json"))


def read(folder, out_json):
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            idx = json.load(f)
        files = sorted(set(idx["weight_map"].values()))
    else:
        idx = None
        files = ["model.safetensors"]
    result = {"files": files, "index": idx, "tensors": {}}
    for file in files:
        with safe_open(os.path.join(folder, file), framework="pt") as f:
            result.setdefault("metadata", {})[file] = f.metadata()
            for k in f.keys():
                t = f.get_tensor(k)
                result["tensors"][k] = {"file": file, "dtype": str(t.dtype), "shape": list(t.shape),
                                        "values": t.to(torch.float64).flatten().tolist()}
    with open(out_json, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2])
    else:
        read(sys.argv[2], sys.argv[3])
