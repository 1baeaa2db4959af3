// Scenes of the synthetic world: seeded placement of shapes and an optional word, their relations, and SVG.
import { createRng, InvalidArgumentError, type Rng } from '@vlit/core';
import { z } from 'zod';
import { spatialRelation, type SpatialRelation } from '../adapt/geometry.js';
import { overlapArea, pointInPolygon, polygonArea, polygonBox, polygonGap, shapeOutline, type Point } from './geometry.js';
import {
  DEJAVU_SANS_ADVANCE,
  WORLD_BACKGROUND_NAMES,
  WORLD_BACKGROUNDS,
  WORLD_COLOR_NAMES,
  WORLD_COLORS,
  WORLD_LOCATIONS,
  WORLD_SHAPES,
  WORLD_SIZE_NAMES,
  WORLD_SIZES,
  WORLD_WORDS,
  type WorldBackground,
  type WorldColor,
  type WorldLocation,
  type WorldShape,
  type WorldSize,
} from './vocabulary.js';

/** Options of the synthetic world; every scene is a pure function of these and the scene's split and index. */
export const worldOptionsSchema = z.object({
  /** Seed of every choice. */
  seed: z.union([z.number(), z.string()]),
  /** Image side in pixels (square images). Default 128. */
  size: z.number().int().min(48).max(1024).default(128),
  /** Fewest and most shapes per scene. Default 1..6. */
  minShapes: z.number().int().min(1).max(6).default(1),
  maxShapes: z.number().int().min(1).max(6).default(6),
  /** Share of scenes that carry a printed word. Default 0.35. */
  wordRate: z.number().min(0).max(1).default(0.35),
  /** Chance that a shape after the first is placed touching an earlier one. Default 0.2. */
  touchRate: z.number().min(0).max(1).default(0.2),
  /** Chance that a shape after the first is placed overlapping an earlier one. Default 0.2. */
  overlapRate: z.number().min(0).max(1).default(0.2),
});
/** Options of createWorld (input form, defaults applied by the schema). */
export type WorldOptions = z.input<typeof worldOptionsSchema>;
/** Options of createWorld with defaults filled in. */
export type ResolvedWorldOptions = z.output<typeof worldOptionsSchema>;

/** Which scenes a world draws: `train` scenes for instruction data, `heldout` scenes for the benchmark. */
export type WorldSplit = 'train' | 'heldout';

/** One drawn shape; `index` is its drawing order (later shapes cover earlier ones). */
export interface WorldObject {
  index: number;
  shape: WorldShape;
  color: WorldColor;
  size: WorldSize;
  /** Area centroid of the outline, in pixels. */
  center: Point;
  /** Circumradius in pixels. */
  radius: number;
  /** Outline as drawn (a 64-gon for circles), vertices rounded to 0.01 px. */
  polygon: Point[];
  /** COCO [x, y, w, h] of the outline. */
  bbox: [number, number, number, number];
  area: number;
  /** Cell of the 3x3 grid holding the centre. */
  location: WorldLocation;
  /** Whether the centre is at least 4% of the side away from every grid line (so the cell is not debatable). */
  locationClear: boolean;
  /** Whether no later shape covers the centre (or comes within 1.5 px of it). */
  centerVisible: boolean;
}

/** The printed word of a scene. */
export interface WorldText {
  word: string;
  /** Horizontal centre and baseline of the text, in pixels. */
  x: number;
  baseline: number;
  fontSize: number;
  /** COCO box that holds every inked pixel. */
  bbox: [number, number, number, number];
  ink: readonly [number, number, number];
}

/** How two shapes meet: areas shared, boundaries within 1 px, or apart (4 px or more between them). */
export type WorldContact = 'overlapping' | 'touching' | 'apart';

/** Facts about one pair of shapes (a < b in drawing order); directions read "a is <relation> b". */
export interface WorldRelation {
  a: number;
  b: number;
  /** Centre of a left/right of b's by at least 10% of the side, else null. */
  horizontal: 'left of' | 'right of' | null;
  /** Centre of a above/below b's by at least 10% of the side, else null. */
  vertical: 'above' | 'below' | null;
  /** The dominant direction (adaption's spatialRelation on the centres), or null when ambiguous. */
  direction: SpatialRelation | null;
  contact: WorldContact;
  /** Distance between the outlines (0 when they meet). */
  gap: number;
  /** Shared area in square pixels. */
  overlapArea: number;
}

