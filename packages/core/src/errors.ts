/**
 * Vlit's error hierarchy. Every error thrown by a Vlit package is a `VlitError` with a stable
 * `code`, an optional `cause` and structured `details` (file, record, field, ...). Detection works
 * across duplicate copies of this package through a `Symbol.for` marker, not `instanceof`.
 */

const MARKER = Symbol.for('vlit.error');

/** Stable error codes; users may switch on these, so they never change meaning. */
export type VlitErrorCode =
  | 'VLIT_INVALID_ARGUMENT'
  | 'VLIT_TENSOR_SHAPE'
  | 'VLIT_FORMAT'
  | 'VLIT_IMAGE_DECODE'
  | 'VLIT_COMPATIBILITY'
  | 'VLIT_BACKEND'
  | 'VLIT_PATH_ESCAPE'
  | 'VLIT_NOT_FOUND'
  | 'VLIT_VALIDATION'
  | 'VLIT_UNSUPPORTED'
  | 'VLIT_LIMIT_EXCEEDED'
  | 'VLIT_CONFLICT';

/** Structured facts about where and why an error happened. */
export interface VlitErrorDetails {
  /** File the problem was found in, if any. */
  file?: string;
  /** Record id or index, if any. */
  record?: string | number;
  /** Field path inside the record or structure, if any. */
  field?: string;
  [key: string]: unknown;
}

/** Options accepted by every Vlit error constructor. */
export interface VlitErrorOptions {
  cause?: unknown;
  details?: VlitErrorDetails;
}

function locate(details: VlitErrorDetails | undefined): string {
  if (!details) return '';
  const parts: string[] = [];
  if (details.file !== undefined) parts.push(`file ${details.file}`);
  if (details.record !== undefined) parts.push(`record ${String(details.record)}`);
  if (details.field !== undefined) parts.push(`field ${details.field}`);
  return parts.length ? ` (${parts.join(', ')})` : '';
}

/** Base class of all Vlit errors. */
export class VlitError extends Error {
  readonly code: VlitErrorCode;
  readonly details: VlitErrorDetails;
  readonly [MARKER] = true;

  /** The message as thrown, before the location suffix (so addErrorDetails can rebuild it). */
  readonly #text: string;

  constructor(code: VlitErrorCode, message: string, options: VlitErrorOptions = {}) {
    super(message + locate(options.details), options.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'VlitError';
    this.code = code;
    this.details = options.details ?? {};
    this.#text = message;
  }

  /** Fill in details the thrower did not know (a file, a record), keeping those it set; the message is rebuilt to name them. */
  addDetails(details: VlitErrorDetails): this {
    const merged = { ...details, ...this.details } as Record<string, unknown>;
    Object.assign(this.details as Record<string, unknown>, merged);
    this.message = this.#text + locate(this.details);
    return this;
  }

  /** True for any Vlit error, even one thrown by another copy of this package. */
  static isInstance(value: unknown): value is VlitError {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[MARKER] === true;
  }
}

/** True when `value` is a Vlit error, optionally with the given code. */
export function isVlitError(value: unknown, code?: VlitErrorCode): value is VlitError {
  return VlitError.isInstance(value) && (code === undefined || value.code === code);
}

/** A caller passed an argument that cannot be used. */
export class InvalidArgumentError extends VlitError {
  constructor(message: string, options?: VlitErrorOptions) {
    super('VLIT_INVALID_ARGUMENT', message, options);
    this.name = 'InvalidArgumentError';
  }
}

/** A tensor's dims, dtype or data length do not agree. */
export class TensorShapeError extends VlitError {
  constructor(message: string, options?: VlitErrorOptions) {
    super('VLIT_TENSOR_SHAPE', message, options);
    this.name = 'TensorShapeError';
  }
}

/** A file or byte buffer is not in the format it claims (truncated ONNX, lying safetensors header, ...). */
export class FormatError extends VlitError {
  constructor(message: string, options?: VlitErrorOptions) {
    super('VLIT_FORMAT', message, options);
    this.name = 'FormatError';
  }
}

/** Bytes that should hold an image could not be decoded as one. */
export class ImageDecodeError extends VlitError {
  constructor(message: string, options?: VlitErrorOptions) {
    super('VLIT_IMAGE_DECODE', message, options);
    this.name = 'ImageDecodeError';
  }
}

/** Two components do not fit together; `details.left`/`details.right` name both sides. */
export class CompatibilityError extends VlitError {
  constructor(message: string, options?: VlitErrorOptions) {
    super('VLIT_COMPATIBILITY', message, options);
    this.name = 'CompatibilityError';
  }
}

/** An inference backend failed to create a session or run it. */
export class BackendError extends VlitError {
  constructor(message: string, options?: VlitErrorOptions) {
    super('VLIT_BACKEND', message, options);
    this.name = 'BackendError';
  }
}

/** A path given relative to a root resolves outside that root. */
export class PathEscapeError extends VlitError {
  constructor(message: string, options?: VlitErrorOptions) {
    super('VLIT_PATH_ESCAPE', message, options);
    this.name = 'PathEscapeError';
  }
}

/** A named thing (input, output, tensor, file) does not exist. */
export class NotFoundError extends VlitError {
  constructor(message: string, options?: VlitErrorOptions) {
    super('VLIT_NOT_FOUND', message, options);
    this.name = 'NotFoundError';
  }
}

/** A record or config failed schema validation; `details.issues` holds the schema's findings. */
export class ValidationError extends VlitError {
  constructor(message: string, options?: VlitErrorOptions) {
    super('VLIT_VALIDATION', message, options);
    this.name = 'ValidationError';
  }
}

/** A feature is recognised but not supported (an unknown dtype, an operator without shape rules, ...). */
export class UnsupportedError extends VlitError {
  constructor(message: string, options?: VlitErrorOptions) {
    super('VLIT_UNSUPPORTED', message, options);
    this.name = 'UnsupportedError';
  }
}

/** Input is larger than a stated cap (a file over its size limit, a request body, a prompt over the context). */
export class LimitExceededError extends VlitError {
  constructor(message: string, options?: VlitErrorOptions) {
    super('VLIT_LIMIT_EXCEEDED', message, options);
    this.name = 'LimitExceededError';
  }
}

/**
 * The operation would destroy or race with something: an output path that is also an input, a
 * non-empty folder Vlit did not make, a job folder locked by another live process.
 */
export class ConflictError extends VlitError {
  constructor(message: string, options?: VlitErrorOptions) {
    super('VLIT_CONFLICT', message, options);
    this.name = 'ConflictError';
  }
}
