import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isVlitError, type RawImage } from '@vlit/core';
import { centerCrop, convertToRgb, imageToTensor, meanFillColor, padToSquare } from './ops.js';
import { PIL_RESAMPLE_CODES, resizeImage, type ResampleFilter } from './resample.js';
import { clipProcessorSettings, OPENAI_CLIP_MEAN, parsePreprocessorConfig, parsePreprocessorConfigText, settingsFromPreprocessorConfig } from './config.js';
import { preprocessBatch, processedSize, resizeOutputSize } from './pipeline.js';
import { anyresViews, roundHalfEven, selectBestResolution, smartResize } from './tiling.js';
import { readPreprocessorConfig } from '../node.js';
import { syntheticImage } from '../testing/fixtures.js';

/** A 1-channel-per-pixel test image whose sample value encodes its position. */
function indexed(width: number, height: number): RawImage {
  const data = new Uint8Array(width * height * 3);
  for (let p = 0; p < width * height; p++) data.fill(p + 1, p * 3, p * 3 + 3);
  return { width, height, channels: 3, data };
}
const at = (im: RawImage, x: number, y: number) => im.data[(y * im.width + x) * im.channels];

const dir = mkdtempSync(join(tmpdir(), 'vlit-preprocess-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('resampling matches Pillow filter by filter', () => {
  it('every filter, up and down, odd sizes and one-axis resizes, equals Image.resize byte for byte', () => {
    const cases: [number, number, number, number][] = [
      [97, 61, 40, 30],
      [40, 30, 97, 61],
      [64, 64, 17, 64],
      [64, 64, 64, 5],
      [13, 200, 50, 3],
      [300, 7, 299, 9],
    ];
    const filters = Object.entries(PIL_RESAMPLE_CODES) as [string, ResampleFilter][];
    const jobs: Record<string, unknown>[] = [];
    const expected: { file: string; got: RawImage }[] = [];
    cases.forEach(([w, h, ow, oh], i) => {
      const img = syntheticImage(w, h, 3, `resize:${i}`);
      const inPath = join(dir, `in${i}.raw`);
      writeFileSync(inPath, img.data);
      for (const [code, filter] of filters) {
        if (filter === 'nearest') continue; // Pillow routes nearest through an affine transform; covered by hand below.
        const out = join(dir, `out${i}_${code}.raw`);
        jobs.push({ in: inPath, width: w, height: h, out, out_width: ow, out_height: oh, filter: Number(code) });
        expected.push({ file: out, got: resizeImage(img, { width: ow, height: oh, filter }) });
      }
    });
    writeFileSync(join(dir, 'jobs.json'), JSON.stringify(jobs));
    const script = new URL('../../parity/resize_reference.py', import.meta.url).pathname;
    execFileSync('/usr/bin/python3', [script, join(dir, 'jobs.json')], { stdio: 'pipe' });
    let mismatched = 0;
    for (const e of expected) {
      const ref = new Uint8Array(readFileSync(e.file));
      expect(ref.length).toBe(e.got.data.length);
      for (let k = 0; k < ref.length; k++) if (ref[k] !== e.got.data[k]) mismatched++;
    }
    expect(expected.length).toBe(cases.length * 5);
    expect(mismatched).toBe(0);
  });

  it('bilinear 4→2 by hand: antialiased downscaling averages each pair (filter support widened ×2)', () => {
    // Output centre 1.0 in input coordinates, support 2: taps at x=0..2 with weights 0.25, 0.5, 0.25 (×(1/1)), normalised.
    const img: RawImage = { width: 4, height: 1, channels: 3, data: new Uint8Array([0, 0, 0, 100, 100, 100, 200, 200, 200, 40, 40, 40]) };
    const out = resizeImage(img, { width: 2, height: 1, filter: 'bilinear' });
    // x0: taps 0,1,2 at distances 0.5,0.5,1.5 (/2): weights .75,.75,.25 -> (0*.75+100*.75+200*.25)/1.75 = 71.43 -> 71
    // x1: taps 1,2,3 at distances 1.5,0.5,0.5 (/2): weights .25,.75,.75 -> (100*.25+200*.75+40*.75)/1.75 = 117.14 -> 117
    expect(Array.from(out.data)).toEqual([71, 71, 71, 117, 117, 117]);
  });

  it('nearest picks the pixel under each output centre', () => {
    const out = resizeImage(indexed(4, 1), { width: 2, height: 1, filter: 'nearest' });
    expect([at(out, 0, 0), at(out, 1, 0)]).toEqual([2, 4]);
  });

  it('same size is a copy; bad sizes are typed errors', () => {
    const img = indexed(3, 2);
    const same = resizeImage(img, { width: 3, height: 2 });
    expect(same.data).toEqual(img.data);
    expect(same.data).not.toBe(img.data);
    try {
      resizeImage(img, { width: 0, height: 2 });
      expect.unreachable();
    } catch (err) {
      expect(isVlitError(err, 'VLIT_INVALID_ARGUMENT')).toBe(true);
    }
  });
});

