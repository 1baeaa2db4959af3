import { describe, expect, it } from 'vitest';
import { isVlitError, type RawImage } from '@vlit/core';
import { createNodeRuntime } from '@vlit/runtime/node';
import { createWorld, toWorldCoco, WORLD_BACKGROUNDS, WORLD_COLORS, WORLD_DIMENSIONS, worldSceneSvg, type WorldScene } from '../index.js';

const codec = createNodeRuntime().images;

async function render(svg: string): Promise<RawImage> {
  return codec.decode(await codec.svgToPng!(svg));
}

const rgbAt = (img: RawImage, x: number, y: number): [number, number, number] => {
  const i = (y * img.width + x) * 3;
  return [img.data[i], img.data[i + 1], img.data[i + 2]];
};
const dist = (a: readonly number[], b: readonly number[]): number => Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);

/** Pixels that differ from the background at all (anti-aliased edges included). */
function inkMask(img: RawImage, bg: readonly number[]): Uint8Array {
  const m = new Uint8Array(img.width * img.height);
  for (let y = 0; y < img.height; y++) for (let x = 0; x < img.width; x++) m[y * img.width + x] = dist(rgbAt(img, x, y), bg) > 6 ? 1 : 0;
  return m;
}
/** Pixels more than half covered: nearer the fill colour than the background. */
function halfMask(img: RawImage, fill: readonly number[], bg: readonly number[]): Uint8Array {
  const m = new Uint8Array(img.width * img.height);
  for (let y = 0; y < img.height; y++) {
    for (let x = 0; x < img.width; x++) {
      const p = rgbAt(img, x, y);
      m[y * img.width + x] = dist(p, fill) < dist(p, bg) ? 1 : 0;
    }
  }
  return m;
}
/** Pixels whose nearest colour among the background, the ink and every shape colour is `target`. */
function nearestMask(img: RawImage, target: readonly number[], bg: readonly number[], ink: readonly number[]): Uint8Array {
  const palette = [bg, ink, ...Object.values(WORLD_COLORS)];
  const m = new Uint8Array(img.width * img.height);
  for (let y = 0; y < img.height; y++) {
    for (let x = 0; x < img.width; x++) {
      const p = rgbAt(img, x, y);
      const best = palette.reduce((b, c) => (dist(p, c) < dist(p, b) ? c : b));
      m[y * img.width + x] = best === target ? 1 : 0;
    }
  }
  return m;
}
const count = (m: Uint8Array): number => m.reduce((s, v) => s + v, 0);
const intersection = (a: Uint8Array, b: Uint8Array): number => a.reduce((s, v, i) => s + (v & b[i]), 0);
/** Whether some pixel of `a` has a pixel of `b` among its 8 neighbours or itself. */
function adjacent(a: Uint8Array, b: Uint8Array, w: number, h: number): boolean {
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (!a[y * w + x]) continue;
      for (let dy = -1; dy <= 1; dy++)
        for (let dx = -1; dx <= 1; dx++) {
          const X = x + dx;
          const Y = y + dy;
          if (X >= 0 && Y >= 0 && X < w && Y < h && b[Y * w + X]) return true;
        }
    }
  }
  return false;
}
function centroid(m: Uint8Array, w: number): [number, number] {
  let sx = 0;
  let sy = 0;
  let n = 0;
  m.forEach((v, i) => {
    if (!v) return;
    sx += (i % w) + 0.5;
    sy += Math.floor(i / w) + 0.5;
    n++;
  });
  return [sx / n, sy / n];
}
/** Connected components (8-neighbour) of a mask with at least `minSize` pixels (smaller ones are edge blends). */
function components(m: Uint8Array, w: number, h: number, minSize = 4): number {
  const seen = new Uint8Array(m.length);
  let n = 0;
  for (let i = 0; i < m.length; i++) {
    if (!m[i] || seen[i]) continue;
    let size = 0;
    const stack = [i];
    seen[i] = 1;
    while (stack.length) {
      const j = stack.pop() as number;
      size++;
      const x = j % w;
      const y = Math.floor(j / w);
      for (let dy = -1; dy <= 1; dy++)
        for (let dx = -1; dx <= 1; dx++) {
          const X = x + dx;
          const Y = y + dy;
          const k = Y * w + X;
          if (X >= 0 && Y >= 0 && X < w && Y < h && m[k] && !seen[k]) {
            seen[k] = 1;
            stack.push(k);
          }
        }
    }
    if (size >= minSize) n++;
  }
  return n;
}

