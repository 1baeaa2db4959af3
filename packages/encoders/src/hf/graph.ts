/**
 * CLIP and SigLIP towers as ONNX graph fragments, written against transformers' modeling_clip.py
 * and modeling_siglip.py: the shared pre-LN encoder layer (attention + MLP), the vision embeddings
 * (CLIP: class token + pre-LayerNorm; SigLIP: patch bias, no class token), the text embeddings, the
 * heads that give dual-encoder embeddings, and LLaVA's feature selection. Each `add*` function adds
 * nodes to a caller's GraphBuilder, so a tower can be placed inside a bigger graph (a LLaVA model);
 * initializers keep their Hugging Face names behind an optional prefix, so composed graphs do not collide.
 */
import { InvalidArgumentError, createTensor, type Tensor } from '@vlit/core';
import type { GraphBuilder, Value } from '@vlit/graph';
import { visionTowerTokens, type HfActivation, type HfTextTowerSpec, type HfVisionTowerSpec } from './config.js';
import type { HfWeights } from './weights.js';

/** LLaVA's `vision_feature_select_strategy`: `default` drops token 0 (CLIP's class token), `full` keeps every token. */
export type HfSelectStrategy = 'default' | 'full';

/** Which hidden states become features, as LLaVA selects them. */
export interface HfFeatureSelection {
  /** Index into hidden_states (0 = embeddings, L = last layer), negative from the end; a list concatenates along the width. */
  featureLayer: number | readonly number[];
  selectStrategy: HfSelectStrategy;
}

/** Naming and weights shared by every fragment. */
export interface HfFragmentOptions {
  /** Put in front of every initializer and node name (e.g. `vision_tower.`), so fragments compose. */
  namePrefix?: string;
}

interface Ctx {
  g: GraphBuilder;
  w(name: string): Value;
  name(n: string): string;
}

function context(g: GraphBuilder, weights: HfWeights, namePrefix = ''): Ctx {
  const added = new Map<string, Value>();
  return {
    g,
    name: (n) => namePrefix + n,
    w(name) {
      let v = added.get(name);
      if (!v) {
        const t = weights.get(name);
        if (!t) throw new InvalidArgumentError(`weight ${name} is missing`, { details: { field: name } });
        added.set(name, (v = g.initializer(namePrefix + name, t)));
      }
      return v;
    },
  };
}

function linear(c: Ctx, x: Value, prefix: string, bias = true): Value {
  const y = c.g.matMul(x, c.g.transpose(c.w(`${prefix}.weight`), [1, 0]), { name: c.name(`${prefix}.matmul`) });
  return bias ? c.g.add(y, c.w(`${prefix}.bias`), { name: c.name(prefix) }) : y;
}

function layerNorm(c: Ctx, x: Value, prefix: string, eps: number): Value {
  return c.g.layerNormalization(x, c.w(`${prefix}.weight`), c.w(`${prefix}.bias`), { axis: -1, epsilon: eps, name: c.name(prefix) });
}

function activate(c: Ctx, x: Value, act: HfActivation, name: string): Value {
  if (act === 'gelu') return c.g.gelu(x, { name: c.name(`${name}.gelu`) });
  if (act === 'gelu_tanh') return c.g.gelu(x, { name: c.name(`${name}.gelu`), approximate: 'tanh' });
  return c.g.mul(x, c.g.sigmoid(c.g.mul(x, 1.702)), { name: c.name(`${name}.quick_gelu`) });
}

function mlp(c: Ctx, x: Value, prefix: string, act: HfActivation): Value {
  return linear(c, activate(c, linear(c, x, `${prefix}.fc1`), act, prefix), `${prefix}.fc2`);
}

/** [B, T, D] -> [B, H, T, dh] (or [B, H, dh, T] for keys). */
function splitHeads(c: Ctx, x: Value, heads: number, dh: number, keys = false): Value {
  return c.g.transpose(c.g.reshape(x, [0, 0, heads, dh]), keys ? [0, 2, 3, 1] : [0, 2, 1, 3]);
}

