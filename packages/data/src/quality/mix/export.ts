import { IMAGE_PLACEHOLDER, InvalidArgumentError, type VlitRecord, type VlitWarning } from '@vlit/core';
import { imageRefPath } from '../pipeline.js';
import type { MixPlan } from './plan.js';

/** LLaMA-Factory's mixing arguments for a plan. */
export interface LlamaFactoryMix {
  /** Dataset names, in plan order (keys of dataset_info.json). */
  dataset: string[];
  /** Probabilities in the same order, rounded to 6 digits, summing to 1. */
  interleave_probs: number[];
  mix_strategy: 'interleave_under' | 'interleave_over';
  /** The same as YAML lines for a LLaMA-Factory training config. */
  yaml: string;
}

/**
 * Export a plan as LLaMA-Factory `dataset` + `interleave_probs` + `mix_strategy`. The
 * probabilities are the plan's realised shares (samples / total), so caps are respected;
 * `interleave_over` (default) oversamples small sources as the plan's epochs > 1 require.
 */
export function toLlamaFactoryMix(
  plan: MixPlan,
  options: { datasetNames?: Readonly<Record<string, string>>; mixStrategy?: 'interleave_under' | 'interleave_over' } = {},
): LlamaFactoryMix {
  const used = plan.sources.filter((s) => s.samples > 0);
  if (!used.length || plan.total === 0) throw new InvalidArgumentError('the plan draws no samples', { details: { field: 'plan' } });
  const dataset = used.map((s) => options.datasetNames?.[s.name] ?? s.name);
  const probs = used.map((s) => Math.round((s.samples / plan.total) * 1e6) / 1e6);
  // Put the rounding residue on the largest share so the list sums to 1 to 6 digits.
  const largest = probs.indexOf(Math.max(...probs));
  probs[largest] = Math.round((probs[largest] + 1 - probs.reduce((a, b) => a + b, 0)) * 1e6) / 1e6;
  const mix = options.mixStrategy ?? 'interleave_over';
  return {
    dataset,
    interleave_probs: probs,
    mix_strategy: mix,
    yaml: `dataset: ${dataset.join(',')}\nmix_strategy: ${mix}\ninterleave_probs: ${probs.join(',')}\n`,
  };
}

/** dataset_info.json entries for canonical records written as ShareGPT-style `messages` + `images` JSON/JSONL files. */
export function llamaFactoryDatasetInfo(files: Readonly<Record<string, string>>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(files).map(([name, file]) => [
      name,
      {
        file_name: file,
        formatting: 'sharegpt',
        columns: { messages: 'messages', images: 'images' },
        tags: { role_tag: 'role', content_tag: 'content', user_tag: 'user', assistant_tag: 'assistant', system_tag: 'system' },
      },
    ]),
  );
}

/** A LLaVA-format entry. */
export interface LlavaEntry {
  id: string;
  image?: string | string[];
  conversations: Array<{ from: 'human' | 'gpt'; value: string }>;
}

/** Records (e.g. a drawn mixture) as a LLaVA JSON array; what LLaVA cannot hold (system turns) comes back as warnings. */
export function toLlavaJson(records: Iterable<VlitRecord>): { entries: LlavaEntry[]; warnings: VlitWarning[] } {
  const entries: LlavaEntry[] = [];
  const warnings: VlitWarning[] = [];
  for (const r of records) {
    const conversations: LlavaEntry['conversations'] = [];
    for (const [i, m] of r.messages.entries()) {
      if (m.role === 'system') {
        warnings.push({ code: 'VLIT_W_LOSSY_CONVERSION', message: 'LLaVA has no system turn; dropped', details: { record: r.id, field: `messages.${i}` } });
        continue;
      }
      const value = typeof m.content === 'string' ? m.content : m.content.map((p) => (p.type === 'image' ? IMAGE_PLACEHOLDER : p.text)).join('');
      conversations.push({ from: m.role === 'user' ? 'human' : 'gpt', value });
    }
    const paths = r.images.map(imageRefPath);
    entries.push({ id: r.id, ...(paths.length === 1 ? { image: paths[0] } : paths.length > 1 ? { image: paths } : {}), conversations });
  }
  return { entries, warnings };
}
