import { describe, expect, it } from 'vitest';
import * as src from './errors.js';
// The built bundle is a second, independent copy of the module: classes differ, markers must not.
import * as dist from '../dist/index.js';

describe('VlitError', () => {
  it('carries a stable code, cause and structured details, and names the location in the message', () => {
    const cause = new RangeError('inner');
    const err = new src.FormatError('header lies about offsets', {
      cause,
      details: { file: 'model.safetensors', field: 'layer.weight', record: 3 },
    });
    expect(err.code).toBe('VLIT_FORMAT');
    expect(err.cause).toBe(cause);
    expect(err.details.field).toBe('layer.weight');
    expect(err.message).toBe('header lies about offsets (file model.safetensors, record 3, field layer.weight)');
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('FormatError');
  });

  it('is recognised across duplicate copies of the package, where instanceof fails', () => {
    const fromOtherCopy = new dist.TensorShapeError('bad dims');
    expect(fromOtherCopy instanceof src.VlitError).toBe(false);
    expect(src.VlitError.isInstance(fromOtherCopy)).toBe(true);
    expect(src.isVlitError(fromOtherCopy, 'VLIT_TENSOR_SHAPE')).toBe(true);
    expect(src.isVlitError(fromOtherCopy, 'VLIT_FORMAT')).toBe(false);
    expect(src.isVlitError(new Error('plain'))).toBe(false);
    expect(src.isVlitError({ code: 'VLIT_FORMAT' })).toBe(false);
  });

  it('gives every subclass its own code', () => {
    const codes = [
      new src.InvalidArgumentError('x').code,
      new src.TensorShapeError('x').code,
      new src.FormatError('x').code,
      new src.ImageDecodeError('x').code,
      new src.CompatibilityError('x').code,
      new src.BackendError('x').code,
      new src.PathEscapeError('x').code,
      new src.NotFoundError('x').code,
      new src.ValidationError('x').code,
      new src.UnsupportedError('x').code,
    ];
    expect(new Set(codes).size).toBe(codes.length);
  });

  it('addDetails fills in a location the thrower did not know, keeps what it set, and the message names it', () => {
    const err = new src.InvalidArgumentError('hidden_size must be a positive integer', { details: { field: 'hidden_size' } });
    expect(err.message).toBe('hidden_size must be a positive integer (field hidden_size)');
    expect(err.addDetails({ file: 'config.json', field: 'other' })).toBe(err);
    expect(err.details).toEqual({ field: 'hidden_size', file: 'config.json' });
    expect(err.message).toBe('hidden_size must be a positive integer (file config.json, field hidden_size)');
    expect(err.code).toBe('VLIT_INVALID_ARGUMENT');
    expect(err).toBeInstanceOf(src.InvalidArgumentError);
  });
});
