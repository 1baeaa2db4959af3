#!/usr/bin/env python3
"""Independent float64 references for the conformance graphs, in numpy.

Usage: /usr/bin/python3 reference.py INPUT.safetensors OUTPUT.safetensors

Reads tensors from INPUT (parsed here from the safetensors byte layout with json + numpy, not with
any Vlit code), computes each case's expected output, and writes OUTPUT the same way.
Requires Debian's python3-numpy (installed by .ci/run).
"""
import json
import math
import struct
import sys

import numpy as np

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    body = raw[8 + n :]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        out[name] = np.frombuffer(body[begin:end], dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
    return out


def write_safetensors(path, tensors):
    header = {}
    offset = 0
    blobs = []
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name], dtype=np.float64)
        data = arr.tobytes()
        header[name] = {"dtype": "F64", "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


erf = np.vectorize(math.erf)


def gelu(x):
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def main():
    t = {k: v.astype(np.float64) for k, v in read_safetensors(sys.argv[1]).items()}
    out = {}
    # MLP projector: gelu(x W1 + b1) W2 + b2
    out["mlp"] = gelu(t["mlp.x"] @ t["mlp.w1"] + t["mlp.b1"]) @ t["mlp.w2"] + t["mlp.b2"]
    # Conv patch embedding via explicit patch extraction (independent of any conv routine)
    img, w, b = t["patch.image"][0], t["patch.weight"], t["patch.bias"]
    oc, c, p, _ = w.shape
    gh, gw = img.shape[1] // p, img.shape[2] // p
    patches = img[:, : gh * p, : gw * p].reshape(c, gh, p, gw, p).transpose(1, 3, 0, 2, 4).reshape(gh * gw, c * p * p)
    out["patch"] = patches @ w.reshape(oc, c * p * p).T + b
    # LayerNorm over the last axis
    x = t["ln.x"]
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    out["ln"] = (x - mu) / np.sqrt(var + float(t["ln.eps"][0])) * t["ln.scale"] + t["ln.bias"]
    # Multi-head self-attention
    x = t["attn.x"]
    heads = int(t["attn.heads"][0])
    n, d = x.shape
    dh = d // heads
    def split(m):
        return m.reshape(n, heads, dh).transpose(1, 0, 2)
    q = split(x @ t["attn.wq"] + t["attn.bq"])
    k = split(x @ t["attn.wk"] + t["attn.bk"])
    v = split(x @ t["attn.wv"] + t["attn.bv"])
    att = softmax(q @ k.transpose(0, 2, 1) / math.sqrt(dh)) @ v
    out["attn"] = att.transpose(1, 0, 2).reshape(n, d) @ t["attn.wo"] + t["attn.bo"]
    write_safetensors(sys.argv[2], out)


if __name__ == "__main__":
    main()