describe('synthetic world: determinism', () => {
  it('gives byte-identical SVG and annotation JSON for the same seed, different ones for another seed', () => {
    const a = createWorld({ seed: 11 }).scenes('train', 20);
    const b = createWorld({ seed: 11 }).scenes('train', 20);
    const c = createWorld({ seed: 12 }).scenes('train', 20);
    expect(a.map((s) => worldSceneSvg(s))).toEqual(b.map((s) => worldSceneSvg(s)));
    expect(JSON.stringify(toWorldCoco(a))).toBe(JSON.stringify(toWorldCoco(b)));
    expect(JSON.stringify(toWorldCoco(a))).not.toBe(JSON.stringify(toWorldCoco(c)));
    // Every scene differs, not just one: seeds reach every choice.
    a.forEach((s, i) => expect(worldSceneSvg(s)).not.toBe(worldSceneSvg(c[i])));
    // Random access agrees with sequential generation.
    expect(worldSceneSvg(createWorld({ seed: 11 }).scene('train', 13))).toBe(worldSceneSvg(a[13]));
  });

  it('renders the same SVG to byte-identical PNGs', async () => {
    const svg = worldSceneSvg(createWorld({ seed: 3 }).scene('train', 0));
    const [p, q] = await Promise.all([codec.svgToPng!(svg), codec.svgToPng!(svg)]);
    expect(Buffer.from(p).equals(Buffer.from(q))).toBe(true);
  });

  it('rejects invalid options with typed errors', () => {
    expect(() => createWorld({ seed: 1, size: 10 })).toThrow(expect.objectContaining({ code: 'VLIT_INVALID_ARGUMENT' }));
    expect(() => createWorld({ seed: 1, minShapes: 5, maxShapes: 2 })).toThrow(expect.objectContaining({ code: 'VLIT_INVALID_ARGUMENT' }));
    try {
      createWorld({ seed: 1 }).scene('train', -1);
      expect.unreachable();
    } catch (e) {
      expect(isVlitError(e, 'VLIT_INVALID_ARGUMENT')).toBe(true);
    }
  });

  it('uses well-separated colours and covers the vocabulary over a few hundred scenes', () => {
    const fills = Object.values(WORLD_COLORS);
    const backs = Object.values(WORLD_BACKGROUNDS).map((b) => b.rgb);
    for (let i = 0; i < fills.length; i++) {
      for (const other of [...fills.slice(i + 1), ...backs]) expect(dist(fills[i], other)).toBeGreaterThanOrEqual(80);
    }
    const scenes = createWorld({ seed: 5 }).scenes('train', 300);
    const shapes = new Set(scenes.flatMap((s) => s.objects.map((o) => o.shape)));
    const counts = new Set(scenes.map((s) => s.objects.length));
    const contacts = new Set(scenes.flatMap((s) => s.relations.map((r) => r.contact)));
    expect(shapes.size).toBe(7);
    expect([...counts].sort()).toEqual([1, 2, 3, 4, 5, 6]);
    expect([...contacts].sort()).toEqual(['apart', 'overlapping', 'touching']);
    const withWord = scenes.filter((s) => s.text).length;
    expect(withWord / scenes.length).toBeGreaterThan(0.25);
    expect(withWord / scenes.length).toBeLessThan(0.45);
    expect(WORLD_DIMENSIONS).toHaveLength(9);
  });
});

describe('synthetic world: placement invariants at other image sizes', () => {
  it('keeps every shape inside the image, out of the word band, with a (colour, shape) pair at most once', () => {
    for (const size of [64, 256]) {
      const scenes = createWorld({ seed: 8, size }).scenes('train', 60);
      for (const s of scenes) {
        expect(s.objects.length).toBeGreaterThanOrEqual(1);
        const names = s.objects.map((o) => `${o.color} ${o.shape}`);
        expect(new Set(names).size).toBe(names.length);
        for (const o of s.objects) {
          const [x, y, w, h] = o.bbox;
          expect(x).toBeGreaterThanOrEqual(0);
          expect(y).toBeGreaterThanOrEqual(0);
          expect(x + w).toBeLessThanOrEqual(size);
          expect(y + h).toBeLessThanOrEqual(size);
          if (s.text) {
            const [tx, ty, tw, th] = s.text.bbox;
            expect(y + h < ty || y > ty + th || x + w < tx || x > tx + tw).toBe(true);
          }
        }
        // Contacts are either clear overlaps, near-zero gaps, or 4 px or more apart: nothing in between.
        for (const r of s.relations) {
          if (r.contact === 'apart') expect(r.gap).toBeGreaterThanOrEqual(4);
          if (r.contact === 'touching') expect(r.gap).toBeLessThanOrEqual(0.5);
          if (r.contact === 'overlapping') expect(r.overlapArea).toBeGreaterThanOrEqual(12 * 0.9);
        }
      }
    }
  });
});

