#!/usr/bin/env python3
"""Can shape identity be learnt from what the main job's vision tower sees? A diagnostic, not a test.

Usage: .venv/bin/python scripts/world-shape-probe.py OUT_DIR MODE [STEPS]
  OUT_DIR  a folder `npm run demo` wrote (reads world/annotations/instances_{train,heldout}.json and the images)
  MODE     patch16  the tower's own input: 16 px patches as 8x8 cells of 2x2-pixel mean colour (192 values),
                    16 tokens; a 2-layer pre-LN transformer (width 128) classifies each patch holding an
                    object's box centre (the largest object's shape wins)
           patch16-shift  the same, each training image shifted by up to 8 px each way per batch
           patch8   raw 8 px patches (192 values), 64 tokens, shifted as above
           crop     a small CNN on 24x24 crops centred on each object (the best case: the object is found)
Prints train and held-out accuracy over the 7 shapes (chance 14.3%) every 500 steps. PyTorch from the
local wheel index (.venv, see ENVIRONMENT.md); seeded, CPU.
"""
import json
import sys

import numpy as np
import torch
import torch.nn as nn
from PIL import Image

SHAPES = ['circle', 'square', 'triangle', 'star', 'diamond', 'hexagon', 'cross']
SIDE = 64


def load(root, split):
    d = json.load(open(f'{root}/world/annotations/instances_{split}.json'))
    cats = {c['id']: c['name'] for c in d['categories']}
    objects = {}
    for a in d['annotations']:
        x, y, w, h = a['bbox']
        objects.setdefault(a['image_id'], []).append((x + w / 2, y + h / 2, a['area'], SHAPES.index(cats[a['category_id']])))
    images = []
    for im in d['images']:
        px = np.asarray(Image.open(f"{root}/world/{im['file_name']}").convert('RGB'), dtype=np.float32) / 255
        images.append((px, objects.get(im['id'], [])))
    return images


def shifted(px, dx, dy):
    out = np.empty_like(px)
    out[:] = px[0, 0]  # the background colour fills what the shift uncovers
    xs, xd = (0, dx) if dx >= 0 else (-dx, 0)
    ys, yd = (0, dy) if dy >= 0 else (-dy, 0)
    w, h = SIDE - abs(dx), SIDE - abs(dy)
    out[yd:yd + h, xd:xd + w] = px[ys:ys + h, xs:xs + w]
    return out


def patch_tokens(px, patch):
    grid = SIDE // patch
    if patch == 16:
        px = px.reshape(32, 2, 32, 2, 3).mean((1, 3))  # 2x2-pixel cells, as the tower's embedding reads them
        patch = 8
    return px.reshape(grid, patch, grid, patch, 3).transpose(0, 2, 1, 3, 4).reshape(grid * grid, -1)


def patch_batch(images, idx, patch, shift, rng):
    grid = SIDE // patch
    xs, ys = [], []
    for i in idx:
        px, objs = images[i]
        dx, dy = (int(v) for v in rng.integers(-8, 9, 2)) if shift else (0, 0)
        labels = np.full(grid * grid, -100)
        best = {}
        for cx, cy, area, shape in objs:
            cx, cy = cx + dx, cy + dy
            if 0 <= cx < SIDE and 0 <= cy < SIDE:
                p = int(cy // patch) * grid + int(cx // patch)
                if p not in best or area > best[p][0]:
                    best[p] = (area, shape)
        for p, (_, shape) in best.items():
            labels[p] = shape
        xs.append(patch_tokens(shifted(px, dx, dy), patch))
        ys.append(labels)
    return torch.tensor(np.array(xs)), torch.tensor(np.array(ys))


class PatchClassifier(nn.Module):
    def __init__(self, tokens, width=128, layers=2):
        super().__init__()
        self.pos = nn.Parameter(torch.eye(tokens).unsqueeze(0), requires_grad=False)
        self.inp = nn.Linear(192 + tokens, width)
        layer = nn.TransformerEncoderLayer(width, 4, 2 * width, 0.0, batch_first=True, norm_first=True)
        self.enc = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out = nn.Linear(width, len(SHAPES))

    def forward(self, x):
        return self.out(self.enc(self.inp(torch.cat([x, self.pos.expand(x.shape[0], -1, -1)], -1))))


def crops(images):
    xs, ys = [], []
    for px, objs in images:
        padded = np.pad(px, ((12, 12), (12, 12), (0, 0)), mode='edge')
        for cx, cy, _, shape in objs:
            x, y = int(round(cx)) + 12, int(round(cy)) + 12
            xs.append(padded[y - 12:y + 12, x - 12:x + 12].transpose(2, 0, 1))
            ys.append(shape)
    return torch.tensor(np.array(xs)), torch.tensor(ys)


def main():
    root, mode = sys.argv[1], sys.argv[2]
    steps = int(sys.argv[3]) if len(sys.argv) > 3 else 3000
    torch.manual_seed(0)
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    train, heldout = load(root, 'train'), load(root, 'heldout')
    loss_fn = nn.CrossEntropyLoss(ignore_index=-100)
    if mode == 'crop':
        xt, yt = crops(train)
        xh, yh = crops(heldout)
        model = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(64 * 36, 128), nn.ReLU(), nn.Linear(128, len(SHAPES)))
        batch = lambda: (lambda i: (xt[i], yt[i]))(torch.randint(0, len(xt), (64,)))
        evaluate = lambda x, y: (model(x).argmax(-1) == y).float().mean().item()
    else:
        patch = 8 if mode == 'patch8' else 16
        shift = mode != 'patch16'
        xt, yt = patch_batch(train, range(len(train)), patch, False, rng)
        xh, yh = patch_batch(heldout, range(len(heldout)), patch, False, rng)
        model = PatchClassifier((SIDE // patch) ** 2)
        batch = lambda: patch_batch(train, rng.integers(0, len(train), 32), patch, shift, rng)
        evaluate = lambda x, y: (((model(x).argmax(-1) == y) & (y >= 0)).sum() / (y >= 0).sum()).item()
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    print(f'{mode}: {len(train)} training and {len(heldout)} held-out images; chance {1 / len(SHAPES):.3f}')
    for step in range(1, steps + 1):
        x, y = batch()
        logits = model(x)
        loss = loss_fn(logits.reshape(-1, len(SHAPES)), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 500 == 0 or step == steps:
            with torch.no_grad():
                print(f'step {step}: loss {loss.item():.3f}, train {evaluate(xt, yt):.3f}, held-out {evaluate(xh, yh):.3f}', flush=True)


if __name__ == '__main__':
    main()
