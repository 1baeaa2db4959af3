"""Build a tiny random LlavaForConditionalGeneration from a config (CLIP tower, MLP projector, Llama
decoder; hidden 32, 2 layers, vocab 100) and save it as a Hugging Face checkpoint folder.
Usage: make_tiny_llava.py <out_dir> <seed>"""
import json
import sys

import torch
from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

torch.set_num_threads(1)
torch.manual_seed(int(sys.argv[2]))
vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, image_size=28, patch_size=14, projection_dim=32)
text = LlamaConfig(vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128, pad_token_id=0)
model = LlavaForConditionalGeneration(LlavaConfig(vision_config=vision, text_config=text, image_token_index=99, projector_hidden_act="gelu"))
model.save_pretrained(sys.argv[1])
print(json.dumps({"imageTokenId": 99, "imageTokens": (28 // 14) ** 2, "vocab": 100, "names": [n for n, _ in model.named_parameters()]}))