/** One scene of the synthetic world. */
export interface WorldScene {
  /** `<split>-<index, 6 digits>`, unique across splits. */
  id: string;
  split: WorldSplit;
  index: number;
  width: number;
  height: number;
  background: WorldBackground;
  objects: WorldObject[];
  text: WorldText | null;
  relations: WorldRelation[];
}

/** A seeded synthetic world. */
export interface World {
  readonly options: ResolvedWorldOptions;
  /** The scene at `index` of `split` (the same arguments always give the same scene). */
  scene(split: WorldSplit, index: number): WorldScene;
  /** `count` consecutive scenes of `split` starting at `start`. */
  scenes(split: WorldSplit, count: number, start?: number): WorldScene[];
}

// Free shapes keep this many pixels from every other shape and from the image border.
const MIN_GAP = 4;
const BORDER = 2;
const SPATIAL_MARGIN = 0.1;
const LOCATION_MARGIN = 0.04;
const PLACEMENT_TRIES = 80;

const round2 = (v: number): number => Math.round(v * 100) / 100;

/** The grid cell of a point and whether it is clear of the grid lines. */
export function worldGridLocation(x: number, y: number, width: number, height: number): { location: WorldLocation; clear: boolean } {
  const col = Math.min(2, Math.max(0, Math.floor((3 * x) / width)));
  const row = Math.min(2, Math.max(0, Math.floor((3 * y) / height)));
  const clear =
    Math.min(Math.abs(x - width / 3), Math.abs(x - (2 * width) / 3)) >= LOCATION_MARGIN * width &&
    Math.min(Math.abs(y - height / 3), Math.abs(y - (2 * height) / 3)) >= LOCATION_MARGIN * height;
  return { location: WORLD_LOCATIONS[row * 3 + col], clear };
}

/** Width of a word in DejaVu Sans at a font size, from the advance table. */
export function dejaVuTextWidth(word: string, fontSize: number): number {
  let units = 0;
  for (const ch of word) {
    const adv = DEJAVU_SANS_ADVANCE[ch];
    if (adv === undefined) throw new InvalidArgumentError(`no DejaVu Sans advance known for '${ch}'`, { details: { field: 'word' } });
    units += adv;
  }
  return (units * fontSize) / 1000;
}

interface Placed {
  shape: WorldShape;
  color: WorldColor;
  size: WorldSize;
  cx: number;
  cy: number;
  r: number;
  polygon: Point[];
  /** Distance from the centre to the farthest vertex (squares and crosses reach past `r`). */
  reach: number;
}

function place(shape: WorldShape, color: WorldColor, size: WorldSize, cx: number, cy: number, side: number): Placed {
  const r = round2(WORLD_SIZES[size] * side);
  const x = round2(cx);
  const y = round2(cy);
  const polygon = shapeOutline(shape, x, y, r);
  return { shape, color, size, cx: x, cy: y, r, polygon, reach: Math.max(...polygon.map(([px, py]) => Math.hypot(px - x, py - y))) };
}

