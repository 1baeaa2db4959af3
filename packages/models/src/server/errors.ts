/**
 * HTTP errors in OpenAI's error shape, and the mapping from Vlit's typed errors to statuses.
 */
import { isVlitError } from '@vlit/core';
import type { ApiErrorBody } from './schema.js';

type ErrorType = ApiErrorBody['error']['type'];

/** An error that becomes one HTTP reply; thrown inside the server only. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly type: ErrorType,
    readonly code: string,
    message: string,
    readonly param: string | null = null,
    readonly headers: Record<string, string> = {},
    readonly vlitCode?: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }

  /** The JSON body. */
  body(): ApiErrorBody {
    return {
      error: {
        message: this.message,
        type: this.type,
        param: this.param,
        code: this.code,
        ...(this.vlitCode ? { vlit_code: this.vlitCode } : {}),
      },
    };
  }
}

const CLIENT_CODES: Record<string, string> = {
  VLIT_INVALID_ARGUMENT: 'invalid_argument',
  VLIT_VALIDATION: 'invalid_request',
  VLIT_FORMAT: 'invalid_format',
  VLIT_IMAGE_DECODE: 'invalid_image',
  VLIT_COMPATIBILITY: 'incompatible_input',
  VLIT_UNSUPPORTED: 'unsupported',
  VLIT_TENSOR_SHAPE: 'invalid_input_shape',
};

/**
 * Map any error to an HttpError. Vlit errors caused by the request are 4xx with their message (which
 * names the field); anything else is a 500 whose message says nothing about the server's insides.
 */
export function toHttpError(err: unknown, param: string | null = null): HttpError {
  if (err instanceof HttpError) return err;
  if (isVlitError(err)) {
    const field = typeof err.details.field === 'string' ? err.details.field : param;
    if (err.code === 'VLIT_PATH_ESCAPE') {
      return new HttpError(403, 'permission_error', 'path_outside_root', 'image path is outside the allowed image root', param, {}, err.code);
    }
    if (err.code === 'VLIT_NOT_FOUND') {
      return new HttpError(400, 'invalid_request_error', 'image_not_found', 'image file not found under the allowed image root', param, {}, err.code);
    }
    const code = CLIENT_CODES[err.code];
    if (code) return new HttpError(400, 'invalid_request_error', code, err.message, field ?? null, {}, err.code);
  }
  return new HttpError(500, 'server_error', 'internal_error', 'the server failed to complete the request');
}
