"""Tensor names (and shapes) of a tiny LlavaForConditionalGeneration built by transformers from a
random config (CLIP vision tower, MLP projector, Llama decoder), as its state dict names them.
Usage: llava_tensor_names.py <out.json>"""
import json
import sys

import torch
from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

torch.set_num_threads(1)
vision = CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=28, patch_size=14, projection_dim=16)
text = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64)
model = LlavaForConditionalGeneration(LlavaConfig(vision_config=vision, text_config=text, image_token_index=63))
json.dump({k: list(v.shape) for k, v in model.state_dict().items()}, open(sys.argv[1], "w"))
