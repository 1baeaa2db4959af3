// Plane geometry of world shapes: outlines as polygons, boxes, areas, contact and overlap.
import type { WorldShape } from './vocabulary.js';

/** A point [x, y] in pixels (y grows downwards). */
export type Point = readonly [number, number];

// Circles are handled as 64-gons: the outline differs from the true circle by r(1 - cos(pi/64)) < 0.0013 r.
const CIRCLE_SEGMENTS = 64;

const round2 = (v: number): number => Math.round(v * 100) / 100;

/**
 * The outline of a shape centred at (cx, cy) with circumradius r, vertices rounded to 0.01 px (the
 * same numbers the SVG draws). Every outline is symmetric enough that its area centroid is (cx, cy).
 */
export function shapeOutline(shape: WorldShape, cx: number, cy: number, r: number): Point[] {
  const polar = (k: number, n: number, radius: number, start: number): Point => {
    const a = start + (2 * Math.PI * k) / n;
    return [round2(cx + radius * Math.cos(a)), round2(cy + radius * Math.sin(a))];
  };
  const up = -Math.PI / 2;
  switch (shape) {
    case 'circle':
      return Array.from({ length: CIRCLE_SEGMENTS }, (_, k) => polar(k, CIRCLE_SEGMENTS, r, 0));
    case 'square': {
      const h = 0.8 * r;
      return [
        [round2(cx - h), round2(cy - h)],
        [round2(cx + h), round2(cy - h)],
        [round2(cx + h), round2(cy + h)],
        [round2(cx - h), round2(cy + h)],
      ];
    }
    case 'triangle':
      return Array.from({ length: 3 }, (_, k) => polar(k, 3, r, up));
    case 'star':
      return Array.from({ length: 10 }, (_, k) => polar(k, 10, k % 2 === 0 ? r : 0.45 * r, up));
    case 'diamond':
      return [
        [round2(cx), round2(cy - r)],
        [round2(cx + 0.7 * r), round2(cy)],
        [round2(cx), round2(cy + r)],
        [round2(cx - 0.7 * r), round2(cy)],
      ];
    case 'hexagon':
      return Array.from({ length: 6 }, (_, k) => polar(k, 6, r, 0));
    case 'cross': {
      const w = 0.32 * r;
      const offsets: Array<[number, number]> = [
        [-w, -r],
        [w, -r],
        [w, -w],
        [r, -w],
        [r, w],
        [w, w],
        [w, r],
        [-w, r],
        [-w, w],
        [-r, w],
        [-r, -w],
        [-w, -w],
      ];
      return offsets.map(([dx, dy]) => [round2(cx + dx), round2(cy + dy)] as Point);
    }
  }
}

/** COCO box [x, y, w, h] enclosing a polygon. */
export function polygonBox(polygon: readonly Point[]): [number, number, number, number] {
  let x1 = Infinity;
  let y1 = Infinity;
  let x2 = -Infinity;
  let y2 = -Infinity;
  for (const [x, y] of polygon) {
    x1 = Math.min(x1, x);
    y1 = Math.min(y1, y);
    x2 = Math.max(x2, x);
    y2 = Math.max(y2, y);
  }
  return [round2(x1), round2(y1), round2(x2 - x1), round2(y2 - y1)];
}

/** Area of a simple polygon (shoelace formula). */
export function polygonArea(polygon: readonly Point[]): number {
  let s = 0;
  for (let i = 0; i < polygon.length; i++) {
    const [x1, y1] = polygon[i];
    const [x2, y2] = polygon[(i + 1) % polygon.length];
    s += x1 * y2 - x2 * y1;
  }
  return Math.abs(s) / 2;
}

/** True when the point lies inside the polygon (even-odd rule). */
export function pointInPolygon(x: number, y: number, polygon: readonly Point[]): boolean {
  let inside = false;
  for (let i = 0, j = polygon.length - 1; i < polygon.length; j = i++) {
    const [xi, yi] = polygon[i];
    const [xj, yj] = polygon[j];
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

function segmentPointDistance(px: number, py: number, ax: number, ay: number, bx: number, by: number): number {
  const dx = bx - ax;
  const dy = by - ay;
  const len2 = dx * dx + dy * dy;
  const t = len2 === 0 ? 0 : Math.max(0, Math.min(1, ((px - ax) * dx + (py - ay) * dy) / len2));
  return Math.hypot(px - (ax + t * dx), py - (ay + t * dy));
}

function segmentsCross(a: Point, b: Point, c: Point, d: Point): boolean {
  const orient = (p: Point, q: Point, r: Point): number => (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0]);
  const o1 = orient(a, b, c);
  const o2 = orient(a, b, d);
  const o3 = orient(c, d, a);
  const o4 = orient(c, d, b);
  return o1 * o2 < 0 && o3 * o4 < 0;
}

/** Shortest distance between two polygons' areas: 0 when they meet or overlap. */
export function polygonGap(a: readonly Point[], b: readonly Point[]): number {
  if (pointInPolygon(a[0][0], a[0][1], b) || pointInPolygon(b[0][0], b[0][1], a)) return 0;
  let best = Infinity;
  for (let i = 0; i < a.length; i++) {
    const a1 = a[i];
    const a2 = a[(i + 1) % a.length];
    const ax1 = Math.min(a1[0], a2[0]);
    const ax2 = Math.max(a1[0], a2[0]);
    const ay1 = Math.min(a1[1], a2[1]);
    const ay2 = Math.max(a1[1], a2[1]);
    for (let j = 0; j < b.length; j++) {
      const b1 = b[j];
      const b2 = b[(j + 1) % b.length];
      // Segments whose boxes are already farther apart than the best distance cannot improve it.
      const gx = Math.max(0, Math.min(b1[0], b2[0]) - ax2, ax1 - Math.max(b1[0], b2[0]));
      const gy = Math.max(0, Math.min(b1[1], b2[1]) - ay2, ay1 - Math.max(b1[1], b2[1]));
      if (gx * gx + gy * gy >= best * best) continue;
      if (segmentsCross(a1, a2, b1, b2)) return 0;
      best = Math.min(
        best,
        segmentPointDistance(a1[0], a1[1], b1[0], b1[1], b2[0], b2[1]),
        segmentPointDistance(a2[0], a2[1], b1[0], b1[1], b2[0], b2[1]),
        segmentPointDistance(b1[0], b1[1], a1[0], a1[1], a2[0], a2[1]),
        segmentPointDistance(b2[0], b2[1], a1[0], a1[1], a2[0], a2[1]),
      );
    }
  }
  return best;
}

/** Area shared by two polygons, estimated on a 1/4-pixel grid (exact enough to tell overlap from contact). */
export function overlapArea(a: readonly Point[], b: readonly Point[]): number {
  const [ax, ay, aw, ah] = polygonBox(a);
  const [bx, by, bw, bh] = polygonBox(b);
  const x1 = Math.max(ax, bx);
  const y1 = Math.max(ay, by);
  const x2 = Math.min(ax + aw, bx + bw);
  const y2 = Math.min(ay + ah, by + bh);
  if (x2 <= x1 || y2 <= y1) return 0;
  const step = 0.25;
  let hits = 0;
  for (let y = y1 + step / 2; y < y2; y += step) {
    for (let x = x1 + step / 2; x < x2; x += step) if (pointInPolygon(x, y, a) && pointInPolygon(x, y, b)) hits++;
  }
  return hits * step * step;
}
