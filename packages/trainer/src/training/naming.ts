/**
 * How the initializers of the composed parts are named in the training graph: one name space for the
 * whole model, so recipes, checkpoints and PEFT adapters use the names transformers' state dict uses.
 */

/** The forward graphs a training graph is assembled from (the vision encoder is optional). */
export type TrainingPart = 'encoder' | 'connector' | 'embedTokens' | 'decoder';

/**
 * Maps a part's initializer to its model tensor name, or null for a graph-internal constant (shape
 * vectors, RoPE frequencies), which stays frozen under a part-prefixed name that never collides.
 */
export type TensorNaming = (part: TrainingPart, name: string) => string | null;

/** True for names that look like module parameters rather than builder constants. */
function looksLikeParameter(name: string): boolean {
  return !name.includes('/') && /^[A-Za-z_][\w.]*$/.test(name) && !/^const(_|$)/.test(name);
}

/**
 * transformers 5 LlavaForConditionalGeneration names: the vision encoder under `model.vision_tower.`
 * with the names relative to the tower's root (`model.vision_tower.embeddings.patch_embedding.weight`:
 * a CLIPVisionModel's `vision_model.` level, as Vlit's ViT and transformers 4 files write it, is dropped),
 * the projector under `model.multi_modal_projector.`,
 * the decoder's `model.*` under `model.language_model.*`, `lm_head.*` as it is. Decoder initializers
 * that are not `model.*` / `lm_head.*` parameters (e.g. `rotary.inv_freq`) are constants.
 */
export const llavaTensorNaming: TensorNaming = (part, name) => {
  if (!looksLikeParameter(name)) return null;
  if (part === 'encoder') {
    const root = name.replace(/^(model\.)?(vision_tower\.)?(vision_model\.)?/, '');
    return `model.vision_tower.${root}`;
  }
  if (part === 'connector') {
    if (name.startsWith('model.multi_modal_projector.')) return name;
    if (name.startsWith('multi_modal_projector.')) return `model.${name}`;
    return `model.multi_modal_projector.${name}`;
  }
  if (name.startsWith('model.language_model.') || name.startsWith('lm_head.')) return name;
  if (name.startsWith('language_model.')) return `model.${name}`;
  if (name.startsWith('model.')) return `model.language_model.${name.slice('model.'.length)}`;
  return null;
};

/**
 * Keeps names as the parts wrote them (parts that already share one name space): every parameter-like
 * encoder and connector initializer, and the decoder's `model.*` / `lm_head.*` ones.
 */
export const identityTensorNaming: TensorNaming = (part, name) => {
  if (!looksLikeParameter(name)) return null;
  if (part === 'connector' || part === 'encoder') return name;
  return name.startsWith('model.') || name.startsWith('lm_head.') ? name : null;
};
