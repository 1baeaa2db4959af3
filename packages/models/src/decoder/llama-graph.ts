/**
 * The Llama-style decoder as ONNX graphs in the Optimum layout: a decoder that takes
 * `inputs_embeds`, `attention_mask`, `position_ids` and `past_key_values.{i}.key/value` (zero-length
 * past at the first step) and returns `logits` and `present.{i}.key/value`; and an `embed_tokens`
 * model (`input_ids` -> `inputs_embeds`). Initializers carry Hugging Face names in torch layout.
 * With `{ cache: 'slots' }` the decoder speaks Vlit's in-place cache protocol instead (see
 * LlamaGraphOptions.cache): for sessions Vlit runs itself, never for files it writes.
 */
import { CompatibilityError, createTensor, type Tensor } from '@vlit/core';
import { createGraph, type GraphBuilder, type OnnxModel, type Value } from '@vlit/graph';
import { OPTIMUM_NAMES as N, SLOT_CACHE_NAMES } from '../language-model/optimum-layout.js';
import { ropeInverseFrequencies, type LlamaConfig } from './llama-config.js';
import { llamaWeightShapes, type LlamaWeights } from './llama-weights.js';

/** Added to the scores of masked positions; large enough to zero them, small enough to avoid inf - inf. */
const MASK_VALUE = -1e9;

function scalar(g: GraphBuilder, name: string, dtype: 'float32' | 'int64', v: number): Value {
  return g.initializer(name, dtype === 'int64' ? createTensor('int64', [], [BigInt(v)]) : createTensor('float32', [], [v]));
}

/** How a Llama graph gets its weights. */
export interface LlamaGraphOptions {
  /**
   * 'initializers' (default): the weights travel inside the model under their Hugging Face names.
   * 'inputs': each weight is a float32 graph input instead, in torch layout under its Hugging Face name (Linear
   * layers become Gemm with transB), for a loader that turns the inputs into external-data initializers
   * without holding the weights in memory (see loadHfLanguageModel).
   */
  weights?: 'initializers' | 'inputs';
  /**
   * How the KV cache travels. 'returned' (default): Optimum's protocol, `past_key_values.{i}.*` hold the
   * past and the graph returns the whole cache again as `present.{i}.*`, so every step copies the cache
   * twice (the Concat, then the runtime's copy of each output) and allocates it afresh.
   * 'slots': `past_key_values.{i}.*` are caller-owned slot buffers [batch, kv_heads, capacity, head_dim]
   * whose unused slots hold finite values (zeros); `attention_mask` is [batch, capacity + sequence_length]:
   * the slots' mask (0 for an unused slot) followed by the new tokens'. The graph returns only this step's
   * keys and values, `appended_key_values.{i}.key/value` [batch, kv_heads, sequence_length, head_dim], for
   * the caller to write into the slots; nothing the size of the cache is copied or returned. Attention
   * over slots and new keys is one softmax over both, so it is the same function as 'returned'. An int64
   * [1] input `logits_to_keep` says how many of the last positions get logits. Not available with
   * sliding-window attention (its window counts absolute cache positions).
   */
  cache?: 'returned' | 'slots';
}

