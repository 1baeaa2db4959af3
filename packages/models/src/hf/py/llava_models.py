"""Reference LLaVA / LLaVA-NeXT models for packages/models/src/hf/llava.test.ts, built with transformers from
tiny random configs (nothing downloaded) and saved with save_pretrained together with a tiny BPE tokenizer
(trained here on a fixed corpus), a chat template and the image processor.

make OUT: writes
  OUT/images.safetensors           uint8 images [H, W, 3]: image0 (45x37), image1 (60x40), wide (50x30)
  OUT/llava/                       LlavaForConditionalGeneration as save_pretrained writes it (+ processor files)
  OUT/llava-internal/              the same weights under transformers 5's module names (model.language_model.*,
                                   model.vision_tower.*, model.multi_modal_projector.*, lm_head.*), loaded back
                                   by transformers to check it reads them
  OUT/llava.ref.safetensors        input_ids, pixel_values, logits [1, S, V], greedy [32] for the two-image prompt
  OUT/llava_next/, OUT/llava_next.ref.safetensors   the same for LLaVA-NeXT with the non-square image `wide`
mmproj WEIGHTS FEATURES OUT: applies original LLaVA's mm_projector (nn.Sequential) read from WEIGHTS to FEATURES.
check DIR IMAGES OUT: loads DIR with LlavaForConditionalGeneration + AutoProcessor.from_pretrained and writes
  OUT (input_ids, pixel_values, logits, greedy) for the two-image prompt.
"""
import json
import math
import os
import shutil
import sys

import numpy as np
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from greedy_decode import greedy_with_cache

torch.set_num_threads(1)
STEPS = 32
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}USER: "
    "{% for item in message['content'] %}{% if item['type'] == 'image' %}<image>\n{% else %}{{ item['text'] }}{% endif %}{% endfor %}"
    "\n{% else %}ASSISTANT: {% for item in message['content'] %}{% if item['type'] == 'text' %}{{ item['text'] }}{% endif %}{% endfor %}"
    "{{ eos_token }}\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)
MESSAGES = [
    {
        "role": "user",
        "content": [
            {"type": "image"},
            {"type": "text", "text": "What is in the first picture?"},
            {"type": "image"},
            {"type": "text", "text": "And what changed in the second one?"},
        ],
    }
]
NEXT_MESSAGES = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe the wide picture."}]}]
CORPUS = [
    "USER: What is in the first picture? ASSISTANT: A red square on a blue field.",
    "And what changed in the second one? The square moved to the left and turned green.",
    "Describe the wide picture. A long road under a grey sky with two trees and a house.",
    "The quick brown fox jumps over the lazy dog. What colour is the car? It is yellow.",
]


