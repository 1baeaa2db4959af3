// The synthetic world's vocabulary: the only words its scenes, captions, questions and options use.

/** Shape categories of the synthetic world (its COCO categories, in id order from 1). */
export const WORLD_SHAPES = ['circle', 'square', 'triangle', 'star', 'diamond', 'hexagon', 'cross'] as const;
/** One shape category of the synthetic world. */
export type WorldShape = (typeof WORLD_SHAPES)[number];

/** Shape colours, at least 80 apart in RGB (Euclidean) from each other and from every background. */
export const WORLD_COLORS = {
  red: [230, 25, 25],
  green: [30, 160, 60],
  blue: [30, 80, 230],
  yellow: [240, 210, 20],
  purple: [150, 50, 190],
  orange: [245, 130, 20],
} as const satisfies Record<string, readonly [number, number, number]>;
/** A shape colour name. */
export type WorldColor = keyof typeof WORLD_COLORS;
/** Shape colour names in a fixed order. */
export const WORLD_COLOR_NAMES = Object.keys(WORLD_COLORS) as WorldColor[];

/** Background colours; text is drawn in the contrasting ink given here. */
export const WORLD_BACKGROUNDS = {
  white: { rgb: [255, 255, 255], ink: [0, 0, 0] },
  gray: { rgb: [128, 128, 128], ink: [0, 0, 0] },
  black: { rgb: [0, 0, 0], ink: [255, 255, 255] },
  brown: { rgb: [110, 70, 40], ink: [255, 255, 255] },
} as const satisfies Record<string, { rgb: readonly [number, number, number]; ink: readonly [number, number, number] }>;
/** A background colour name. */
export type WorldBackground = keyof typeof WORLD_BACKGROUNDS;
/** Background names in a fixed order. */
export const WORLD_BACKGROUND_NAMES = Object.keys(WORLD_BACKGROUNDS) as WorldBackground[];

/** Size classes: circumradius as a fraction of the image side. */
export const WORLD_SIZES = { tiny: 0.05, small: 0.075, medium: 0.105, large: 0.14 } as const;
/** A size class name. */
export type WorldSize = keyof typeof WORLD_SIZES;
/** Size class names from smallest to largest. */
export const WORLD_SIZE_NAMES = Object.keys(WORLD_SIZES) as WorldSize[];

/** Short printed words (none is a shape, colour or size word, so text never answers another question). */
export const WORLD_WORDS = [
  'cat',
  'dog',
  'sun',
  'map',
  'key',
  'cup',
  'hat',
  'pen',
  'toy',
  'bus',
  'egg',
  'fox',
  'owl',
  'jam',
  'ink',
  'box',
  'kite',
  'fish',
  'frog',
  'lamp',
  'moon',
  'rain',
  'ship',
  'tree',
  'wolf',
  'bell',
  'cake',
  'door',
  'leaf',
  'milk',
] as const;

/** Cells of the 3x3 location grid, row by row from the top left. */
export const WORLD_LOCATIONS = ['top left', 'top', 'top right', 'left', 'center', 'right', 'bottom left', 'bottom', 'bottom right'] as const;
/** A cell of the location grid. */
export type WorldLocation = (typeof WORLD_LOCATIONS)[number];

/**
 * DejaVu Sans advance widths of a-z in thousandths of an em (read from DejaVuSans.ttf 2.37), so text
 * boxes are known without measuring the font at run time. Ink rises at most 0.76 em above the
 * baseline and falls at most 0.24 em below it for these letters.
 */
export const DEJAVU_SANS_ADVANCE: Readonly<Record<string, number>> = {
  a: 613,
  b: 635,
  c: 550,
  d: 635,
  e: 615,
  f: 352,
  g: 635,
  h: 634,
  i: 278,
  j: 278,
  k: 579,
  l: 278,
  m: 974,
  n: 634,
  o: 612,
  p: 635,
  q: 635,
  r: 411,
  s: 521,
  t: 392,
  u: 634,
  v: 592,
  w: 818,
  x: 592,
  y: 592,
  z: 525,
};

/** Plural of a world shape name (`cross` -> `crosses`). */
export function pluralShape(shape: WorldShape): string {
  return /(s|x|z|ch|sh)$/.test(shape) ? `${shape}es` : `${shape}s`;
}
