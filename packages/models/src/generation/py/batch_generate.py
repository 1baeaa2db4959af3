"""Reference for packages/models/src/generation/generate-batch.hf.test.ts: transformers' own `generate` on a
left-padded batch, from tiny random decoders built from configs (nothing downloaded).

make OUT: for 6 prompts of 1 to 70 tokens and each case in ../../hf/py/hf_decoders.py (llama-default-untied, mistral-window) saves
OUT/<case>/ with save_pretrained and writes OUT/<case>.json: the prompts, greedy tokens of the left-padded
batch without an end token ("free"), and with `eos_token_id` set to a token the first row produces ("eos"),
each row cut at its end token as transformers pads finished rows.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "hf", "py"))
import hf_decoders  # noqa: E402

torch.set_num_threads(1)
PROMPTS = [
    [3, 17, 42, 5, 99, 64, 23, 8, 77, 31, 12, 50],
    [9, 88, 14, 61, 27, 4, 70],
    [100],
    [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21],
    [33, 44],
    # A long prompt beside the short ones: Vlit prefills it in a pass of its own (prompt buckets) and joins
    # the caches; transformers pads every row to it.
    [(i * 37 + 11) % 127 + 1 for i in range(70)],
]
NEW = 20
PAD = 0


@torch.no_grad()
def left_padded_generate(model, eos):
    width = max(len(p) for p in PROMPTS)
    ids = torch.tensor([[PAD] * (width - len(p)) + p for p in PROMPTS])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in PROMPTS])
    out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=NEW, min_new_tokens=0, do_sample=False,
                         num_beams=1, pad_token_id=PAD, eos_token_id=eos, use_cache=True)
    rows = []
    for row in out[:, width:].tolist():
        if eos is not None and eos in row:
            # The end token ends the row (it is not part of the reply); the rest is padding.
            row = row[: row.index(eos)]
        rows.append(row)
    return rows


def make(out):
    cases = hf_decoders.cases()
    for i, name in enumerate(["llama-default-untied", "mistral-window"]):
        model = hf_decoders.build(cases[name], 300 + i)
        model.generation_config.eos_token_id = None
        model.generation_config.bos_token_id = None
        model.generation_config.pad_token_id = PAD
        model.save_pretrained(os.path.join(out, name))
        free = left_padded_generate(model, None)
        # A token the first row produces at step 6, so at least that row stops early.
        eos = free[0][6]
        with open(os.path.join(out, f"{name}.json"), "w") as f:
            json.dump({"prompts": PROMPTS, "new": NEW, "free": free, "eos": eos, "stopped": left_padded_generate(model, eos)}, f)


if __name__ == "__main__":
    make(sys.argv[1])