describe('geometry', () => {
  it('resize output size: short side to the target, long side truncated', () => {
    expect(resizeOutputSize({ width: 640, height: 480 }, { shortestEdge: 336 })).toEqual({ width: 448, height: 336 });
    expect(resizeOutputSize({ width: 480, height: 640 }, { shortestEdge: 336 })).toEqual({ width: 336, height: 448 });
    // 336 * 500 / 335 = 501.49 -> 501
    expect(resizeOutputSize({ width: 335, height: 500 }, { shortestEdge: 336 })).toEqual({ width: 336, height: 501 });
    expect(resizeOutputSize({ width: 10, height: 10 }, { height: 7, width: 9 })).toEqual({ width: 9, height: 7 });
  });

  it('centre crop uses floor division: an odd excess leaves the extra column on the right', () => {
    const c = centerCrop(indexed(5, 4), { width: 2, height: 2 });
    // left = (5-2)//2 = 1, top = (4-2)//2 = 1 -> pixels (1,1),(2,1),(1,2),(2,2) = 7, 8, 12, 13
    expect([at(c, 0, 0), at(c, 1, 0), at(c, 0, 1), at(c, 1, 1)]).toEqual([7, 8, 12, 13]);
  });

  it('centre crop of a too-small image pads with zeros, image placed at ceil(excess/2)', () => {
    const c = centerCrop(indexed(3, 2), { width: 4, height: 4 });
    // pad top ceil(2/2)=1, left ceil(1/2)=1; crop offsets (-1)//2=-1 and (-2)//2=-1 shift back to 0.
    const rows = [0, 1, 2, 3].map((y) => [0, 1, 2, 3].map((x) => at(c, x, y)));
    expect(rows).toEqual([
      [0, 0, 0, 0],
      [0, 1, 2, 3],
      [0, 4, 5, 6],
      [0, 0, 0, 0],
    ]);
  });

  it('LLaVA pad: square canvas in the mean colour int(mean*255) = (122, 116, 104), image centred', () => {
    const fill = meanFillColor(OPENAI_CLIP_MEAN);
    expect(fill).toEqual([122, 116, 104]);
    const sq = padToSquare(indexed(4, 2), fill);
    expect([sq.width, sq.height]).toEqual([4, 4]);
    expect(Array.from(sq.data.subarray(0, 3))).toEqual([122, 116, 104]);
    expect(at(sq, 0, 1)).toBe(1);
    expect(at(sq, 3, 2)).toBe(8);
    expect(Array.from(sq.data.subarray(3 * 4 * 3, 3 * 4 * 3 + 3))).toEqual([122, 116, 104]);
  });

  it('convert to RGB replicates grey and drops alpha (no compositing)', () => {
    const grey = convertToRgb({ width: 2, height: 1, channels: 1, data: new Uint8Array([9, 200]) });
    expect(Array.from(grey.data)).toEqual([9, 9, 9, 200, 200, 200]);
    const rgba = convertToRgb({ width: 1, height: 1, channels: 4, data: new Uint8Array([10, 20, 30, 0]) });
    expect(Array.from(rgba.data)).toEqual([10, 20, 30]);
  });
});

describe('tensors', () => {
  it('rescale + normalise channel-first with hand-computed values', () => {
    const img: RawImage = { width: 2, height: 1, channels: 3, data: new Uint8Array([0, 128, 255, 255, 0, 64]) };
    const t = imageToTensor(img, { rescaleFactor: 1 / 255, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] });
    expect(t.dims).toEqual([3, 1, 2]);
    // (v/255 - 0.5)/0.5: R plane [0, 255] -> [-1, 1]; G [128, 0] -> [0.003921..., -1]; B [255, 64] -> [1, -0.498039...]
    const expected = [-1, 1, 128 / 127.5 - 1, -1, 1, 64 / 127.5 - 1];
    Array.from(t.data).forEach((v, i) => expect(v).toBeCloseTo(expected[i], 6));
    const clip = imageToTensor({ width: 1, height: 1, channels: 3, data: new Uint8Array([0, 0, 0]) }, clipProcessorSettings());
    expect(clip.data[0]).toBeCloseTo(-0.48145466 / 0.26862954, 6);
  });

  it('a batch needs equal processed sizes, and the error names the image', () => {
    const s = settingsFromPreprocessorConfig({ size: { shortest_edge: 8 }, do_center_crop: false });
    expect(preprocessBatch([indexed(8, 8), indexed(16, 16)], s).dims).toEqual([2, 3, 8, 8]);
    try {
      preprocessBatch([indexed(8, 8), indexed(16, 8)], s);
      expect.unreachable();
    } catch (err) {
      expect(isVlitError(err, 'VLIT_INVALID_ARGUMENT')).toBe(true);
      expect((err as { details: { record: number } }).details.record).toBe(1);
    }
  });

  it('processedSize predicts the pipeline without touching pixels', () => {
    const s = { ...clipProcessorSettings(336), centerCrop: null };
    expect(processedSize({ width: 640, height: 480 }, s)).toEqual({ width: 448, height: 336 });
    expect(processedSize({ width: 640, height: 480 }, { ...s, padToSquare: [0, 0, 0] })).toEqual({ width: 336, height: 336 });
  });
});

