#!/usr/bin/env python3
"""Pillow's Image.resize on raw RGB images, for checking Vlit's resampler filter by filter.

  resize_reference.py SPEC.json   SPEC: [{"in": raw path, "width", "height", "out": raw path,
                                          "out_width", "out_height", "filter": Pillow code}]
Run with /usr/bin/python3 (Debian python3-pil + python3-numpy).
"""
import json
import sys

import numpy as np
from PIL import Image

for job in json.load(open(sys.argv[1])):
    pixels = np.fromfile(job["in"], dtype=np.uint8).reshape(job["height"], job["width"], 3)
    out = Image.fromarray(pixels).resize((job["out_width"], job["out_height"]), resample=job["filter"], reducing_gap=None)
    np.asarray(out, dtype=np.uint8).tofile(job["out"])