def make_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=["<unk>", "<s>", "</s>", "<pad>", "<image>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    # Llama-style: the tokenizer puts BOS in front, so the processor's prompt starts with it.
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>",
        extra_special_tokens={"image_token": "<image>"},
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def widen(model, seed):
    """Wide weights: transformers' 0.02 init gives near-equal logits, making greedy ties."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or "layer_norm" in name and name.endswith(".weight") or "layrnorm.weight" in name:
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif "embed_tokens" in name or "class_embedding" in name or "position_embedding" in name or "image_newline" in name:
                p.copy_(torch.randn(p.shape, generator=g) * (1.0 if "embed_tokens" in name else 0.5))
            elif p.dim() >= 2:
                fan_in = int(np.prod(p.shape[1:]))
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(fan_in))
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return model


def make_images():
    rng = np.random.default_rng(7)
    out = {}
    for name, (w, h) in {"image0": (45, 37), "image1": (60, 40), "wide": (50, 30)}.items():
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([(xx * 255 // w), (yy * 255 // h), ((xx + yy) * 3) % 256], -1).astype(np.int32)
        noise = rng.integers(0, 60, size=(h, w, 3))
        out[name] = torch.from_numpy(np.clip(base + noise, 0, 255).astype(np.uint8))
    return out


def pil(t):
    return Image.fromarray(t.numpy(), mode="RGB")


def text_config(vocab):
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=vocab, hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, max_position_embeddings=512, rms_norm_eps=1e-6, bos_token_id=1, eos_token_id=2,
                       pad_token_id=3)


def vision_config():
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, image_size=32,
                            patch_size=8, projection_dim=32, hidden_act="quick_gelu")


@torch.no_grad()
def reference(model, inputs):
    kwargs = {k: v for k, v in inputs.items() if k != "input_ids" and k != "attention_mask"}
    ids = inputs["input_ids"]
    out = model(input_ids=ids, use_cache=True, **kwargs)
    logits = out.logits.float().clone()
    tokens = greedy_with_cache(model, out, STEPS)
    ref = {
        "input_ids": ids.long().contiguous(),
        "pixel_values": inputs["pixel_values"].float().contiguous(),
        "logits": logits.contiguous(),
        "greedy": torch.tensor(tokens, dtype=torch.long),
    }
    if "image_sizes" in inputs:
        ref["image_sizes"] = inputs["image_sizes"].long().contiguous()
    return ref


def prompt_inputs(processor, messages, images):
    """The chat template renders the prompt; the processor expands each image token and preprocesses the images."""
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return processor(images=images, text=text, return_tensors="pt")


def internal_layout(src, dst):
    """The same checkpoint under transformers 5's module names (what a model's state_dict holds)."""
    os.makedirs(dst, exist_ok=True)
    for f in os.listdir(src):
        if f != "model.safetensors":
            shutil.copy(os.path.join(src, f), os.path.join(dst, f))
    tensors = load_file(os.path.join(src, "model.safetensors"))
    renamed = {}
    for k, v in tensors.items():
        if k.startswith("language_model.model."):
            k = "model.language_model." + k[len("language_model.model."):]
        elif k == "language_model.lm_head.weight":
            k = "lm_head.weight"
        elif k.startswith("vision_tower.") or k.startswith("multi_modal_projector."):
            k = "model." + k
        renamed[k] = v
    save_file(renamed, os.path.join(dst, "model.safetensors"), metadata={"format": "pt"})


def make(out):
    from transformers import (CLIPImageProcessorPil, LlavaConfig, LlavaForConditionalGeneration, LlavaNextConfig,
                              LlavaNextForConditionalGeneration, LlavaNextImageProcessorPil, LlavaNextProcessor,
                              LlavaProcessor)

    os.makedirs(out, exist_ok=True)
    images = make_images()
    save_file({k: v.contiguous() for k, v in images.items()}, os.path.join(out, "images.safetensors"))
    tok = make_tokenizer()
    image_id = tok.convert_tokens_to_ids("<image>")
    vocab = len(tok)

    # LLaVA: CLIP tower + 2-layer GELU projector + Llama.
    torch.manual_seed(0)
    cfg = LlavaConfig(vision_config=vision_config(), text_config=text_config(vocab), image_token_index=image_id,
                      vision_feature_layer=-2, vision_feature_select_strategy="default", projector_hidden_act="gelu",
                      image_seq_length=16)
    model = widen(LlavaForConditionalGeneration(cfg), 1).eval()
    ip = CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    proc = LlavaProcessor(image_processor=ip, tokenizer=tok, patch_size=8, vision_feature_select_strategy="default",
                          num_additional_image_tokens=1, chat_template=CHAT_TEMPLATE)
    d = os.path.join(out, "llava")
    model.save_pretrained(d)
    proc.save_pretrained(d)
    inputs = prompt_inputs(proc, MESSAGES, [pil(images["image0"]), pil(images["image1"])])
    ref = reference(model, inputs)
    save_file(ref, os.path.join(out, "llava.ref.safetensors"))
    internal_layout(d, os.path.join(out, "llava-internal"))
    again = LlavaForConditionalGeneration.from_pretrained(os.path.join(out, "llava-internal")).eval()
    diff = (reference(again, inputs)["logits"] - ref["logits"]).abs().max().item()
    assert diff == 0, f"transformers does not read the internal layout back: {diff}"

    # LLaVA-NeXT: anyres over 32x32 tiles, a non-square image.
    torch.manual_seed(0)
    pins = [[32, 64], [64, 32], [64, 64]]
    ncfg = LlavaNextConfig(vision_config=vision_config(), text_config=text_config(vocab), image_token_index=image_id,
                           vision_feature_layer=-2, vision_feature_select_strategy="default", projector_hidden_act="gelu",
                           image_grid_pinpoints=pins)
    nmodel = widen(LlavaNextForConditionalGeneration(ncfg), 2).eval()
    nip = LlavaNextImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}, image_grid_pinpoints=pins)
    nproc = LlavaNextProcessor(image_processor=nip, tokenizer=tok, patch_size=8, vision_feature_select_strategy="default",
                               num_additional_image_tokens=1, chat_template=CHAT_TEMPLATE)
    nd = os.path.join(out, "llava_next")
    nmodel.save_pretrained(nd)
    nproc.save_pretrained(nd)
    ninputs = prompt_inputs(nproc, NEXT_MESSAGES, [pil(images["wide"])])
    nref = reference(nmodel, ninputs)
    nref["image_tokens"] = torch.tensor([int((ninputs["input_ids"] == image_id).sum())], dtype=torch.long)
    save_file(nref, os.path.join(out, "llava_next.ref.safetensors"))
    print(json.dumps({"vocab": vocab, "image_token_id": image_id, "files": sorted(os.listdir(d))}))


def check(d, images_file, out):
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    images = load_file(images_file)
    model = LlavaForConditionalGeneration.from_pretrained(d).eval()
    proc = AutoProcessor.from_pretrained(d)
    inputs = prompt_inputs(proc, MESSAGES, [pil(images["image0"]), pil(images["image1"])])
    ref = reference(model, inputs)
    save_file(ref, out)
    with open(out + ".json", "w") as f:
        json.dump({"class": type(model).__name__, "processor": type(proc).__name__,
                   "image_processor": type(proc.image_processor).__name__}, f)


def mmproj(weights_file, features_file, out):
    """Original LLaVA's projector: nn.Sequential(Linear, GELU, Linear) loaded from `model.mm_projector.*` names."""
    tensors = load_file(weights_file)
    prefix = "model.mm_projector."
    state = {k[len(prefix):]: v for k, v in tensors.items()}
    assert len(state) == len(tensors), f"names outside {prefix}: {sorted(tensors)}"
    w1, w2 = state["0.weight"], state["2.weight"]
    proj = torch.nn.Sequential(torch.nn.Linear(w1.shape[1], w1.shape[0]), torch.nn.GELU(), torch.nn.Linear(w2.shape[1], w2.shape[0]))
    proj.load_state_dict(state, strict=True)
    with torch.no_grad():
        y = proj(load_file(features_file)["features"])
    save_file({"projected": y.contiguous()}, out)


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2])
    elif sys.argv[1] == "mmproj":
        mmproj(sys.argv[2], sys.argv[3], sys.argv[4])
    elif sys.argv[1] == "check":
        check(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        raise SystemExit(f"unknown command {sys.argv[1]}")
