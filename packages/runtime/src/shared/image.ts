import { ImageDecodeError, InvalidArgumentError, type RawImage } from '@vlit/core';

/** Check that a RawImage's data length matches width × height × channels. */
export function checkRawImage(image: RawImage, where: string): void {
  const { width, height, channels, data } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new InvalidArgumentError(`${where}: image size ${width}x${height} is not a positive integer size`, {
      details: { field: 'width/height' },
    });
  }
  if (![1, 2, 3, 4].includes(channels)) {
    throw new InvalidArgumentError(`${where}: ${channels} channels; expected 1-4`, { details: { field: 'channels' } });
  }
  if (data.length !== width * height * channels) {
    throw new InvalidArgumentError(`${where}: data holds ${data.length} bytes but ${width}x${height}x${channels} needs ${width * height * channels}`, {
      details: { field: 'data' },
    });
  }
}

/** The ImageDecodeError of bytes a codec could not decode, naming their source (`<bytes>` when unnamed). */
export function imageDecodeError(err: unknown, source: string | undefined): ImageDecodeError {
  return new ImageDecodeError(`cannot decode image: ${err instanceof Error ? err.message : String(err)}`, {
    cause: err,
    details: { file: source ?? '<bytes>' },
  });
}