describe('high resolution', () => {
  const pinpoints: [number, number][] = [
    [336, 672],
    [672, 336],
    [672, 672],
    [1008, 336],
    [336, 1008],
  ];

  it('select_best_resolution by hand: 1000x400 prefers [336, 1008] (scale .84 keeps 840x336)', () => {
    expect(selectBestResolution({ width: 1000, height: 400 }, pinpoints)).toEqual([336, 1008]);
    // 1000x500: [336,672] and [672,672] both keep 672x336; the first wastes nothing.
    expect(selectBestResolution({ width: 1000, height: 500 }, pinpoints)).toEqual([336, 672]);
    expect(selectBestResolution({ width: 300, height: 900 }, pinpoints)).toEqual([1008, 336]);
  });

  it('anyres views: base view + row-major tiles of the padded canvas', () => {
    const img = syntheticImage(100, 40, 3, 'anyres');
    const views = anyresViews(img, {
      gridPinpoints: [
        [32, 64],
        [32, 96],
        [64, 64],
      ],
      tileSize: 32,
    });
    // 100x40 into [32, 96]: scale min(.96, .8) = .8 keeps 80x32 (best); resized to 80x32, padded 8 px each side.
    expect(views).toHaveLength(4);
    expect(views.every((v) => v.width === 32 && v.height === 32)).toBe(true);
    expect(Array.from(views[1].data.subarray(0, 3 * 8)).every((v) => v === 0)).toBe(true);
    const resized = resizeImage(img, { width: 80, height: 32, filter: 'bicubic' });
    // Tile 1 column 8 is resized column 0.
    expect(Array.from(views[1].data.subarray(8 * 3, 9 * 3))).toEqual(Array.from(resized.data.subarray(0, 3)));
  });

  it("smart_resize against Python's results (round half to even included)", () => {
    expect(smartResize({ height: 1080, width: 1920 })).toEqual({ height: 728, width: 1316 });
    expect(smartResize({ height: 42, width: 70 })).toEqual({ height: 56, width: 56 });
    expect(smartResize({ height: 30, width: 40 })).toEqual({ height: 56, width: 84 });
    expect(smartResize({ height: 500, width: 375 })).toEqual({ height: 504, width: 364 });
    expect([0.5, 1.5, 2.5, 3.5, -1.5].map(roundHalfEven)).toEqual([0, 2, 2, 4, -2]);
  });
});

describe('preprocessor_config.json', () => {
  it('CLIPImageProcessor defaults fill absent fields; unknown fields pass through', () => {
    const c = parsePreprocessorConfig({ feature_extractor_type: 'CLIPFeatureExtractor', crop_size: 336, size: 336 });
    const s = settingsFromPreprocessorConfig(c);
    expect(s).toEqual({ ...clipProcessorSettings(336), rescaleFactor: 1 / 255 });
    expect(settingsFromPreprocessorConfig({ resample: 2, do_normalize: false, do_center_crop: false }).resample).toBe('bilinear');
    expect(settingsFromPreprocessorConfig({ image_mean: [0.5, 0.5, 0.5] }, { padToSquare: true }).padToSquare).toEqual([127, 127, 127]);
  });

  const bad: [string, unknown, string][] = [
    ['image_mean of the wrong type', { image_mean: 'clip' }, 'image_mean'],
    ['a negative shortest edge', { size: { shortest_edge: -1 } }, 'size'],
    ['an unknown resample code', { resample: 9 }, 'resample'],
    ['a crop size without width', { crop_size: { height: 336 } }, 'crop_size'],
    ['two means for RGB', { image_mean: [0.5, 0.5] }, 'image_mean'],
    ['a zero std', { image_std: [0.5, 0, 0.5] }, 'image_std'],
  ];
  it.each(bad)('%s is a ValidationError naming the file and field', async (_name, json, field) => {
    const file = join(dir, `${field}.json`);
    writeFileSync(file, JSON.stringify(json));
    const err = await readPreprocessorConfig(file).catch((e: unknown) => e);
    expect(isVlitError(err, 'VLIT_VALIDATION')).toBe(true);
    const e = err as { details: { file: string; field: string }; message: string };
    expect(e.details.file).toBe(file);
    expect(e.details.field.startsWith(field)).toBe(true);
    expect(e.message).toContain(file);
  });

  it('bad JSON is a FormatError and a missing file a NotFoundError, both naming the file', async () => {
    const file = join(dir, 'broken.json');
    writeFileSync(file, '{ "size": ');
    const e1 = await readPreprocessorConfig(file).catch((e: unknown) => e);
    expect(isVlitError(e1, 'VLIT_FORMAT')).toBe(true);
    expect((e1 as { details: { file: string } }).details.file).toBe(file);
    const e2 = await readPreprocessorConfig(join(dir, 'nope.json')).catch((e: unknown) => e);
    expect(isVlitError(e2, 'VLIT_NOT_FOUND')).toBe(true);
    expect(() => parsePreprocessorConfigText('[]', { file: 'x.json' })).toThrow(/x\.json/);
  });
});
