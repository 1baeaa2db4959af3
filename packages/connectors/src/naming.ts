/**
 * Tensor naming schemes of connector checkpoints. Vlit's canonical names follow Hugging Face's
 * module names inside the projector; the schemes add the prefix (and index renames) that the
 * surrounding model uses:
 * - `vlit`: canonical names as they are (`linear_1.weight`).
 * - `hf-llava`: Hugging Face transformers' LlavaForConditionalGeneration (`multi_modal_projector.linear_1.weight`).
 * - `llava`: the original LLaVA repository (`model.mm_projector.0.weight`, `model.mm_projector.2.weight`
 *   for mlp2x_gelu; `model.mm_projector.weight` for a linear projector).
 */
import type { ConnectorKind } from './config.js';

/** How tensor names are written in a checkpoint. */
export type ConnectorNaming = 'vlit' | 'hf-llava' | 'llava';

const HF_PREFIX = 'multi_modal_projector.';
const LLAVA_PREFIX = 'model.mm_projector.';

/** Checkpoint name of a canonical weight name under a naming scheme. */
export function toCheckpointName(name: string, naming: ConnectorNaming, kind: ConnectorKind): string {
  if (naming === 'vlit') return name;
  if (naming === 'hf-llava') return HF_PREFIX + name;
  // Original LLaVA keeps an nn.Sequential: Linear at 0, GELU at 1, Linear at 2.
  if (kind === 'linear') return LLAVA_PREFIX + name.replace(/^linear\./, '');
  return LLAVA_PREFIX + name.replace(/^linear_1\./, '0.').replace(/^linear_2\./, '2.');
}

/** Canonical weight name of a checkpoint name, or undefined when the name is not the projector's. */
export function fromCheckpointName(name: string, naming: ConnectorNaming, kind: ConnectorKind): string | undefined {
  if (naming === 'vlit') return name;
  if (naming === 'hf-llava') return name.startsWith(HF_PREFIX) ? name.slice(HF_PREFIX.length) : undefined;
  if (!name.startsWith(LLAVA_PREFIX)) return undefined;
  const rest = name.slice(LLAVA_PREFIX.length);
  if (kind === 'linear') return `linear.${rest}`;
  return rest.replace(/^0\./, 'linear_1.').replace(/^2\./, 'linear_2.');
}

/** Guess the naming scheme of a checkpoint from its tensor names. */
export function detectNaming(names: Iterable<string>): ConnectorNaming {
  for (const n of names) {
    if (n.startsWith(HF_PREFIX)) return 'hf-llava';
    if (n.startsWith(LLAVA_PREFIX)) return 'llava';
  }
  return 'vlit';
}
