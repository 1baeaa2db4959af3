"""What the training references share: the tiny LlavaForConditionalGeneration of tiny-llava.fixture.ts
(CLIP vision tower unused: image features are fed, as Vlit feeds them from the encoder cache), the
padded batch of in.safetensors, and the image-feature splice LlavaModel does."""
from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration


def build_model(cfg, data, extra_state=None):
    """The tiny LLaVA of config.json with the `weight.*` tensors (and `extra_state`) loaded; only the vision tower stays unset."""
    text = LlamaConfig(**cfg["text_config"])
    vision = CLIPVisionConfig(hidden_size=cfg["feature_dim"], intermediate_size=16, num_hidden_layers=1, num_attention_heads=2, image_size=28, patch_size=14)
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=cfg["image_token_id"], projector_hidden_act="gelu", multimodal_projector_bias=True)
    config._attn_implementation = "eager"
    model = LlavaForConditionalGeneration(config).float()
    state = {k[len("weight."):]: v for k, v in data.items() if k.startswith("weight.")}
    state.update(extra_state or {})
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected, unexpected
    assert all(k.startswith("model.vision_tower.") for k in missing), [k for k in missing if not k.startswith("model.vision_tower.")]
    return model


def batch(data):
    """Input ids, attention mask, image-token mask and stacked image features of the padded batch."""
    return data["batch.input_ids"].long(), data["batch.attention_mask"].long(), data["batch.image_mask"].bool(), data["batch.features"].float()


def splice_image_features(embeds, image_mask, projected):
    """The token embeddings with the projected image features at the image tokens, as LlavaModel.forward puts them (masked_scatter, row-major)."""
    return embeds.masked_scatter(image_mask.unsqueeze(-1).expand_as(embeds), projected.reshape(-1, projected.shape[-1]).to(embeds.dtype))