/** Graph of the decoder (everything after the token embedding); `weights` is unused with `{ weights: 'inputs' }`. */
export function buildLlamaDecoderModel(config: LlamaConfig, weights: Readonly<LlamaWeights>, options: LlamaGraphOptions = {}): OnnxModel {
  const { hiddenSize: h, numAttentionHeads: nh, numKeyValueHeads: kvh, headDim: hd } = config;
  const groups = nh / kvh;
  const g = createGraph({ name: 'llama-decoder', opset: 20 });
  const asInputs = options.weights === 'inputs';
  const slots = options.cache === 'slots';
  if (slots && config.slidingWindow !== undefined) {
    throw new CompatibilityError("buildLlamaDecoderModel: { cache: 'slots' } does not express sliding-window attention", {
      details: { field: 'cache', slidingWindow: config.slidingWindow },
    });
  }
  const shapes = asInputs ? llamaWeightShapes(config) : {};
  const existing = (name: string): Value | undefined => {
    try {
      return g.value(name);
    } catch {
      return undefined;
    }
  };
  const w = (name: string): Value => existing(name) ?? (asInputs ? g.input(name, 'float32', shapes[name]) : g.initializer(name, weights[name]));
  let lead: Value | undefined;
  const linear = (x: Value, name: string, bias = false): Value => {
    const biasName = name.replace(/\.weight$/, '.bias');
    if (asInputs) {
      // Gemm with transB reads the torch-layout [out, in] weight as stored, so the loader never transposes it.
      const [out, inp] = shapes[name];
      lead ??= g.slice(g.shape(x), { starts: [0], ends: [2], axes: [0], name: 'linear/batch_seq' });
      const flat = g.reshape(x, [-1, inp], { name: `${name}/flatten` });
      const y = g.op('Gemm', bias ? [flat, w(name), w(biasName)] : [flat, w(name)], { transB: 1 }, { name: `${name}/Gemm` });
      const dims = g.concat([lead, g.initializer(`${name}/out_dim`, createTensor('int64', [1], [BigInt(out)]))], 0, { name: `${name}/out_shape` });
      return g.reshape(y, dims, { name: `${name}/unflatten` });
    }
    const y = g.matMul(x, g.transpose(w(name), [1, 0], { name: `${name}/T` }), { name: `${name}/MatMul` });
    return bias ? g.add(y, w(biasName), { name: `${name}/bias` }) : y;
  };
  const rmsNorm = (x: Value, name: string): Value => {
    // x / sqrt(mean(x²) + eps) * weight
    const ms = g.reduceMean(g.mul(x, x, { name: `${name}/square` }), [-1], { keepdims: true, name: `${name}/mean` });
    const inv = g.div(1, g.sqrt(g.add(ms, config.rmsNormEps, { name: `${name}/eps` }), { name: `${name}/sqrt` }), { name: `${name}/inv` });
    return g.mul(g.mul(x, inv, { name: `${name}/scale` }), w(name), { name: `${name}/weight` });
  };

  const x = g.input(N.inputsEmbeds, 'float32', ['batch_size', 'sequence_length', h]);
  const mask = g.input(N.attentionMask, 'int64', ['batch_size', 'total_sequence_length']);
  const pos = g.input(N.positionIds, 'int64', ['batch_size', 'sequence_length']);
  const past: [Value, Value][] = [];
  for (let i = 0; i < config.numHiddenLayers; i++) {
    past.push([
      g.input(N.pastKey(i), 'float32', ['batch_size', kvh, slots ? 'cache_capacity' : 'past_sequence_length', hd]),
      g.input(N.pastValue(i), 'float32', ['batch_size', kvh, slots ? 'cache_capacity' : 'past_sequence_length', hd]),
    ]);
  }

  // Rotary embedding, Hugging Face's rotate_half convention: angle_j = pos * theta^(-2j/hd), j < hd/2,
  // used for channel j and j + hd/2.
  const invFreq = Float32Array.from(ropeInverseFrequencies(config));
  const freqs = g.mul(g.unsqueeze(g.cast(pos, 'float32'), [2]), g.initializer('rotary.inv_freq', createTensor('float32', [hd / 2], invFreq)), {
    name: 'rotary/freqs',
  });
  const angles = g.concat([freqs, freqs], -1, { name: 'rotary/angles' });
  const cos = g.unsqueeze(g.op('Cos', [angles], {}, { name: 'rotary/cos' }), [1]);
  const sin = g.unsqueeze(g.op('Sin', [angles], {}, { name: 'rotary/sin' }), [1]);
  const rope = (t: Value, name: string): Value => {
    const first = g.slice(t, { starts: [0], ends: [hd / 2], axes: [3], name: `${name}/x1` });
    const second = g.slice(t, { starts: [hd / 2], ends: [hd], axes: [3], name: `${name}/x2` });
    const rotated = g.concat([g.neg(second), first], 3, { name: `${name}/rotate_half` });
    return g.add(g.mul(t, cos), g.mul(rotated, sin), { name });
  };

  const zero = scalar(g, 'mask/zero', 'int64', 0);
  const one = scalar(g, 'mask/one', 'int64', 1);
  const seq = g.gather(g.shape(x), 1, { name: 'mask/seq' });
  // An additive bias from a boolean mask: 0 where allowed, MASK_VALUE elsewhere.
  const maskBias = (ok: Value, name: string, node = name): Value =>
    g.where(ok, scalar(g, `${name}/keep`, 'float32', 0), scalar(g, `${name}/drop`, 'float32', MASK_VALUE), { name: node });
  const toBias = (ok: Value, name: string): Value => g.unsqueeze(maskBias(ok, name, `${name}4`), [1], { name });
  let bias: Value | undefined;
  let slidingBias: Value | undefined;
  let slotBias: { past: Value; fresh: Value; start: Value; capacity: Value; end: Value; lastAxis: Value } | undefined;
  if (slots) {
    // The slots' part of the mask covers the capacity (every slot precedes every new token); the new part is
    // causal among the new tokens.
    const capacity = g.shape(past[0][0], { start: 2, end: 3, name: 'slots/capacity' });
    const lastAxis = g.initializer('slots/last_axis', createTensor('int64', [1], [-1n]));
    const start = g.initializer('slots/start', createTensor('int64', [1], [0n]));
    const end = g.initializer('slots/end', createTensor('int64', [1], [BigInt(Number.MAX_SAFE_INTEGER)]));
    const pastMask = g.op('Slice', [mask, start, capacity, lastAxis], {}, { name: 'slots/past_mask' });
    const newMask = g.op('Slice', [mask, capacity, end, lastAxis], {}, { name: 'slots/new_mask' });
    const newIdx = g.op('Range', [zero, seq, one], {}, { name: 'slots/new_index' });
    const newCausal = g.op('LessOrEqual', [g.unsqueeze(newIdx, [0]), g.unsqueeze(newIdx, [1])], {}, { name: 'slots/causal' });
    const newAllowed = g.op('And', [newCausal, g.unsqueeze(g.cast(newMask, 'bool'), [1, 2])], {}, { name: 'slots/new_allowed' });
    // Biases for the scores as [batch, kv_heads, groups * seq, keys] (see the attention below): the slots'
    // [batch, 1, 1, capacity] for every query row, the new tokens' causal [batch, 1, seq, seq] tiled over the groups.
    const fresh = maskBias(newAllowed, 'slots/new_bias');
    slotBias = {
      past: maskBias(g.unsqueeze(g.cast(pastMask, 'bool'), [1, 2], { name: 'slots/past_allowed' }), 'slots/past_bias'),
      fresh:
        groups === 1
          ? fresh
          : g.op(
              'Tile',
              [fresh, g.initializer('slots/group_repeats', createTensor('int64', [4], [1n, 1n, BigInt(groups), 1n]))],
              {},
              { name: 'slots/new_bias_rows' },
            ),
      start,
      capacity,
      end,
      lastAxis,
    };
  } else {
    // Causal mask combined with the attention mask: query i (absolute position past + i) sees key j
    // when j <= past + i and attention_mask[j] = 1. Additive bias [batch, 1, 1, seq, total].
    const total = g.gather(g.shape(mask), 1, { name: 'mask/total' });
    const pastLen = g.sub(total, seq, { name: 'mask/past' });
    const keyIdx = g.op('Range', [zero, total, one], {}, { name: 'mask/key_index' });
    const queryIdx = g.op('Range', [pastLen, total, one], {}, { name: 'mask/query_index' });
    const causal = g.op('LessOrEqual', [g.unsqueeze(keyIdx, [0]), g.unsqueeze(queryIdx, [1])], {}, { name: 'mask/causal' });
    const padding = g.unsqueeze(g.cast(mask, 'bool'), [1, 2], { name: 'mask/padding' });
    const allowed = g.op('And', [causal, padding], {}, { name: 'mask/allowed' });
    bias = toBias(allowed, 'mask/bias');
    // Sliding window (Mistral, Qwen2): query i also needs key j > i - window, counted in cache slots as transformers counts them.
    if (config.slidingWindow !== undefined && (config.slidingLayers ? config.slidingLayers.some(Boolean) : true)) {
      const lowest = g.sub(queryIdx, scalar(g, 'mask/window', 'int64', config.slidingWindow), { name: 'mask/window_start' });
      const inWindow = g.op('Greater', [g.unsqueeze(keyIdx, [0]), g.unsqueeze(lowest, [1])], {}, { name: 'mask/in_window' });
      slidingBias = toBias(g.op('And', [allowed, inWindow], {}, { name: 'mask/sliding_allowed' }), 'mask/sliding_bias');
    }
  }

  let hidden = x;
  const scale = 1 / Math.sqrt(hd);
  for (let i = 0; i < config.numHiddenLayers; i++) {
    const p = `model.layers.${i}`;
    const normed = rmsNorm(hidden, `${p}.input_layernorm.weight`);
    // [b, s, heads*hd] -> [b, heads, s, hd]
    const heads = (v: Value, n: number): Value => g.transpose(g.reshape(v, [0, 0, n, hd]), [0, 2, 1, 3]);
    const qkvBias = config.qkvBias === true;
    const q = rope(heads(linear(normed, `${p}.self_attn.q_proj.weight`, qkvBias), nh), `${p}/rope_q`);
    const k = rope(heads(linear(normed, `${p}.self_attn.k_proj.weight`, qkvBias), kvh), `${p}/rope_k`);
    const v = heads(linear(normed, `${p}.self_attn.v_proj.weight`, qkvBias), kvh);
    // Grouped-query attention without copying keys: query head kv*groups + j uses key/value head kv.
    const q5 = g.reshape(q, [0, kvh, groups, -1, hd], { name: `${p}/q_groups` });
    const attend = (keys: Value, bias: Value, name: string): Value =>
      g.add(g.mul(g.matMul(q5, g.transpose(g.unsqueeze(keys, [2]), [0, 1, 2, 4, 3])), scale), bias, { name });
    let ctx: Value;
    if (slotBias) {
      g.output(k, SLOT_CACHE_NAMES.appendedKey(i));
      g.output(v, SLOT_CACHE_NAMES.appendedValue(i));
      // The query heads sharing a key head are rows of one product, [b, kvh, groups * seq, hd] x [b, kvh, hd, keys]:
      // one small GEMM per (row, key head) rather than one per (row, query head), which is what a batch pays for.
      const qRows = g.reshape(q, [0, kvh, -1, hd], { name: `${p}/q_rows` });
      const scoresOf = (keys: Value, bias: Value, name: string): Value => g.add(g.mul(g.matMul(qRows, g.transpose(keys, [0, 1, 3, 2])), scale), bias, { name });
      // One softmax over [slots | new keys]; the weights are split again for the two value sets.
      const scores = g.concat([scoresOf(past[i][0], slotBias.past, `${p}/slot_scores`), scoresOf(k, slotBias.fresh, `${p}/new_scores`)], -1, {
        name: `${p}/scores`,
      });
      const probs = g.softmax(scores, { axis: -1 });
      const { start, capacity, end, lastAxis } = slotBias;
      const slotProbs = g.op('Slice', [probs, start, capacity, lastAxis], {}, { name: `${p}/slot_probs` });
      const newProbs = g.op('Slice', [probs, capacity, end, lastAxis], {}, { name: `${p}/new_probs` });
      ctx = g.add(g.matMul(slotProbs, past[i][1]), g.matMul(newProbs, v), { name: `${p}/context` });
    } else {
      const keys = g.concat([past[i][0], k], 2, { output: N.presentKey(i) });
      const values = g.concat([past[i][1], v], 2, { output: N.presentValue(i) });
      g.output(keys);
      g.output(values);
      const sliding = slidingBias !== undefined && (config.slidingLayers?.[i] ?? true);
      const scores = attend(keys, (sliding ? slidingBias : bias) as Value, `${p}/scores`);
      ctx = g.matMul(g.softmax(scores, { axis: -1 }), g.unsqueeze(values, [2]), { name: `${p}/context` });
    }
    const merged = g.reshape(g.transpose(g.reshape(ctx, [0, nh, -1, hd]), [0, 2, 1, 3]), [0, 0, nh * hd], { name: `${p}/merge_heads` });
    hidden = g.add(hidden, linear(merged, `${p}.self_attn.o_proj.weight`, config.oProjBias === true), { name: `${p}/attn_residual` });
    const n2 = rmsNorm(hidden, `${p}.post_attention_layernorm.weight`);
    const mlpBias = config.mlpBias === true;
    const gate = linear(n2, `${p}.mlp.gate_proj.weight`, mlpBias);
    const silu = g.mul(gate, g.sigmoid(gate), { name: `${p}/silu` });
    const up = linear(n2, `${p}.mlp.up_proj.weight`, mlpBias);
    hidden = g.add(hidden, linear(g.mul(silu, up), `${p}.mlp.down_proj.weight`, mlpBias), { name: `${p}/mlp_residual` });
  }
  let final = rmsNorm(hidden, 'model.norm.weight');
  if (slotBias) {
    // Only the last logits_to_keep positions go through the head (a prompt's pass needs the last one).
    const keep = g.input(SLOT_CACHE_NAMES.logitsToKeep, 'int64', [1]);
    final = g.op('Slice', [final, g.neg(keep), slotBias.end, g.initializer('logits/seq_axis', createTensor('int64', [1], [1n]))], {}, { name: 'logits/keep' });
    // With weights as inputs the head unflattens to [batch, kept positions], not the sequence's [batch, seq].
    if (asInputs) lead = g.slice(g.shape(final), { starts: [0], ends: [2], axes: [0], name: 'logits/batch_kept' });
  }
  const head = config.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
  g.output(linear(final, head), N.logits);
  return g.toModel();
}