function attend(c: Ctx, q: Value, k: Value, v: Value, heads: number, dh: number, mask: Value | undefined, name: string): Value {
  // Scores are scaled after the product, as transformers' eager attention does.
  let scores = c.g.mul(c.g.matMul(splitHeads(c, q, heads, dh), splitHeads(c, k, heads, dh, true)), 1 / Math.sqrt(dh), { name: c.name(`${name}.scores`) });
  if (mask) scores = c.g.add(scores, mask);
  const probs = c.g.softmax(scores, { axis: -1, name: c.name(`${name}.softmax`) });
  return c.g.reshape(c.g.transpose(c.g.matMul(probs, splitHeads(c, v, heads, dh)), [0, 2, 1, 3]), [0, 0, heads * dh]);
}

interface LayerShape {
  hiddenSize: number;
  numHeads: number;
  layerNormEps: number;
  hiddenAct: HfActivation;
}

/** One CLIP/SigLIP encoder layer: x + attn(ln1(x)), then + mlp(ln2(x)). `mask` is added to the scores. */
function encoderLayer(c: Ctx, x: Value, L: string, spec: LayerShape, mask?: Value): Value {
  const dh = spec.hiddenSize / spec.numHeads;
  const h = layerNorm(c, x, `${L}.layer_norm1`, spec.layerNormEps);
  const a = `${L}.self_attn`;
  const ctx = attend(c, linear(c, h, `${a}.q_proj`), linear(c, h, `${a}.k_proj`), linear(c, h, `${a}.v_proj`), spec.numHeads, dh, mask, a);
  const x1 = c.g.add(x, linear(c, ctx, `${a}.out_proj`), { name: c.name(`${L}.residual1`) });
  return c.g.add(x1, mlp(c, layerNorm(c, x1, `${L}.layer_norm2`, spec.layerNormEps), `${L}.mlp`, spec.hiddenAct), { name: c.name(`${L}.residual2`) });
}

/** What addHfVisionTower adds. */
export interface HfVisionTowerValues {
  /** hidden_states[0..upToLayer]: the embeddings (after CLIP's pre-LayerNorm), then each layer's output. */
  hiddenStates: Value[];
}

/** Resolve LLaVA's feature layer(s) to hidden-state indices in 0..L, with a typed error outside. */
export function resolveFeatureLayers(spec: Pick<HfVisionTowerSpec, 'numLayers'>, featureLayer: number | readonly number[]): number[] {
  const layers = typeof featureLayer === 'number' ? [featureLayer] : [...featureLayer];
  const count = spec.numLayers + 1;
  if (layers.length === 0) throw new InvalidArgumentError('featureLayer is an empty list', { details: { field: 'featureLayer' } });
  return layers.map((l) => {
    const i = l < 0 ? count + l : l;
    if (!Number.isInteger(l) || i < 0 || i >= count) {
      throw new InvalidArgumentError(`featureLayer ${l} is outside the tower's ${count} hidden states (-${count}..${count - 1})`, {
        details: { field: 'featureLayer', featureLayer: l },
      });
    }
    return i;
  });
}

/** Tokens and width of the selected features for one image. */
export function selectedFeatureShape(spec: HfVisionTowerSpec, selection: HfFeatureSelection): { tokens: number; width: number } {
  const layers = resolveFeatureLayers(spec, selection.featureLayer);
  const { tokens } = visionTowerTokens(spec);
  return { tokens: tokens - (selection.selectStrategy === 'default' ? 1 : 0), width: spec.hiddenSize * layers.length };
}

/**
 * Add a vision tower's embeddings and its first `upToLayer` encoder layers (default all) to `g`,
 * reading `pixels` [B, C, S, S]. Weights are relative to the tower's root (`embeddings.…`).
 */