function generateScene(options: ResolvedWorldOptions, split: WorldSplit, index: number, root: Rng): WorldScene {
  const rng = root.fork(`${split}\u0000${index}`);
  const side = options.size;
  const background = rng.choice(WORLD_BACKGROUND_NAMES);
  const wanted = rng.int(options.minShapes, Math.max(options.minShapes, options.maxShapes) + 1);

  // The word takes a band across the top or bottom; shapes stay out of it so text never hides a shape.
  let text: WorldText | null = null;
  let top = BORDER;
  let bottom = side - BORDER;
  if (rng.float() < options.wordRate) {
    const word = rng.choice(WORLD_WORDS);
    const fontSize = Math.max(10, Math.round(0.14 * side));
    const width = dejaVuTextWidth(word, fontSize);
    const band = fontSize + 4;
    const atTop = rng.float() < 0.5;
    const y1 = atTop ? 2 : side - band + 2;
    const x = round2(width / 2 + 3 + rng.float() * (side - width - 6));
    const baseline = round2(y1 + 0.76 * fontSize);
    text = { word, x, baseline, fontSize, bbox: [round2(x - width / 2 - 1), y1, round2(width + 2), fontSize], ink: WORLD_BACKGROUNDS[background].ink };
    if (atTop) top = band + BORDER;
    else bottom = side - band - BORDER;
  }

  // (colour, shape) pairs are unique in a scene, so "the red circle" always names one shape.
  const pairs = WORLD_SHAPES.flatMap((s) => WORLD_COLOR_NAMES.map((c) => [s, c] as const));
  const chosen = rng.sample(pairs, wanted);
  const placed: Placed[] = [];
  const inBounds = (p: Placed): boolean => {
    const [x, y, w, h] = polygonBox(p.polygon);
    return x >= BORDER && y >= top && x + w <= side - BORDER && y + h <= bottom;
  };
  // Discs of radius `reach` bound every outline, so far-apart centres skip the exact (quadratic) gap.
  const clearOfOthers = (p: Placed, except: number): boolean =>
    placed.every((q, i) => i === except || Math.hypot(p.cx - q.cx, p.cy - q.cy) - p.reach - q.reach >= MIN_GAP || polygonGap(p.polygon, q.polygon) >= MIN_GAP);

  for (const [shape, color] of chosen) {
    let size = rng.choice(WORLD_SIZE_NAMES);
    const u = rng.float();
    const mode = placed.length === 0 ? 'free' : u < options.overlapRate ? 'overlap' : u < options.overlapRate + options.touchRate ? 'touch' : 'free';
    let result: Placed | undefined;
    for (let shrink = 0; !result && shrink < WORLD_SIZE_NAMES.length; shrink++) {
      if (shrink > 0) size = WORLD_SIZE_NAMES[Math.max(0, WORLD_SIZE_NAMES.indexOf(size) - 1)];
      for (let attempt = 0; !result && attempt < PLACEMENT_TRIES; attempt++) {
        // Contact placements fall back to free ones when no contact fits (late tries, or a crowded scene).
        const tryMode = attempt < PLACEMENT_TRIES / 2 ? mode : 'free';
        if (tryMode === 'free') {
          const r = WORLD_SIZES[size] * side;
          const cand = place(
            shape,
            color,
            size,
            r + BORDER + rng.float() * (side - 2 * r - 2 * BORDER),
            top + r + rng.float() * Math.max(0, bottom - top - 2 * r),
            side,
          );
          if (inBounds(cand) && clearOfOthers(cand, -1)) result = cand;
          continue;
        }
        const anchorIndex = rng.int(0, placed.length);
        const anchor = placed[anchorIndex];
        const theta = rng.float() * 2 * Math.PI;
        const at = (d: number): Placed => place(shape, color, size, anchor.cx + d * Math.cos(theta), anchor.cy + d * Math.sin(theta), side);
        const target = tryMode === 'touch' ? 0.2 : 0.001;
        // Bisection for the distance where the gap first reaches `target` along the ray.
        let lo = 0;
        let hi = anchor.reach + 1.14 * WORLD_SIZES[size] * side + MIN_GAP;
        // 14 halvings of at most ~80 px leave under 0.01 px, well inside the touch window below.
        for (let k = 0; k < 14; k++) {
          const mid = (lo + hi) / 2;
          if (polygonGap(at(mid).polygon, anchor.polygon) >= target) hi = mid;
          else lo = mid;
        }
        if (tryMode === 'touch') {
          const cand = at(hi);
          const gap = polygonGap(cand.polygon, anchor.polygon);
          if (gap >= 0.05 && gap <= 0.5 && inBounds(cand) && clearOfOthers(cand, anchorIndex)) result = cand;
        } else {
          const cand = at(hi * (0.45 + 0.35 * rng.float()));
          const shared = overlapArea(cand.polygon, anchor.polygon);
          const smaller = Math.min(polygonArea(cand.polygon), polygonArea(anchor.polygon));
          const centresFree = !pointInPolygon(anchor.cx, anchor.cy, cand.polygon) && !pointInPolygon(cand.cx, cand.cy, anchor.polygon);
          if (shared >= Math.max(12, 0.12 * smaller) && shared <= 0.6 * smaller && centresFree && inBounds(cand) && clearOfOthers(cand, anchorIndex))
            result = cand;
        }
      }
    }
    if (result) placed.push(result);
  }

  const objects: WorldObject[] = placed.map((p, i) => {
    const grid = worldGridLocation(p.cx, p.cy, side, side);
    const centerVisible = placed.slice(i + 1).every((q) => !pointInPolygon(p.cx, p.cy, q.polygon) && polygonGap([[p.cx, p.cy]], q.polygon) >= 1.5);
    return {
      index: i,
      shape: p.shape,
      color: p.color,
      size: p.size,
      center: [p.cx, p.cy],
      radius: p.r,
      polygon: p.polygon,
      bbox: polygonBox(p.polygon),
      area: round2(polygonArea(p.polygon)),
      location: grid.location,
      locationClear: grid.clear,
      centerVisible,
    };
  });

  const relations: WorldRelation[] = [];
  for (let a = 0; a < objects.length; a++) {
    for (let b = a + 1; b < objects.length; b++) {
      const A = objects[a];
      const B = objects[b];
      const gap = round2(polygonGap(A.polygon, B.polygon));
      const shared = gap === 0 ? round2(overlapArea(A.polygon, B.polygon)) : 0;
      const dx = A.center[0] - B.center[0];
      const dy = A.center[1] - B.center[1];
      const m = SPATIAL_MARGIN * side;
      relations.push({
        a,
        b,
        horizontal: dx <= -m ? 'left of' : dx >= m ? 'right of' : null,
        vertical: dy <= -m ? 'above' : dy >= m ? 'below' : null,
        direction: spatialRelation([A.center[0], A.center[1], 0, 0], [B.center[0], B.center[1], 0, 0], { width: side, height: side }) ?? null,
        contact: shared >= 1 ? 'overlapping' : gap <= 1 ? 'touching' : 'apart',
        gap,
        overlapArea: shared,
      });
    }
  }

  return { id: `${split}-${String(index).padStart(6, '0')}`, split, index, width: side, height: side, background, objects, text, relations };
}

