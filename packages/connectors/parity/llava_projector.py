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


def read_tensor(path, name):
    """One tensor of a safetensors file as float64: seek past the header to its bytes, so a large
    checkpoint is read only where the projector lives."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        info = json.loads(f.read(n))[name]
        begin, end = info["data_offsets"]
        f.seek(8 + n + begin)
        return DECODERS[info["dtype"]](f.read(end - begin)).astype(np.float64).reshape(info["shape"])


def write_tensor(path, name, array):
    """A safetensors file holding the one float64 tensor `name` (header space-padded to 8 bytes)."""
    data = np.ascontiguousarray(array, dtype="<f8").tobytes()
    header = json.dumps({name: {"dtype": "F64", "shape": list(array.shape), "data_offsets": [0, len(data)]}}).encode()
    header = header.ljust(-(-len(header) // 8) * 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header + data)


erf = np.vectorize(math.erf)


def main():
    ckpt, feats, out = sys.argv[1:4]
    x = read_tensor(feats, "features")
    p = "multi_modal_projector."
    h = x @ read_tensor(ckpt, p + "linear_1.weight").T + read_tensor(ckpt, p + "linear_1.bias")
    h = 0.5 * h * (1.0 + erf(h / math.sqrt(2.0)))
    y = h @ read_tensor(ckpt, p + "linear_2.weight").T + read_tensor(ckpt, p + "linear_2.bias")
    write_tensor(out, "projected", y)


if __name__ == "__main__":
    main()
