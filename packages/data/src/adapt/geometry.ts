import type { Box } from '../annotations.js';

/** A box as [x1, y1, x2, y2] in pixels. */
export type XyxyBox = [number, number, number, number];

/** COCO's [x, y, w, h] as [x1, y1, x2, y2], clamped into a `width` x `height` image. */
export function cocoBoxToXyxy(box: Box, width: number, height: number): XyxyBox {
  const [x, y, w, h] = box;
  const clamp = (v: number, hi: number): number => Math.min(Math.max(v, 0), hi);
  // COCO boxes are floats that can overshoot the border by rounding; clamping keeps formatBox's check happy.
  return [clamp(x, width), clamp(y, height), clamp(x + w, width), clamp(y + h, height)];
}

/** A spatial relation of one object to another, as said in an answer: "the A is <relation> the B". */
export type SpatialRelation = 'left of' | 'right of' | 'above' | 'below';

/** Options of spatialRelation. */
export interface SpatialRelationOptions {
  /**
   * Minimum distance between the two box centres along the deciding axis, as a fraction of the image
   * size along that axis. Closer pairs are ambiguous and get no relation. Default 0.1.
   */
  margin?: number;
  /**
   * The deciding axis must beat the other by this factor (normalised centre offsets); diagonal pairs
   * where neither axis dominates are ambiguous. Default 2.
   */
  dominance?: number;
}

/**
 * Where box `a` lies relative to box `b` (COCO xywh, image y grows downwards), or undefined when the
 * pair is ambiguous: centres closer than `margin` along the deciding axis, or no dominant axis.
 */
export function spatialRelation(a: Box, b: Box, image: { width: number; height: number }, options: SpatialRelationOptions = {}): SpatialRelation | undefined {
  const margin = options.margin ?? 0.1;
  const dominance = options.dominance ?? 2;
  const dx = (a[0] + a[2] / 2 - (b[0] + b[2] / 2)) / image.width;
  const dy = (a[1] + a[3] / 2 - (b[1] + b[3] / 2)) / image.height;
  const ax = Math.abs(dx);
  const ay = Math.abs(dy);
  if (ax >= ay) {
    if (ax < margin || ax < dominance * ay) return undefined;
    return dx < 0 ? 'left of' : 'right of';
  }
  if (ay < margin || ay < dominance * ax) return undefined;
  return dy < 0 ? 'above' : 'below';
}

/** The relation read the other way round (`left of` <-> `right of`, `above` <-> `below`). */
export function inverseRelation(relation: SpatialRelation): SpatialRelation {
  return ({ 'left of': 'right of', 'right of': 'left of', above: 'below', below: 'above' } as const)[relation];
}
