#!/usr/bin/env python3
"""Reference implementation of Hugging Face's CLIPImageProcessor with PIL + numpy only.

Written from the behaviour of transformers' CLIPImageProcessor.preprocess (convert_rgb -> resize
with get_resize_output_image_size -> center_crop -> rescale -> normalize, channels first), so Vlit's
TypeScript pipeline can be checked against it without installing transformers. Run with Debian's
interpreter (/usr/bin/python3, python3-pil + python3-numpy).

  clip_reference.py CONFIG OUT IMAGE...          write pixels + tensors to OUT (safetensors)
  clip_reference.py --bench N CONFIG IMAGE...    time N passes over the images, print JSON
"""
import json
import math
import struct
import sys
import time

import numpy as np
from PIL import Image

OPENAI_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def load_config(path):
    with open(path) as f:
        c = json.load(f)
    size = c.get("size", {"shortest_edge": 224})
    if isinstance(size, int):
        size = {"shortest_edge": size}
    crop = c.get("crop_size", 224)
    if isinstance(crop, int):
        crop = {"height": crop, "width": crop}
    return {
        "do_convert_rgb": c.get("do_convert_rgb", True),
        "do_resize": c.get("do_resize", True),
        "size": size,
        "resample": c.get("resample", 3),
        "do_center_crop": c.get("do_center_crop", True),
        "crop_size": crop,
        "do_rescale": c.get("do_rescale", True),
        "rescale_factor": c.get("rescale_factor", 1 / 255),
        "do_normalize": c.get("do_normalize", True),
        "image_mean": c.get("image_mean", OPENAI_CLIP_MEAN),
        "image_std": c.get("image_std", OPENAI_CLIP_STD),
    }


def resize_output_size(height, width, size):
    # transformers.image_transforms.get_resize_output_image_size, default_to_square=False for shortest_edge.
    if "height" in size:
        return size["height"], size["width"]
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = size["shortest_edge"], int(size["shortest_edge"] * long / short)
    return (new_long, new_short) if width <= height else (new_short, new_long)


def center_crop(image, crop_height, crop_width):
    # transformers.image_transforms.center_crop on an HWC array: floor division, zero padding if too small.
    orig_height, orig_width = image.shape[:2]
    top = (orig_height - crop_height) // 2
    bottom = top + crop_height
    left = (orig_width - crop_width) // 2
    right = left + crop_width
    if top >= 0 and bottom <= orig_height and left >= 0 and right <= orig_width:
        return image[top:bottom, left:right]
    new_height = max(crop_height, orig_height)
    new_width = max(crop_width, orig_width)
    new_image = np.zeros((new_height, new_width) + image.shape[2:], dtype=image.dtype)
    top_pad = math.ceil((new_height - orig_height) / 2)
    left_pad = math.ceil((new_width - orig_width) / 2)
    new_image[top_pad:top_pad + orig_height, left_pad:left_pad + orig_width] = image
    top += top_pad
    bottom += top_pad
    left += left_pad
    right += left_pad
    return new_image[max(0, top):min(new_height, bottom), max(0, left):min(new_width, right)]


def preprocess(path, cfg):
    image = Image.open(path)
    if cfg["do_convert_rgb"]:
        image = image.convert("RGB")
    pixels = np.array(image)
    if cfg["do_resize"]:
        h, w = resize_output_size(pixels.shape[0], pixels.shape[1], cfg["size"])
        pixels = np.array(Image.fromarray(pixels).resize((w, h), resample=cfg["resample"], reducing_gap=None))
    if cfg["do_center_crop"]:
        pixels = center_crop(pixels, cfg["crop_size"]["height"], cfg["crop_size"]["width"])
    x = pixels
    if cfg["do_rescale"]:
        x = (x.astype(np.float64) * cfg["rescale_factor"]).astype(np.float32)
    if cfg["do_normalize"]:
        x = x.astype(np.float32)
        mean = np.array(cfg["image_mean"], dtype=x.dtype)
        std = np.array(cfg["image_std"], dtype=x.dtype)
        x = (x - mean) / std
    return pixels, np.ascontiguousarray(x.transpose(2, 0, 1).astype(np.float32))


def write_safetensors(path, tensors):
    header = {}
    offset = 0
    blobs = []
    for name, arr in tensors:
        dtype = {np.dtype(np.float32): "F32", np.dtype(np.uint8): "U8"}[arr.dtype]
        data = np.ascontiguousarray(arr).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    h = json.dumps(header).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main(argv):
    if argv and argv[0] == "--bench":
        passes = int(argv[1])
        cfg = load_config(argv[2])
        paths = argv[3:]
        for p in paths[:2]:
            preprocess(p, cfg)  # warm-up: imports and decoder set-up
        t0 = time.perf_counter()
        for _ in range(passes):
            for p in paths:
                preprocess(p, cfg)
        seconds = time.perf_counter() - t0
        print(json.dumps({"images": passes * len(paths), "seconds": seconds}))
        return
    cfg = load_config(argv[0])
    out = argv[1]
    tensors = []
    for i, p in enumerate(argv[2:]):
        pixels, x = preprocess(p, cfg)
        tensors.append((f"pixels.{i}", pixels))
        tensors.append((f"x.{i}", x))
    write_safetensors(out, tensors)


if __name__ == "__main__":
    main(sys.argv[1:])
