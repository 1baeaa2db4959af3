/**
 * AdamW state as safetensors, keyed like torch's state dict entries (`<param>.exp_avg`,
 * `<param>.exp_avg_sq`, `<param>.step`, the step a float32 scalar as torch keeps it), so a resumed run
 * continues bit for bit and the file is readable by `safetensors.torch.load_file`.
 */
import { FormatError, parseSafetensors, serializeSafetensors, createTensor, type SafetensorsInput } from '@vlit/core';
import type { AdamWParamState, AdamWState } from './adamw.js';

/** The `format` metadata value of an optimizer-state file. */
export const ADAMW_STATE_FORMAT = 'vlit-adamw-state';

const SUFFIXES = ['.exp_avg_sq', '.exp_avg', '.step'] as const;

/** Serialise AdamW state to safetensors bytes (metadata: format, version, and any `extra` strings). */
export function serializeAdamWState(state: AdamWState, extra: Record<string, string> = {}): Uint8Array {
  const tensors = new Map<string, SafetensorsInput>();
  for (const [name, s] of state.params) {
    tensors.set(`${name}.exp_avg`, createTensor('float32', [s.expAvg.length], s.expAvg));
    tensors.set(`${name}.exp_avg_sq`, createTensor('float32', [s.expAvgSq.length], s.expAvgSq));
    tensors.set(`${name}.step`, createTensor('float32', [], new Float32Array([s.step])));
  }
  return serializeSafetensors(tensors, { ...extra, format: ADAMW_STATE_FORMAT, version: '1' });
}

/** Parse AdamW state written by serializeAdamWState; a foreign or incomplete file is a FormatError. */
export function parseAdamWState(bytes: Uint8Array, file?: string): { state: AdamWState; metadata: Record<string, string> } {
  const parsed = parseSafetensors(bytes, file !== undefined ? { file } : {});
  if (parsed.metadata.format !== ADAMW_STATE_FORMAT) {
    throw new FormatError(`not an AdamW state file (format '${parsed.metadata.format ?? ''}')`, { details: { file, field: '__metadata__.format' } });
  }
  const partial = new Map<string, Partial<AdamWParamState>>();
  for (const [key, entry] of parsed.tensors) {
    const suffix = SUFFIXES.find((s) => key.endsWith(s));
    if (!suffix) throw new FormatError(`unexpected tensor '${key}' in AdamW state`, { details: { file, field: key } });
    const name = key.slice(0, -suffix.length);
    const slot = partial.get(name) ?? {};
    // Copy: the parsed views share the file's bytes, which the caller may reuse.
    const values = Float32Array.from(entry.toFloat32());
    if (suffix === '.step') slot.step = values[0];
    else if (suffix === '.exp_avg') slot.expAvg = values;
    else slot.expAvgSq = values;
    partial.set(name, slot);
  }
  const params = new Map<string, AdamWParamState>();
  for (const [name, s] of partial) {
    if (s.step === undefined || s.expAvg === undefined || s.expAvgSq === undefined) {
      throw new FormatError(`AdamW state of '${name}' is incomplete (needs exp_avg, exp_avg_sq and step)`, { details: { file, field: name } });
    }
    params.set(name, { step: s.step, expAvg: s.expAvg, expAvgSq: s.expAvgSq });
  }
  return { state: { params }, metadata: parsed.metadata };
}
