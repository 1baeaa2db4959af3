"""Greedy decoding shared by the reference scripts in this folder (hf_decoders.py, llava_models.py), which
import it from here when run as scripts."""


def greedy_with_cache(model, out, steps):
    """Greedy tokens one at a time with the KV cache, continuing from `out`, the prompt's forward output
    (computed with use_cache=True): `steps` token ids as ints."""
    past = out.past_key_values
    nxt = out.logits[0, -1].argmax()
    tokens = [int(nxt)]
    for _ in range(steps - 1):
        out = model(input_ids=nxt.view(1, 1), past_key_values=past, use_cache=True)
        past = out.past_key_values
        nxt = out.logits[0, -1].argmax()
        tokens.append(int(nxt))
    return tokens
