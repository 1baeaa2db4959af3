// The (image, caption) pairs the page trains the connector on: flat shapes drawn in the page.

/** The instruction every training pair shares. */
export const TRAIN_PROMPT = 'Describe the image.';

/** One generated training pair. */
export interface ShapePair {
  colour: 'red' | 'green' | 'blue' | 'yellow';
  shape: 'square' | 'circle';
  caption: string;
}

const RGB: Record<ShapePair['colour'], [number, number, number]> = { red: [220, 40, 40], green: [40, 180, 60], blue: [40, 80, 220], yellow: [230, 200, 30] };

/** The pairs: every colour, alternating shapes. */
export const PAIRS: readonly ShapePair[] = (['red', 'green', 'blue', 'yellow'] as const).map((colour, i) => {
  const shape = i % 2 === 0 ? 'square' : 'circle';
  return { colour, shape, caption: `a ${colour} ${shape}` };
});

/** Draw a pair's image as RGB pixels (size x size, grey background). */
export function drawPair(pair: ShapePair, size: number): { width: number; height: number; channels: 3; data: Uint8Array } {
  const data = new Uint8Array(size * size * 3).fill(128);
  const [r, g, b] = RGB[pair.colour];
  const c = (size - 1) / 2;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const inside = pair.shape === 'square' ? Math.abs(x - c) <= size / 3 && Math.abs(y - c) <= size / 3 : (x - c) ** 2 + (y - c) ** 2 <= (size / 3) ** 2;
      if (inside) data.set([r, g, b], (y * size + x) * 3);
    }
  }
  return { width: size, height: size, channels: 3, data };
}
