import { describe, expect, it } from 'vitest';
import { isVlitError } from '@vlit/core';
import { createNodeRuntime, createSharpCodec, renderSvgToPng } from './node.js';

const codec = createSharpCodec();

const px = (img: { width: number; data: Uint8Array }, x: number, y: number): number[] =>
  Array.from(img.data.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3));

// A grey canvas with a red rectangle on whole-pixel edges and a blue circle.
const SCENE = `<svg xmlns="http://www.w3.org/2000/svg" width="40" height="30" viewBox="0 0 40 30">
<rect x="0" y="0" width="40" height="30" fill="#808080"/>
<rect x="4" y="6" width="8" height="10" fill="#e61919"/>
<circle cx="27" cy="15" r="9" fill="#1e50e6"/>
</svg>`;

describe('renderSvgToPng (sharp / librsvg)', () => {
  it('renders one pixel per user unit with exact fills on whole-pixel edges', async () => {
    const img = await codec.decode(await renderSvgToPng(SCENE));
    expect([img.width, img.height, img.channels]).toEqual([40, 30, 3]);
    // Pixel (x, y) covers [x, x+1): the rectangle owns columns 4..11 and rows 6..15, nothing else.
    for (let y = 0; y < 30; y++) {
      for (let x = 0; x < 16; x++) {
        const inside = x >= 4 && x < 12 && y >= 6 && y < 16;
        expect(px(img, x, y)).toEqual(inside ? [230, 25, 25] : [128, 128, 128]);
      }
    }
  });

  it('fills a circle: pixel centres well inside are the fill, well outside the background', async () => {
    const img = await codec.decode(await renderSvgToPng(SCENE));
    let inside = 0;
    for (let y = 0; y < 30; y++) {
      for (let x = 16; x < 40; x++) {
        const d = Math.hypot(x + 0.5 - 27, y + 0.5 - 15);
        if (d < 8) {
          expect(px(img, x, y)).toEqual([30, 80, 230]);
          inside++;
        } else if (d > 10) {
          expect(px(img, x, y)).toEqual([128, 128, 128]);
        }
      }
    }
    // Area of a radius-8 disc is ~201 pixel centres.
    expect(inside).toBeGreaterThan(190);
    expect(inside).toBeLessThan(212);
  });

  it('is deterministic: the same SVG gives byte-identical PNGs; the codec and runtime expose it', async () => {
    const a = await renderSvgToPng(SCENE);
    const b = await codec.svgToPng!(SCENE);
    const c = await createNodeRuntime().images.svgToPng!(SCENE);
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
    expect(Buffer.from(a).equals(Buffer.from(c))).toBe(true);
    // PNG signature.
    expect(Array.from(a.subarray(0, 8))).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  });

  it('renders DejaVu Sans text inside the box its advance widths predict', async () => {
    // DejaVu Sans advances (units per 1000 em): c 550, a 613, t 392 -> "cat" at 20 px is 31.1 px wide;
    // ink rises at most 0.76 em above the baseline and drops at most 0.24 em below it.
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="60" height="40"><rect width="60" height="40" fill="#ffffff"/>
<text x="30" y="28" font-family="DejaVu Sans" font-size="20" fill="#000000" text-anchor="middle">cat</text></svg>`;
    const img = await codec.decode(await renderSvgToPng(svg));
    const half = 31.1 / 2;
    let ink = 0;
    for (let y = 0; y < 40; y++) {
      for (let x = 0; x < 60; x++) {
        const dark = px(img, x, y)[0] < 128;
        if (!dark) continue;
        ink++;
        expect(x).toBeGreaterThanOrEqual(Math.floor(30 - half));
        expect(x).toBeLessThanOrEqual(Math.ceil(30 + half));
        expect(y).toBeGreaterThanOrEqual(Math.floor(28 - 0.76 * 20));
        expect(y).toBeLessThanOrEqual(Math.ceil(28 + 0.24 * 20));
      }
    }
    // Three glyphs of ink: an empty canvas would pass the box checks vacuously.
    expect(ink).toBeGreaterThan(40);
  });

  it('gives typed errors for a root without pixel size, bytes that are not SVG, and oversized canvases', async () => {
    const noSize = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><rect width="10" height="10"/></svg>';
    await expect(renderSvgToPng(noSize, { source: 'scene-1' })).rejects.toSatisfy(
      (e: unknown) => isVlitError(e, 'VLIT_INVALID_ARGUMENT') && String(e).includes('scene-1'),
    );
    await expect(renderSvgToPng('hello')).rejects.toSatisfy((e: unknown) => isVlitError(e, 'VLIT_IMAGE_DECODE'));
    const broken = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10"';
    await expect(renderSvgToPng(broken, { source: 'broken.svg' })).rejects.toSatisfy(
      (e: unknown) => isVlitError(e, 'VLIT_IMAGE_DECODE') && String(e).includes('broken.svg'),
    );
    const huge = '<svg xmlns="http://www.w3.org/2000/svg" width="100000" height="100000"></svg>';
    await expect(renderSvgToPng(huge)).rejects.toSatisfy((e: unknown) => isVlitError(e, 'VLIT_LIMIT_EXCEEDED'));
  });
});
