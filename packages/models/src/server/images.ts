/**
 * Loading the images of a request: base64 data URLs, or file paths confined to the server's image
 * root (resolveUnderRoot refuses `..`, absolute paths outside the root and symlinks out of it).
 * Pixels come from the injected ImageCodec.
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isVlitError, type ImageCodec, type RawImage } from '@vlit/core';
import { readUserFile, resolveUnderRoot } from '@vlit/core/node';
import { HttpError, toHttpError } from './errors.js';

/** Where the server may load images from. */
export interface ImageSourceOptions {
  images: ImageCodec;
  /** Directory image file paths must stay inside; without it, file paths are refused. */
  imageRoot?: string;
  /** Largest image file read from the root, in bytes; checked on the open handle before reading. */
  maxImageBytes: number;
}

/** Image files larger than this are refused unless the server says otherwise. */
export const DEFAULT_MAX_IMAGE_BYTES = 32 * 1024 * 1024;

const DATA_URL = /^data:([^;,]*)((?:;[^;,]*)*?),(.*)$/s;
const BASE64 = /^[A-Za-z0-9+/\s]*={0,2}\s*$/;

function decodeDataUrl(url: string, param: string): Uint8Array {
  const m = DATA_URL.exec(url);
  if (!m) throw new HttpError(400, 'invalid_request_error', 'invalid_image_url', 'malformed data URL', param);
  const [, mime, params, payload] = m;
  if (mime && !mime.toLowerCase().startsWith('image/')) {
    throw new HttpError(400, 'invalid_request_error', 'invalid_image_url', `data URL media type '${mime}' is not an image`, param);
  }
  if (!params.split(';').includes('base64')) {
    throw new HttpError(400, 'invalid_request_error', 'invalid_image_url', 'image data URLs must be base64-encoded', param);
  }
  if (!BASE64.test(payload)) throw new HttpError(400, 'invalid_request_error', 'invalid_image_url', 'data URL payload is not valid base64', param);
  const buf = Buffer.from(payload, 'base64');
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** The path of a file image relative to the root (absolute paths and file:// URLs inside the root are allowed). */
async function resolveImagePath(url: string, root: string, param: string): Promise<string> {
  let p = url;
  if (/^file:/i.test(url)) {
    try {
      p = fileURLToPath(url);
    } catch (err) {
      throw new HttpError(400, 'invalid_request_error', 'invalid_image_url', 'malformed file URL', param, {}, undefined);
    }
  }
  const rootAbs = path.resolve(root);
  const relative = path.isAbsolute(p) ? path.relative(rootAbs, p) : p;
  return resolveUnderRoot(rootAbs, relative === '' ? '.' : relative);
}

/** Load and decode one `image_url`; errors are HttpErrors naming `param` (the request field). */
export async function loadImage(url: string, options: ImageSourceOptions, param: string): Promise<RawImage> {
  try {
    let bytes: Uint8Array;
    let source: string;
    if (/^data:/i.test(url)) {
      bytes = decodeDataUrl(url, param);
      source = param;
    } else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url) && !/^file:/i.test(url)) {
      throw new HttpError(
        400,
        'invalid_request_error',
        'unsupported_image_url',
        'only data URLs and file paths under the image root are accepted; remote URLs are not fetched',
        param,
      );
    } else {
      if (!options.imageRoot) {
        throw new HttpError(
          403,
          'permission_error',
          'file_images_disabled',
          'this server has no image root, so image file paths are refused; send a data URL',
          param,
        );
      }
      const file = await resolveImagePath(url, options.imageRoot, param);
      let buf: Buffer;
      try {
        // Regular files only, opened without blocking and size-checked on the handle: a FIFO or device
        // under the root must never hold a request (and its queue slot) forever.
        buf = await readUserFile(file, { maxBytes: options.maxImageBytes, what: 'image' });
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code === 'VLIT_LIMIT_EXCEEDED') {
          throw new HttpError(
            400,
            'invalid_request_error',
            'image_too_large',
            `the image file is larger than this server's limit of ${options.maxImageBytes} bytes`,
            param,
            {},
            code,
          );
        }
        if (code === 'VLIT_INVALID_ARGUMENT') {
          throw new HttpError(400, 'invalid_request_error', 'invalid_image_file', 'the image path is not a regular file', param, {}, code);
        }
        if (code === 'VLIT_NOT_FOUND' || code === 'ENOENT' || code === 'EISDIR' || code === 'ENOTDIR') {
          throw new HttpError(400, 'invalid_request_error', 'image_not_found', 'image file not found under the image root', param);
        }
        throw err;
      }
      bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
      source = param;
    }
    return await options.images.decode(bytes, { source, channels: 3 });
  } catch (err) {
    if (isVlitError(err, 'VLIT_IMAGE_DECODE')) {
      throw new HttpError(400, 'invalid_request_error', 'invalid_image', 'the image could not be decoded', param, {}, 'VLIT_IMAGE_DECODE');
    }
    throw toHttpError(err, param);
  }
}