export function addHfVisionTower(
  g: GraphBuilder,
  pixels: Value,
  spec: HfVisionTowerSpec,
  weights: HfWeights,
  options: HfFragmentOptions & { upToLayer?: number } = {},
): HfVisionTowerValues {
  const c = context(g, weights, options.namePrefix);
  const D = spec.hiddenSize;
  const { patches } = visionTowerTokens(spec);
  const clip = spec.family === 'clip';
  const conv = g.conv(pixels, c.w('embeddings.patch_embedding.weight'), clip ? null : c.w('embeddings.patch_embedding.bias'), {
    strides: [spec.patchSize, spec.patchSize],
    kernelShape: [spec.patchSize, spec.patchSize],
    name: c.name('embeddings.patch_embedding'),
  });
  // [B, D, g, g] -> [B, g², D]; 0 copies the batch dim.
  let x = g.transpose(g.reshape(conv, [0, D, patches]), [0, 2, 1]);
  if (clip) {
    const cls = g.reshape(c.w('embeddings.class_embedding'), [1, 1, D]);
    const shape = g.concat([g.shape(pixels, { start: 0, end: 1 }), g.constant(createTensor('int64', [2], [1n, BigInt(D)]))], 0);
    x = g.concat([g.expand(cls, shape), x], 1, { name: c.name('embeddings.concat_class') });
  }
  x = g.add(x, c.w('embeddings.position_embedding.weight'), { name: c.name('embeddings.add_positions') });
  if (clip) x = layerNorm(c, x, 'pre_layrnorm', spec.layerNormEps);
  const hiddenStates = [x];
  const upTo = options.upToLayer ?? spec.numLayers;
  for (let i = 0; i < upTo; i++) {
    x = encoderLayer(c, x, `encoder.layers.${i}`, spec);
    hiddenStates.push(x);
  }
  return { hiddenStates };
}

/** LLaVA's selection: the chosen hidden states, token 0 dropped for `default`, concatenated along the width. */
export function addFeatureSelection(
  g: GraphBuilder,
  hiddenStates: readonly Value[],
  layers: readonly number[],
  strategy: HfSelectStrategy,
  options: HfFragmentOptions = {},
): Value {
  const picked = layers.map((i) => {
    const h = hiddenStates[i];
    if (!h) throw new InvalidArgumentError(`hidden state ${i} was not built`, { details: { field: 'featureLayer' } });
    // transformers drops token 0 for `default` whatever the tower (for SigLIP that is a patch token).
    return strategy === 'default' ? g.slice(h, { starts: [1], ends: [Number.MAX_SAFE_INTEGER], axes: [1] }) : h;
  });
  return picked.length === 1
    ? g.identity(picked[0], { name: `${options.namePrefix ?? ''}select_features` })
    : g.concat(picked, -1, { name: `${options.namePrefix ?? ''}select_features` });
}

/**
 * The tower's pooled image embedding from its last hidden state: CLIP's post-LayerNorm class token
 * through `visual_projection` (from `projection`, when given), SigLIP's post-LayerNorm then the
 * attention-pool head. Weights relative to the tower root; `projection` names a full-model tensor.
 */
export function addHfImageEmbedding(
  g: GraphBuilder,
  last: Value,
  spec: HfVisionTowerSpec,
  weights: HfWeights,
  options: HfFragmentOptions & { projection?: { name: string; tensor: Tensor<'float32'> } } = {},
): Value {
  const c = context(g, weights, options.namePrefix);
  const D = spec.hiddenSize;
  if (spec.family === 'clip') {
    const cls = g.squeeze(g.slice(last, { starts: [0], ends: [1], axes: [1] }), [1]);
    const pooled = layerNorm(c, cls, 'post_layernorm', spec.layerNormEps);
    if (!options.projection) return pooled;
    return g.matMul(pooled, g.transpose(g.initializer(options.projection.name, options.projection.tensor), [1, 0]), { name: options.projection.name });
  }
  const x = layerNorm(c, last, 'post_layernorm', spec.layerNormEps);
  // nn.MultiheadAttention(probe, x, x): in_proj rows are q, k, v in that order.
  const inW = c.w('head.attention.in_proj_weight');
  const inB = c.w('head.attention.in_proj_bias');
  const proj = (v: Value, part: number, name: string) =>
    g.add(
      g.matMul(v, g.transpose(g.slice(inW, { starts: [part * D], ends: [(part + 1) * D], axes: [0] }), [1, 0])),
      g.slice(inB, { starts: [part * D], ends: [(part + 1) * D], axes: [0] }),
      { name: c.name(`head.attention.${name}`) },
    );
  const batch = g.shape(last, { start: 0, end: 1 });
  const probe = g.expand(c.w('head.probe'), g.concat([batch, g.constant(createTensor('int64', [2], [1n, BigInt(D)]))], 0));
  const dh = D / spec.numHeads;
  const ctx = attend(c, proj(probe, 0, 'q'), proj(x, 1, 'k'), proj(x, 2, 'v'), spec.numHeads, dh, undefined, 'head.attention');
  const h = linear(c, ctx, 'head.attention.out_proj');
  const out = g.add(h, mlp(c, layerNorm(c, h, 'head.layernorm', spec.layerNormEps), 'head.mlp', spec.hiddenAct), { name: c.name('head.residual') });
  return g.squeeze(out, [1]);
}