/** Create a seeded synthetic world of shapes, colours and words (browser-safe: no rendering here). */
export function createWorld(options: WorldOptions): World {
  const parsed = worldOptionsSchema.safeParse(options);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new InvalidArgumentError(`invalid world options: ${issue.message}`, { cause: parsed.error, details: { field: issue.path.map(String).join('.') } });
  }
  const resolved = parsed.data;
  if (resolved.maxShapes < resolved.minShapes) {
    throw new InvalidArgumentError('maxShapes must be at least minShapes', { details: { field: 'maxShapes' } });
  }
  const root = createRng(resolved.seed);
  const checkIndex = (index: number): void => {
    if (!Number.isSafeInteger(index) || index < 0)
      throw new InvalidArgumentError(`scene index must be a non-negative integer, got ${index}`, { details: { field: 'index' } });
  };
  return {
    options: resolved,
    scene(split, index) {
      checkIndex(index);
      return generateScene(resolved, split, index, root);
    },
    scenes(split, count, start = 0) {
      checkIndex(start);
      checkIndex(count);
      return Array.from({ length: count }, (_, k) => generateScene(resolved, split, start + k, root));
    },
  };
}

const hex = (rgb: readonly [number, number, number]): string => `#${rgb.map((v) => v.toString(16).padStart(2, '0')).join('')}`;
const num = (v: number): string => String(round2(v));

/** Options of worldSceneSvg. */
export interface WorldSvgOptions {
  /** Draw only these objects (by index), e.g. one shape alone for mask tests. Default: all. */
  objects?: readonly number[];
  /** Draw the word. Default true. */
  text?: boolean;
}

/** The scene as a self-contained SVG string, one user unit per pixel (render with `ImageCodec.svgToPng`). */
export function worldSceneSvg(scene: WorldScene, options: WorldSvgOptions = {}): string {
  const { width: w, height: h } = scene;
  const only = options.objects ? new Set(options.objects) : undefined;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}">`,
    `<rect x="0" y="0" width="${w}" height="${h}" fill="${hex(WORLD_BACKGROUNDS[scene.background].rgb)}"/>`,
  ];
  for (const o of scene.objects) {
    if (only && !only.has(o.index)) continue;
    const fill = hex(WORLD_COLORS[o.color]);
    parts.push(
      o.shape === 'circle'
        ? `<circle cx="${num(o.center[0])}" cy="${num(o.center[1])}" r="${num(o.radius)}" fill="${fill}"/>`
        : `<polygon points="${o.polygon.map(([x, y]) => `${num(x)},${num(y)}`).join(' ')}" fill="${fill}"/>`,
    );
  }
  if (scene.text && options.text !== false) {
    const t = scene.text;
    parts.push(
      `<text x="${num(t.x)}" y="${num(t.baseline)}" font-family="DejaVu Sans" font-size="${t.fontSize}" fill="${hex(t.ink)}" text-anchor="middle">${t.word}</text>`,
    );
  }
  parts.push('</svg>');
  return parts.join('\n');
}

/** `red circle`: the name of an object, unique within its scene. */
export function worldObjectName(o: Pick<WorldObject, 'color' | 'shape'>): string {
  return `${o.color} ${o.shape}`;
}
