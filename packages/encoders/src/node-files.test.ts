/**
 * Issue 13, sibling of the server's item 3: model and preprocessor files named by the user are read as
 * regular files only, so a FIFO given as a path fails with a typed error instead of hanging the loader.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isVlitError } from '@vlit/core';
import { createNodeRuntime } from '@vlit/runtime/node';
import { readPreprocessorConfig, loadOcrRecognitionEncoder } from './node.js';

const dir = mkdtempSync(join(tmpdir(), 'vlit-enc-fifo-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('encoder file loaders on non-regular files', () => {
  it('refuses a FIFO as a preprocessor config or a model file, and still reports missing files as not found', async () => {
    execFileSync('mkfifo', [join(dir, 'preprocessor_config.json')]);
    execFileSync('mkfifo', [join(dir, 'rec.onnx')]);
    const config = await readPreprocessorConfig(join(dir, 'preprocessor_config.json')).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isVlitError(config, 'VLIT_INVALID_ARGUMENT')).toBe(true);
    expect((config as { details: { file: string } }).details.file).toBe(join(dir, 'preprocessor_config.json'));
    const { backend } = createNodeRuntime();
    await expect(loadOcrRecognitionEncoder({ backend, path: join(dir, 'rec.onnx') })).rejects.toSatisfy((e: unknown) =>
      isVlitError(e, 'VLIT_INVALID_ARGUMENT'),
    );
    await expect(readPreprocessorConfig(join(dir, 'missing.json'))).rejects.toSatisfy((e: unknown) => isVlitError(e, 'VLIT_NOT_FOUND'));
  });
});
