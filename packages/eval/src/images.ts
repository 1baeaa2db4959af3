import { InvalidArgumentError, type ImageCodec } from '@vlit/core';
import type { BenchmarkImage } from './mc/datasets.js';
import type { ImageLoader } from './run/evaluate.js';

/**
 * An image loader over an injected codec: inline bytes are decoded directly, paths are read with
 * `readFile` (in Node use `createFileImageLoader` from `@vlit/eval/node`, which confines paths to a root).
 */
export function createImageLoader(options: { codec: ImageCodec; readFile?: (path: string) => Promise<Uint8Array>; channels?: 3 | 4 }): ImageLoader {
  const channels = options.channels ?? 3;
  return async (image: BenchmarkImage) => {
    if (typeof image !== 'string') return options.codec.decode(image.bytes, { source: image.name, channels });
    if (!options.readFile) throw new InvalidArgumentError(`no readFile given to load ${image}`, { details: { file: image } });
    return options.codec.decode(await options.readFile(image), { source: image, channels });
  };
}
