#!/usr/bin/env python3
"""numpy reference of Hugging Face LLaVA's multi_modal_projector (LlavaMultiModalProjector).

Usage: /usr/bin/python3 llava_projector.py CHECKPOINT.safetensors FEATURES.safetensors OUT.safetensors

Reads `multi_modal_projector.linear_{1,2}.{weight,bias}` (torch nn.Linear layout, weight [out, in])
and `features` with json + numpy only (no Vlit code), computes
linear_2(gelu(linear_1(x))) with exact (erf) GELU as torch's nn.GELU() in float64, writes `projected`.
"""
import json
import math
import struct
import sys

import numpy as np


def bf16_to_f32(raw):
    u16 = np.frombuffer(raw, dtype="<u2").astype(np.uint32)
    return (u16 << 16).view(np.float32)


DECODERS = {
    "F32": lambda b: np.frombuffer(b, dtype="<f4"),
    "F16": lambda b: np.frombuffer(b, dtype="<f2"),
    "F64": lambda b: np.frombuffer(b, dtype="<f8"),
    "BF16": bf16_to_f32,
}


def read(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    body = raw[8 + n :]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        out[name] = DECODERS[info["dtype"]](body[b:e]).astype(np.float64).reshape(info["shape"])
    return out


def write(path, tensors):
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        data = np.ascontiguousarray(tensors[name], dtype="<f8").tobytes()
        header[name] = {"dtype": "F64", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


erf = np.vectorize(math.erf)


def main():
    ckpt, feats, out = sys.argv[1:4]
    w = read(ckpt)
    x = read(feats)["features"]
    p = "multi_modal_projector."
    h = x @ w[p + "linear_1.weight"].T + w[p + "linear_1.bias"]
    h = 0.5 * h * (1.0 + erf(h / math.sqrt(2.0)))
    y = h @ w[p + "linear_2.weight"].T + w[p + "linear_2.bias"]
    write(out, {"projected": y})


if __name__ == "__main__":
    main()