describe('synthetic world: rendering agrees with the annotations', () => {
  const world = createWorld({ seed: 2024 });
  const scenes = world.scenes('train', 30);

  // Each object alone on the background, rendered by librsvg: the independent view of its pixels.
  async function alone(scene: WorldScene): Promise<RawImage[]> {
    return Promise.all(scene.objects.map((o) => render(worldSceneSvg(scene, { objects: [o.index], text: false }))));
  }

  it('shows the annotated background outside every box, and the annotated colour at each uncovered centroid', async () => {
    let centres = 0;
    for (const scene of scenes) {
      const img = await render(worldSceneSvg(scene));
      const bg = WORLD_BACKGROUNDS[scene.background].rgb;
      const singles = await alone(scene);
      const boxes = [...scene.objects.map((o) => o.bbox), ...(scene.text ? [scene.text.bbox] : [])];
      let outside = 0;
      const wrong: string[] = [];
      for (let y = 0; y < img.height; y++) {
        for (let x = 0; x < img.width; x++) {
          const inBox = boxes.some(([bx, by, bw, bh]) => x + 1 > bx - 1 && x < bx + bw + 1 && y + 1 > by - 1 && y < by + bh + 1);
          if (inBox) continue;
          outside++;
          const p = rgbAt(img, x, y);
          if (p[0] !== bg[0] || p[1] !== bg[1] || p[2] !== bg[2]) wrong.push(`${x},${y}: ${p.join(',')}`);
        }
      }
      expect(wrong).toEqual([]);
      expect(outside).toBeGreaterThan(0);
      for (const o of scene.objects) {
        const cx = Math.floor(o.center[0]);
        const cy = Math.floor(o.center[1]);
        // Covered when any later shape's own rendering inks the centre pixel or a neighbour.
        const covered = scene.objects.slice(o.index + 1).some((later) => {
          const m = inkMask(singles[later.index], bg);
          for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) if (m[(cy + dy) * img.width + cx + dx]) return true;
          return false;
        });
        expect(o.centerVisible || covered).toBe(true);
        if (covered) continue;
        centres++;
        const p = rgbAt(img, cx, cy);
        expect(dist(p, WORLD_COLORS[o.color])).toBeLessThanOrEqual(3);
      }
    }
    expect(centres).toBeGreaterThan(60);
  });

  it('boxes each shape tightly: every inked pixel inside, every side within 1.5 px of ink', async () => {
    for (const scene of scenes.slice(0, 15)) {
      const bg = WORLD_BACKGROUNDS[scene.background].rgb;
      const singles = await alone(scene);
      for (const o of scene.objects) {
        const m = inkMask(singles[o.index], bg);
        const [bx, by, bw, bh] = o.bbox;
        let x1 = Infinity;
        let y1 = Infinity;
        let x2 = -Infinity;
        let y2 = -Infinity;
        m.forEach((v, i) => {
          if (!v) return;
          const x = i % scene.width;
          const y = Math.floor(i / scene.width);
          // Pixel [x, x+1) touches the box [bx, bx+bw].
          expect(x + 1).toBeGreaterThan(bx);
          expect(x).toBeLessThan(bx + bw);
          expect(y + 1).toBeGreaterThan(by);
          expect(y).toBeLessThan(by + bh);
          x1 = Math.min(x1, x);
          y1 = Math.min(y1, y);
          x2 = Math.max(x2, x + 1);
          y2 = Math.max(y2, y + 1);
        });
        expect(x1).toBeLessThanOrEqual(bx + 1.5);
        expect(y1).toBeLessThanOrEqual(by + 1.5);
        expect(x2).toBeGreaterThanOrEqual(bx + bw - 1.5);
        expect(y2).toBeGreaterThanOrEqual(by + bh - 1.5);
      }
    }
  });

  it('prints the word inside its box, in the annotated ink, clear of every shape', async () => {
    const withText = world
      .scenes('train', 80)
      .filter((s) => s.text)
      .slice(0, 12);
    expect(withText.length).toBeGreaterThanOrEqual(8);
    for (const scene of withText) {
      const t = scene.text!;
      const img = await render(worldSceneSvg(scene, { objects: [] }));
      const bg = WORLD_BACKGROUNDS[scene.background].rgb;
      const m = halfMask(img, t.ink, bg);
      expect(count(m)).toBeGreaterThan(20);
      const [bx, by, bw, bh] = t.bbox;
      inkMask(img, bg).forEach((v, i) => {
        if (!v) return;
        const x = i % scene.width;
        const y = Math.floor(i / scene.width);
        expect(x + 1 > bx && x < bx + bw && y + 1 > by && y < by + bh).toBe(true);
      });
      for (const o of scene.objects) {
        const [ox, oy, ow, oh] = o.bbox;
        expect(ox + ow < bx || ox > bx + bw || oy + oh < by || oy > by + bh).toBe(true);
      }
    }
  });
});