/** Graph of the token embedding: `input_ids` [batch, seq] -> `inputs_embeds` [batch, seq, hidden]; with `{ weights: 'inputs' }` the table is an input. */
export function buildEmbedTokensModel(config: LlamaConfig, embedding: Tensor<'float32'> | undefined, options: LlamaGraphOptions = {}): OnnxModel {
  if (options.weights === 'inputs') {
    const g = createGraph({ name: 'llama-embed-tokens', opset: 20 });
    const ids = g.input(N.inputIds, 'int64', ['batch_size', 'sequence_length']);
    const table = g.input('model.embed_tokens.weight', 'float32', [config.vocabSize, config.hiddenSize]);
    g.output(g.gather(table, ids, { axis: 0 }), N.inputsEmbeds);
    return g.toModel();
  }
  if (!embedding) {
    throw new CompatibilityError('buildEmbedTokensModel needs the embedding table unless weights are inputs', {
      details: { field: 'model.embed_tokens.weight' },
    });
  }
  if (embedding.dims[0] !== config.vocabSize || embedding.dims[1] !== config.hiddenSize) {
    throw new CompatibilityError(`embedding [${embedding.dims.join(', ')}] does not fit vocabSize ${config.vocabSize} x hiddenSize ${config.hiddenSize}`, {
      details: { field: 'model.embed_tokens.weight' },
    });
  }
  const g = createGraph({ name: 'llama-embed-tokens', opset: 20 });
  const ids = g.input(N.inputIds, 'int64', ['batch_size', 'sequence_length']);
  const table = g.initializer('model.embed_tokens.weight', embedding);
  g.output(g.gather(table, ids, { axis: 0 }), N.inputsEmbeds);
  return g.toModel();
}
