/** Width and height of an image, in pixels. */
export interface ImageSize {
  width: number;
  height: number;
}

/** A decoded image: 8-bit samples, interleaved channels, row-major (height × width × channels). */
export interface RawImage {
  readonly width: number;
  readonly height: number;
  /** 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA. */
  readonly channels: 1 | 2 | 3 | 4;
  readonly data: Uint8Array;
}

/** Options for decoding. */
export interface DecodeOptions {
  /** Name of the file or record the bytes came from, used in error messages. */
  source?: string;
  /** Force the channel count of the result (default 3: RGB, alpha flattened onto white... see codec docs). */
  channels?: 3 | 4;
}

/** Formats a codec can write. */
export type ImageFormat = 'png' | 'jpeg' | 'webp';

/** Decodes image bytes into RawImage and encodes RawImage back. Platform-specific: lives in @vlit/runtime. */
export interface ImageCodec {
  /** Codec name, e.g. `sharp` or `browser`. */
  readonly name: string;
  /** Decode bytes (PNG, JPEG, WebP, ...) into pixels; throws ImageDecodeError naming the source on bad bytes. */
  decode(bytes: Uint8Array, options?: DecodeOptions): Promise<RawImage>;
  /** Encode pixels into the given format. */
  encode(image: RawImage, format: ImageFormat, options?: { quality?: number }): Promise<Uint8Array>;
  /**
   * Rasterise an SVG document to PNG bytes at 1 pixel per SVG user unit, flattened onto white, so the
   * same SVG always gives the same pixels. Optional: codecs without an SVG renderer omit it.
   */
  svgToPng?(svg: string, options?: SvgToPngOptions): Promise<Uint8Array>;
}

/** Options of `ImageCodec.svgToPng`. */
export interface SvgToPngOptions {
  /** Name of the scene or file the SVG came from, used in error messages. */
  source?: string;
}