describe('synthetic world: relations and counts agree with geometry measured on pixels', () => {
  const world = createWorld({ seed: 99 });
  // Scenes rich in contacts, so every contact kind is measured many times.
  const scenes = world
    .scenes('train', 80)
    .filter((s) => s.objects.length >= 2)
    .slice(0, 40);

  it('overlap, touch and apart match rasterised masks; left/above match mask centroids', async () => {
    const seen = { overlapping: 0, touching: 0, apart: 0, horizontal: 0, vertical: 0 };
    for (const scene of scenes) {
      const bg = WORLD_BACKGROUNDS[scene.background].rgb;
      const { width: w, height: h } = scene;
      const singles = await Promise.all(scene.objects.map((o) => render(worldSceneSvg(scene, { objects: [o.index], text: false }))));
      const half = scene.objects.map((o) => halfMask(singles[o.index], WORLD_COLORS[o.color], bg));
      const ink = singles.map((img) => inkMask(img, bg));
      const centres = half.map((m) => centroid(m, w));
      scene.objects.forEach((o, i) => {
        expect(Math.abs(centres[i][0] - o.center[0])).toBeLessThan(0.75);
        expect(Math.abs(centres[i][1] - o.center[1])).toBeLessThan(0.75);
      });
      for (const r of scene.relations) {
        const shared = intersection(half[r.a], half[r.b]);
        seen[r.contact]++;
        if (r.contact === 'overlapping') expect(shared).toBeGreaterThanOrEqual(4);
        if (r.contact === 'touching') {
          expect(shared).toBeLessThanOrEqual(2);
          expect(adjacent(ink[r.a], ink[r.b], w, h)).toBe(true);
        }
        if (r.contact === 'apart') expect(adjacent(ink[r.a], ink[r.b], w, h)).toBe(false);
        // Directions from pixel centroids, skipping pairs within 1 px of the 10% margin.
        const m = 0.1 * w;
        const dx = centres[r.a][0] - centres[r.b][0];
        const dy = centres[r.a][1] - centres[r.b][1];
        if (Math.abs(Math.abs(dx) - m) > 1) {
          expect(r.horizontal).toBe(dx < -m ? 'left of' : dx > m ? 'right of' : null);
          seen.horizontal++;
        }
        if (Math.abs(Math.abs(dy) - m) > 1) {
          expect(r.vertical).toBe(dy < -m ? 'above' : dy > m ? 'below' : null);
          seen.vertical++;
        }
      }
    }
    expect(seen.overlapping).toBeGreaterThan(5);
    expect(seen.touching).toBeGreaterThan(5);
    expect(seen.apart).toBeGreaterThan(20);
    expect(seen.horizontal).toBeGreaterThan(50);
  });

  it('counts per colour equal the connected blobs of that colour in the rendered image', async () => {
    let checked = 0;
    for (const scene of scenes) {
      // Without the word: anti-aliased glyph edges are mixtures that can sit nearest a shape colour.
      const img = await render(worldSceneSvg(scene, { text: false }));
      const bg = WORLD_BACKGROUNDS[scene.background].rgb;
      for (const color of new Set(scene.objects.map((o) => o.color))) {
        const mine = scene.objects.filter((o) => o.color === color);
        // Only colours whose shapes meet nothing: then each shape is exactly one blob.
        const isolated = mine.every((o) => scene.relations.every((r) => (r.a !== o.index && r.b !== o.index) || r.contact === 'apart'));
        if (!isolated) continue;
        const ink = WORLD_BACKGROUNDS[scene.background].ink;
        expect(components(nearestMask(img, WORLD_COLORS[color], bg, ink), img.width, img.height)).toBe(mine.length);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(40);
  });
});
