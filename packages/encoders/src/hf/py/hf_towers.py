"""Reference outputs for Vlit's CLIP / SigLIP checkpoint loaders, from transformers itself.

Tiny random models are built from configs (nothing is downloaded), saved with save_pretrained, and
run on fixed inputs; the results go to safetensors / JSON files that the TypeScript tests read.

  hf_towers.py vision clip|siglip OUT_DIR     -> OUT_DIR/model (checkpoint folder), OUT_DIR/ref.safetensors
  hf_towers.py dual clip|siglip OUT_DIR       -> OUT_DIR/model, OUT_DIR/ref.safetensors, OUT_DIR/ids.json
  hf_towers.py llava clip|siglip OUT_DIR      -> a LLaVA folder and LLaVA's selected image features (identity projector)
  hf_towers.py clip-legacy-eos OUT_DIR        -> a CLIPModel with eos_token_id 2 and its text embeddings
  hf_towers.py run-saved MODEL_DIR PIXELS OUT -> loads a folder Vlit wrote, checks nothing loaded as random,
                                                 writes its hidden states for the pixels in PIXELS
"""
import json
import os
import sys

import torch
from safetensors.torch import load_file, save_file
from transformers import (
    CLIPConfig,
    CLIPImageProcessor,
    CLIPModel,
    CLIPVisionConfig,
    CLIPVisionModel,
    SiglipConfig,
    SiglipImageProcessor,
    SiglipModel,
    SiglipVisionConfig,
    SiglipVisionModel,
)

torch.set_num_threads(1)

VISION = dict(hidden_size=32, intermediate_size=48, num_hidden_layers=3, num_attention_heads=4, image_size=32, patch_size=8)
TEXT = dict(hidden_size=24, intermediate_size=40, num_hidden_layers=2, num_attention_heads=2, vocab_size=64, max_position_embeddings=12)