/**
 * Add a text tower reading `ids` [B, S] (int64, S ≤ max positions): embeddings, encoder layers
 * (CLIP causal, SigLIP bidirectional), final LayerNorm, and the pooled vector: CLIP's first EOS
 * token (the highest id when `eos_token_id` is the legacy 2), SigLIP's last token through its head.
 */
export function addHfTextTower(
  g: GraphBuilder,
  ids: Value,
  spec: HfTextTowerSpec,
  weights: HfWeights,
  options: HfFragmentOptions = {},
): { lastHiddenState: Value; pooled: Value } {
  const c = context(g, weights, options.namePrefix);
  const i64 = (vals: number[]) =>
    g.constant(
      createTensor(
        'int64',
        [vals.length],
        vals.map((v) => BigInt(v)),
      ),
    );
  const seq = g.shape(ids, { start: 1, end: 2 });
  const tokens = g.gather(c.w('embeddings.token_embedding.weight'), ids, { axis: 0, name: c.name('embeddings.token_embedding') });
  const positions = g.op('Slice', [c.w('embeddings.position_embedding.weight'), i64([0]), seq, i64([0])], undefined, { name: c.name('embeddings.positions') });
  let x = g.add(tokens, positions, { name: c.name('embeddings.add_positions') });
  let mask: Value | undefined;
  if (spec.family === 'clip') {
    // transformers' causal mask: the dtype's minimum above the diagonal, added to the scores.
    const P = spec.maxPositions;
    const m = createTensor('float32', [P, P]);
    for (let r = 0; r < P; r++) for (let k = r + 1; k < P; k++) m.data[r * P + k] = -3.4028234663852886e38;
    const full = g.initializer(c.name('causal_mask'), m);
    mask = g.op('Slice', [full, i64([0, 0]), g.concat([seq, seq], 0), i64([0, 1])], undefined, { name: c.name('causal_mask.slice') });
  }
  for (let i = 0; i < spec.numLayers; i++) x = encoderLayer(c, x, `encoder.layers.${i}`, spec, mask);
  const last = layerNorm(c, x, 'final_layer_norm', spec.layerNormEps);
  let pooled: Value;
  if (spec.family === 'clip') {
    const legacy = spec.eosTokenId === 2;
    // ArgMax picks the first maximum, which is transformers' rule in both cases; float keeps ids < 2^24 exact.
    const key = legacy ? g.cast(ids, 'float32') : g.cast(g.equal(ids, g.constant(createTensor('int64', [], [BigInt(spec.eosTokenId)]))), 'float32');
    const at = g.op('ArgMax', [key], { axis: 1, keepdims: 0 }, { name: c.name('pool.argmax') });
    // One-hot row times the hidden states picks that row exactly (ones and zeros only).
    const range = g.op('Range', [g.constant(createTensor('int64', [], [0n])), g.squeeze(seq, [0]), g.constant(createTensor('int64', [], [1n]))], undefined, {
      name: c.name('pool.range'),
    });
    const onehot = g.cast(g.equal(g.unsqueeze(range, [0]), g.unsqueeze(at, [1])), 'float32');
    pooled = g.squeeze(g.matMul(g.unsqueeze(onehot, [1]), last), [1], { name: c.name('pool') });
  } else {
    pooled = linear(c, g.gather(last, -1, { axis: 1, name: c.name('pool') }), 'head');
  }
  return { lastHiddenState: last, pooled };
}

/** x / ||x|| over the last axis, as transformers normalises embeddings before the logits. */
export function addL2Normalize(g: GraphBuilder, x: Value, name: string): Value {
  return g.div(x, g.sqrt(g.op('ReduceSumSquare', [x, g.constant(createTensor('int64', [1], [-1n]))], { keepdims: 1 })), { name });
}
