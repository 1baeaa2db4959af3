import { InvalidArgumentError } from '@vlit/core';

/** Bytes to read: a whole buffer or string, or chunks from any (async) iterable or web ReadableStream. */
export type ByteSource = Uint8Array | string | Iterable<Uint8Array | string> | AsyncIterable<Uint8Array | string> | ReadableStream<Uint8Array>;

const encoder = new TextEncoder();

function isReadableStream(value: unknown): value is ReadableStream<Uint8Array> {
  return typeof value === 'object' && value !== null && typeof (value as ReadableStream).getReader === 'function';
}

/** Normalise any ByteSource into an async iterable of byte chunks. */
export async function* byteChunks(source: ByteSource): AsyncGenerator<Uint8Array> {
  if (typeof source === 'string') {
    yield encoder.encode(source);
    return;
  }
  if (source instanceof Uint8Array) {
    yield source;
    return;
  }
  if (isReadableStream(source)) {
    // Browsers without async iteration on ReadableStream still have getReader.
    const reader = source.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        yield toBytes(value);
      }
    } finally {
      reader.releaseLock();
    }
  }
  if (typeof (source as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function' || typeof (source as Iterable<unknown>)[Symbol.iterator] === 'function') {
    for await (const chunk of source as AsyncIterable<Uint8Array | string>) yield toBytes(chunk);
    return;
  }
  throw new InvalidArgumentError('a byte source must be a string, a Uint8Array, an iterable of chunks or a ReadableStream', {
    details: { field: 'source' },
  });
}

function toBytes(chunk: unknown): Uint8Array {
  if (chunk instanceof Uint8Array) return chunk;
  if (typeof chunk === 'string') return encoder.encode(chunk);
  throw new InvalidArgumentError(`a chunk must be a Uint8Array or a string, got ${typeof chunk}`, { details: { field: 'source' } });
}