def randomize(model, seed):
    """transformers' init leaves LayerNorms at 1/0 and biases at 0; random values test every term."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.1 * noise)
            elif name.endswith("bias") or "norm" in name:
                p.copy_(0.05 * noise)
            elif "embedding" in name or "probe" in name:
                p.copy_(0.5 * noise)
            elif name in ("logit_scale",):
                p.copy_(torch.tensor(2.3).reshape(p.shape))
            elif name in ("logit_bias",):
                p.copy_(torch.tensor(-1.7).reshape(p.shape))
            else:
                fan_in = p.shape[1] if p.dim() > 1 else 1
                for d in p.shape[2:]:
                    fan_in *= d
                p.copy_(noise / fan_in**0.5)


def processor(family, size):
    if family == "clip":
        return CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
    return SiglipImageProcessor(size={"height": size, "width": size})


def pixels(n, size, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn((n, 3, size, size), generator=g)


def vision(family, out):
    if family == "clip":
        model = CLIPVisionModel(CLIPVisionConfig(**VISION))
    else:
        model = SiglipVisionModel(SiglipVisionConfig(**VISION))
    randomize(model, 1 if family == "clip" else 2)
    model.eval()
    model.save_pretrained(os.path.join(out, "model"))
    processor(family, VISION["image_size"]).save_pretrained(os.path.join(out, "model"))
    x = pixels(3, VISION["image_size"], 7)
    with torch.no_grad():
        o = model(pixel_values=x, output_hidden_states=True)
    ref = {"pixel_values": x, "last_hidden_state": o.last_hidden_state}
    for i, h in enumerate(o.hidden_states):
        ref[f"hidden_states.{i}"] = h
    if o.pooler_output is not None:
        ref["pooler_output"] = o.pooler_output
    # A real image through the folder's own processor (the PIL one), for the encode(images) path.
    import numpy as np
    from PIL import Image

    yy, xx = np.mgrid[0:37, 0:53]
    rgb = np.stack([(xx * 5 + yy * 3) % 256, (xx * yy) % 256, (255 - xx * 4) % 256], axis=-1).astype(np.uint8)
    Image.fromarray(rgb).save(os.path.join(out, "image.png"))
    proc = processor(family, VISION["image_size"]).__class__.from_pretrained(os.path.join(out, "model"))
    px = proc(images=Image.open(os.path.join(out, "image.png")), return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        oi = model(pixel_values=px, output_hidden_states=True)
    ref["image.pixel_values"] = px
    for i, h in enumerate(oi.hidden_states):
        ref[f"image.hidden_states.{i}"] = h
    save_file({k: v.clone().contiguous() for k, v in ref.items()}, os.path.join(out, "ref.safetensors"))


WORDS = "a photo of the red blue green cat dog bird car tree house sky on in with two small big".split()


def word_tokenizer(model_dir):
    """A real tokenizer.json (WordLevel + <bos> … <eos> template), so the TS side tokenises the same way."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    vocab = {"[UNK]": 0, "[PAD]": 1}
    for w in WORDS:
        vocab[w] = len(vocab)
    while len(vocab) < 62:
        vocab[f"w{len(vocab)}"] = len(vocab)
    vocab["<bos>"] = 62
    vocab["<eos>"] = 63
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A <eos>", special_tokens=[("<bos>", 62), ("<eos>", 63)])
    tok.save(os.path.join(model_dir, "tokenizer.json"))
    with open(os.path.join(model_dir, "tokenizer_config.json"), "w") as f:
        json.dump({"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "[PAD]", "unk_token": "[UNK]", "model_max_length": 12}, f)
    return tok


def text_feeds(family, seqs):
    if family == "clip":
        # Right padding with an attention mask, as CLIPProcessor(padding=True) gives.
        length = max(len(s) for s in seqs)
        ids = torch.tensor([s + [1] * (length - len(s)) for s in seqs])
        mask = torch.tensor([[1] * len(s) + [0] * (length - len(s)) for s in seqs])
        return seqs, dict(input_ids=ids, attention_mask=mask)
    # SigLIP is trained with padding="max_length" and no mask: pad every row to max positions.
    length = TEXT["max_position_embeddings"]
    seqs = [s + [1] * (length - len(s)) for s in seqs]
    return seqs, dict(input_ids=torch.tensor(seqs))


def dual(family, out):
    if family == "clip":
        text = dict(TEXT, bos_token_id=62, eos_token_id=63, pad_token_id=1)
        model = CLIPModel(CLIPConfig(text_config=text, vision_config=VISION, projection_dim=20))
    else:
        text = dict(TEXT, pad_token_id=1, eos_token_id=63, projection_size=VISION["hidden_size"])
        model = SiglipModel(SiglipConfig(text_config=text, vision_config=VISION))
    randomize(model, 3 if family == "clip" else 4)
    model.eval()
    model_dir = os.path.join(out, "model")
    model.save_pretrained(model_dir)
    processor(family, VISION["image_size"]).save_pretrained(model_dir)
    tok = word_tokenizer(model_dir)
    g = torch.Generator().manual_seed(11)
    seqs = []
    for n in (5, 3, 9, 12):
        body = torch.randint(2, 60, (n - 2,), generator=g).tolist()
        seqs.append([62] + body + [63])
    seqs, feeds = text_feeds(family, seqs)
    x = pixels(2, VISION["image_size"], 8)
    with torch.no_grad():
        o = model(pixel_values=x, **feeds)
    ref = {
        "pixel_values": x,
        "image_embeds": o.image_embeds,
        "text_embeds": o.text_embeds,
        "logits_per_image": o.logits_per_image,
    }
    # Strings through the saved tokenizer, and a real image through the saved processor.
    texts = ["a photo of a red cat", "two small dogs on the sky", "green tree", "a big blue car in the house with a bird"]
    _, tfeeds = text_feeds(family, [e.ids for e in tok.encode_batch(texts)])
    import numpy as np
    from PIL import Image

    yy, xx = np.mgrid[0:41, 0:29]
    rgb = np.stack([(xx * 7 + yy) % 256, (xx * yy * 3) % 256, (200 - yy * 4) % 256], axis=-1).astype(np.uint8)
    Image.fromarray(rgb).save(os.path.join(out, "image.png"))
    proc = processor(family, VISION["image_size"]).__class__.from_pretrained(model_dir)
    px = proc(images=Image.open(os.path.join(out, "image.png")), return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        ot = model(pixel_values=px, **tfeeds)
    ref["texts.text_embeds"] = ot.text_embeds
    ref["image.image_embeds"] = ot.image_embeds
    save_file({k: v.clone().contiguous() for k, v in ref.items()}, os.path.join(out, "ref.safetensors"))
    with open(os.path.join(out, "ids.json"), "w") as f:
        json.dump(seqs, f)
    with open(os.path.join(out, "texts.json"), "w") as f:
        json.dump(texts, f)


def clip_legacy_eos(out):
    """A CLIPModel whose config keeps the pre-#24773 eos_token_id 2: transformers pools the highest id's first position."""
    text = dict(TEXT, bos_token_id=0, eos_token_id=2, pad_token_id=1)
    model = CLIPModel(CLIPConfig(text_config=text, vision_config=VISION, projection_dim=20))
    randomize(model, 5)
    model.eval()
    model.save_pretrained(os.path.join(out, "model"))
    seqs = [[5, 40, 7, 9], [3, 11, 11, 4], [59, 2, 8, 59]]
    x = pixels(1, VISION["image_size"], 9)
    with torch.no_grad():
        o = model(pixel_values=x, input_ids=torch.tensor(seqs))
    save_file({"text_embeds": o.text_embeds.clone().contiguous()}, os.path.join(out, "ref.safetensors"))
    with open(os.path.join(out, "ids.json"), "w") as f:
        json.dump(seqs, f)


def llava(family, out):
    """A LLaVA folder whose tower Vlit loads alone; reference: LLaVA's own get_image_features with an identity projector."""
    from transformers import LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    vision = CLIPVisionConfig(**VISION) if family == "clip" else SiglipVisionConfig(**VISION)
    layer, strategy = (-2, "default") if family == "clip" else ([-3, -1], "full")
    text = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2, vocab_size=100)
    config = LlavaConfig(
        vision_config=vision.to_dict(), text_config=text.to_dict(), vision_feature_layer=layer, vision_feature_select_strategy=strategy, image_token_index=99
    )
    model = LlavaForConditionalGeneration(config)
    randomize(model, 6)
    model.eval()
    model.save_pretrained(os.path.join(out, "model"))
    processor(family, VISION["image_size"]).save_pretrained(os.path.join(out, "model"))
    model.model.multi_modal_projector = torch.nn.Identity()
    x = pixels(2, VISION["image_size"], 10)
    with torch.no_grad():
        feats = model.model.get_image_features(pixel_values=x).pooler_output
    save_file({"pixel_values": x.contiguous(), "features": torch.stack(list(feats)).contiguous()}, os.path.join(out, "ref.safetensors"))


def run_saved(model_dir, pixel_file, out):
    config = json.load(open(os.path.join(model_dir, "config.json")))
    cls = CLIPVisionModel if config["model_type"] == "clip_vision_model" else SiglipVisionModel
    # Compute in float32 whatever the stored dtype (transformers 5 would otherwise run a bf16 folder in bf16).
    model, info = cls.from_pretrained(model_dir, output_loading_info=True, dtype=torch.float32)
    problems = {k: v for k, v in info.items() if v}
    if problems:
        raise SystemExit(f"loading {model_dir} was not clean: {problems}")
    model.eval()
    x = load_file(pixel_file)["pixel_values"]
    with torch.no_grad():
        o = model(pixel_values=x, output_hidden_states=True)
    save_file({f"hidden_states.{i}": h.contiguous() for i, h in enumerate(o.hidden_states)}, out)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "vision":
        vision(sys.argv[2], sys.argv[3])
    elif cmd == "dual":
        dual(sys.argv[2], sys.argv[3])
    elif cmd == "llava":
        llava(sys.argv[2], sys.argv[3])
    elif cmd == "clip-legacy-eos":
        clip_legacy_eos(sys.argv[2])
    elif cmd == "run-saved":
        run_saved(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        raise SystemExit(f"unknown command {cmd}")
