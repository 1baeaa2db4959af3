/**
 * Training graphs for a composed vision-language model, built by graph surgery on the parts' own
 * forward graphs (no architecture is rewritten): image features -> connector -> spliced into the
 * token embeddings at the image spans -> decoder over the full sequence (zero-length KV past) ->
 * LM head only at trained positions -> masked mean cross-entropy. Per tensor: frozen (an
 * initializer), trained (promoted to a fed input) or LoRA (`+ scale * (x A^T) B^T` beside the
 * matched MatMul, A and B fed). Then @vlit/graph's reverse-mode autodiff gives the gradient model.
 */
import { CompatibilityError, InvalidArgumentError, NotFoundError, UnsupportedError, ValidationError, createRng, createTensor, type Tensor } from '@vlit/core';
import {
  addMaskedCrossEntropy,
  buildGradientModel,
  cloneModel,
  defaultOpset,
  editModel,
  inferGraphTypes,
  makeValueInfo,
  onnx,
  promoteInitializers,
  pruneModel,
  protoToTensor,
  renameGraph,
  tensorToProto,
  typeInfoFromValueInfo,
  type AttributeProto,
  type Dim,
  type GraphProto,
  type NodeProto,
  type OnnxModel,
  type TensorProto,
  type TypeInfo,
} from '@vlit/graph';
import { initLoraModule } from '../lora/adapter.js';
import { recipeStageSchema, resolveTrainables, type LoraTarget, type RecipeStage, type RecipeStageInput } from '../recipe.js';
import { llavaTensorNaming, type TensorNaming, type TrainingPart } from './naming.js';

/** Names of the training graph's fed inputs and outputs. */
export const TRAINING_IO = {
  /** [batch, seq] int64 token ids (image positions hold any valid id; they are replaced by features). */
  inputIds: 'input_ids',
  /** [images, tokens, featureDim] float32: every image of the batch, in row order then image order. */
  imageFeatures: 'image_features',
  /** [images, channels, height, width] float32: the images, when the encoder is part of the graph. */
  pixelValues: 'pixel_values',
  /** [batch * seq] int64: row of concat(text embeddings, projected image tokens) for each position. */
  spliceIndex: 'splice_index',
  /** [batch, seq] int64, 1 on real tokens (right padding). */
  attentionMask: 'attention_mask',
  /** [batch, seq] int64. */
  positionIds: 'position_ids',
  /** [trained] int64: flat positions b * seq + t whose next token is trained. */
  trainedPositions: 'trained_positions',
  /** [trained] int64: the token each trained position must predict. */
  targets: 'targets',
  /** [1] int64 in [0, 2^31): seed of the LoRA dropout masks of one micro-batch (graphs with LoRA dropout only). */
  loraDropoutSeed: 'lora_dropout_seed',
  /** [1] float32: 1 applies LoRA dropout (training), 0 turns it off (evaluation). */
  loraDropoutOn: 'lora_dropout_on',
  /** Scalar float32 output: mean cross-entropy over the trained positions. */
  loss: 'loss',
  /** [trained, vocab] float32 output of the forward model: logits at the trained positions. */
  trainedLogits: 'trained_logits',
} as const;

/** Input / output names of the parts (defaults: Vlit's connector graphs and the Optimum decoder layout). */
export interface TrainingPartNames {
  encoderInput: string;
  /** The encoder output the connector reads (e.g. `hidden_states.<L-1>`, LLaVA's penultimate layer). */
  encoderOutput: string;
  connectorInput: string;
  connectorOutput: string;
  embedInput: string;
  embedOutput: string;
  decoderEmbeds: string;
  decoderAttentionMask: string;
  decoderPositionIds: string;
  decoderLogits: string;
  /** Decoder inputs fed with a zero-length cache in training (KV cache inputs). */
  decoderPast: RegExp;
}

const DEFAULT_PART_NAMES: TrainingPartNames = {
  encoderInput: 'pixel_values',
  encoderOutput: 'last_hidden_state',
  connectorInput: 'features',
  connectorOutput: 'projected',
  embedInput: 'input_ids',
  embedOutput: 'inputs_embeds',
  decoderEmbeds: 'inputs_embeds',
  decoderAttentionMask: 'attention_mask',
  decoderPositionIds: 'position_ids',
  decoderLogits: 'logits',
  decoderPast: /^past_key_values\./,
};

/** The forward graphs a training graph is assembled from (any builder: Vlit's, a checkpoint loader's, an export). */
export interface TrainingModelParts {
  /**
   * Optional vision encoder (`pixel_values` -> `last_hidden_state` or another output named in
   * `names.encoderOutput`): the graph then takes pixels; without it, it takes features (encoder cache).
   */
  encoder?: OnnxModel;
  /** Drop the encoder output's first token (CLS) before the connector, as LLaVA's `default` feature select. Default false. */
  dropFirstEncoderToken?: boolean;
  /** Projector: `features` [images, tokens, inDim] -> `projected` [images, tokens', hidden]. */
  connector: OnnxModel;
  /** Token embedding: `input_ids` -> `inputs_embeds`. */
  embedTokens: OnnxModel;
  /** Decoder: `inputs_embeds`, `attention_mask`, `position_ids`, `past_key_values.*` -> `logits`. */
  decoder: OnnxModel;
  /** Input / output names when they differ from the defaults. */
  names?: Partial<TrainingPartNames>;
  /** Model tensor names of the parts' initializers (default: transformers' LLaVA names, llavaTensorNaming). */
  naming?: TensorNaming;
}

/** Initial A/B of one LoRA module (A [r, in], B [out, r]), e.g. from a PEFT adapter. */
export interface LoraInitialWeights {
  readonly a: Tensor<'float32'>;
  readonly b: Tensor<'float32'>;
}

/** Options of buildTrainingGraph. */
export interface BuildTrainingGraphOptions {
  /** The recipe stage whose `trainables` decide what is frozen, trained or LoRA. */
  stage: RecipeStage | RecipeStageInput;
  /** Index of the stage in its recipe (error fields read `stages.<i>.trainables...`). */
  stageIndex?: number;
  /** Initial LoRA weights by module path; other modules start as peft does (A uniform, B zero). */
  loraWeights?: ReadonlyMap<string, LoraInitialWeights> | Readonly<Record<string, LoraInitialWeights>>;
  /** Seed of the LoRA initialisation (default 0). */
  seed?: number | string;
}

/** One tensor the optimiser updates. */
export interface TrainingParameter {
  /** Input name in the training graph: the model tensor name, or `<module>.lora_A.weight` / `.lora_B.weight`. */
  readonly name: string;
  readonly kind: 'trained' | 'lora-a' | 'lora-b';
  /** The LoRA module (for lora-a / lora-b). */
  readonly module?: string;
  /** Initial value. */
  readonly initial: Tensor<'float32'>;
}

/** A LoRA adapter placed in the graph. */
export interface TrainingLoraModule extends LoraTarget {
  /** Input names of A and B. */
  readonly aName: string;
  readonly bName: string;
  readonly inFeatures: number;
  readonly outFeatures: number;
  /** MatMul nodes it was placed beside. */
  readonly nodes: readonly string[];
}

/** The training graph of a composed model. */
export interface TrainingGraph {
  /** Forward model: outputs `loss` and `trained_logits`; trained tensors and LoRA A/B are inputs. */
  readonly forward: OnnxModel;
  /** Gradient model: outputs `loss` and `grad.<parameter>` for every parameter. */
  readonly gradient: OnnxModel;
  /** What the optimiser updates, in a fixed order. */
  readonly parameters: readonly TrainingParameter[];
  /** Model tensors that stay initializers. */
  readonly frozen: readonly string[];
  readonly lora: readonly TrainingLoraModule[];
  /** Every model tensor name of the composed graph (what recipes match against). */
  readonly tensorNames: readonly string[];
  /** The decoder's hidden size. */
  readonly hiddenSize: number;
  /** Feature width the connector takes. */
  readonly featureDim: number;
  /** The fed image input: `image_features` (features) or `pixel_values` (encoder in the graph). */
  readonly imageInput: string;
  /** Dims of one image of that input ([tokens, featureDim] or [channels, height, width]; symbolic dims as names). */
  readonly imageDims: readonly Dim[];
  /** Projected tokens per image for an image of `inputTokens` feature tokens. */
  projectedTokens(inputTokens: number): number;
  /** True when some LoRA module has dropout: the graphs then take `lora_dropout_seed` and `lora_dropout_on`. */
  readonly dropout: boolean;
}

const AT = onnx.AttributeProto.AttributeType;
const attrInt = (name: string, i: number): AttributeProto => onnx.AttributeProto.create({ name, type: AT.INT, i }) as unknown as AttributeProto;
const attrInts = (name: string, ints: number[]): AttributeProto => onnx.AttributeProto.create({ name, type: AT.INTS, ints }) as unknown as AttributeProto;

function node(opType: string, inputs: string[], outputs: string[], name: string, attribute: AttributeProto[] = []): NodeProto {
  return onnx.NodeProto.create({ opType, input: inputs, output: outputs, name, attribute }) as unknown as NodeProto;
}

function int64Proto(name: string, values: number[]): TensorProto {
  return tensorToProto(
    name,
    createTensor(
      'int64',
      [values.length],
      values.map((v) => BigInt(v)),
    ),
  );
}

function graphOf(model: OnnxModel, part: TrainingPart): GraphProto {
  if (!model?.graph) throw new InvalidArgumentError(`the ${part} model has no graph`, { details: { field: part } });
  return cloneModel(model).graph as GraphProto;
}

interface RenamedPart {
  graph: GraphProto;
  /** Model tensor name -> the part's own name. */
  weights: Map<string, string>;
  /** The part's graph inputs (not initializers) by original name, with their declared types. */
  inputs: Map<string, TypeInfo | undefined>;
  outputs: Map<string, TypeInfo | undefined>;
  opset: number;
}

/** ONNX element types a trained tensor can have (float, float16, double, bfloat16). */
const FLOAT_TYPES = new Set([1, 10, 11, 16]);
/** Names @vlit/graph's builder gives its constants (`<hint>_const_<n>`, e.g. a shape vector or an attention scale). */
const BUILDER_CONSTANT = /(^|_)const_\d+$/;

/** Clone a part and rename its values into the training graph's name space. */
function renamePart(model: OnnxModel, part: TrainingPart, naming: TensorNaming, inputMap: ReadonlyMap<string, string>): RenamedPart {
  const graph = graphOf(model, part);
  const types = inferGraphTypes(graph, defaultOpset(model));
  const inits = new Set(graph.initializer.map((t) => t.name));
  const map = new Map<string, string>();
  const weights = new Map<string, string>();
  for (const t of graph.initializer) {
    // Shape vectors, indices and graph-builder constants are never model tensors, whatever the naming says.
    const mapped = FLOAT_TYPES.has(t.dataType ?? 0) && !BUILDER_CONSTANT.test(t.name) ? naming(part, t.name) : null;
    map.set(t.name, mapped ?? `${part}/${t.name}`);
    if (mapped !== null) weights.set(mapped, t.name);
  }
  const inputs = new Map<string, TypeInfo | undefined>();
  for (const v of graph.input) {
    if (inits.has(v.name)) continue;
    inputs.set(v.name, typeInfoFromValueInfo(v));
    map.set(v.name, inputMap.get(v.name) ?? `${part}/${v.name}`);
  }
  const outputs = new Map<string, TypeInfo | undefined>();
  for (const v of graph.output) outputs.set(v.name, types.get(v.name) ?? typeInfoFromValueInfo(v));
  // Old exporters list initializers among the inputs; the merged graph declares them once, as initializers.
  graph.input = graph.input.filter((v) => !inits.has(v.name));
  for (const n of graph.node) if (n.name) n.name = `${part}/${n.name}`;
  renameGraph(graph, (name) => map.get(name) ?? `${part}/${name}`);
  return { graph, weights, inputs, outputs, opset: defaultOpset(model) };
}

function dimsText(dims: readonly Dim[] | null | undefined): string {
  return dims ? `[${dims.join(', ')}]` : '[?]';
}

/** Nodes whose outputs depend on initializers only (weights, transposed weights, shape constants). */
function constantValues(graph: GraphProto): Set<string> {
  const constants = new Set(graph.initializer.map((t) => t.name));
  for (const n of graph.node) {
    if (n.input.every((x) => !x || constants.has(x))) for (const o of n.output) if (o) constants.add(o);
  }
  return constants;
}

const POSITIONWISE_BINARY = new Set(['Add', 'Sub', 'Mul', 'Div']);

/**
 * The LM head: the chain of position-wise nodes (MatMul by a constant matrix, elementwise ops with
 * constant vectors, Identity, Cast) that ends at the logits. Gathering its input's rows at the trained
 * positions gives the same logits there while the [tokens x vocab] product stays small.
 */
function findHeadChain(graph: GraphProto, logits: string, types: Map<string, TypeInfo>): { hidden: string; first: NodeProto; chain: NodeProto[] } {
  const producer = new Map<string, NodeProto>();
  for (const n of graph.node) for (const o of n.output) if (o) producer.set(o, n);
  const constants = constantValues(graph);
  const chain: NodeProto[] = [];
  let cur = logits;
  for (;;) {
    const n = producer.get(cur);
    if (!n || n.output.length !== 1) break;
    const live = n.input.map((x, i) => [x, i] as const).filter(([x]) => x && !constants.has(x));
    if (live.length !== 1) break;
    const [x, i] = live[0];
    const rankOf = (name: string): number => types.get(name)?.dims?.length ?? Infinity;
    let ok = false;
    if (n.opType === 'MatMul') ok = i === 0 && rankOf(n.input[1]) === 2;
    else if (POSITIONWISE_BINARY.has(n.opType)) ok = n.input.every((y, j) => j === i || rankOf(y) <= 1);
    else if (n.opType === 'Identity' || n.opType === 'Cast') ok = true;
    if (!ok) break;
    chain.push(n);
    cur = x;
  }
  if (!chain.some((n) => n.opType === 'MatMul')) {
    throw new UnsupportedError(`no LM head (MatMul by a constant [hidden, vocab] matrix) found before the decoder output '${logits}'`, {
      details: { field: 'decoder.logits' },
    });
  }
  return { hidden: cur, first: chain[chain.length - 1], chain };
}

function stageOf(stage: RecipeStage | RecipeStageInput, stageIndex?: number): RecipeStage {
  const parsed = recipeStageSchema.safeParse(stage);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = `${stageIndex !== undefined ? `stages.${stageIndex}.` : ''}${issue.path.map(String).join('.')}`;
    throw new ValidationError(`invalid stage: ${field}: ${issue.message}`, { details: { field, issues: parsed.error.issues } });
  }
  return parsed.data;
}

function loraInit(source: BuildTrainingGraphOptions['loraWeights'], module: string): LoraInitialWeights | undefined {
  if (!source) return undefined;
  if (source instanceof Map) return source.get(module);
  const rec = source as Readonly<Record<string, LoraInitialWeights>>;
  return Object.prototype.hasOwnProperty.call(rec, module) ? rec[module] : undefined;
}

/**
 * Assemble the training graph of connector + token embedding + decoder and differentiate it. The
 * stage's trainables pick frozen, trained and LoRA tensors by model tensor name; a pattern or LoRA
 * target that matches nothing is a ValidationError naming the field (via resolveTrainables).
 */
export function buildTrainingGraph(parts: TrainingModelParts, options: BuildTrainingGraphOptions): TrainingGraph {
  const names = { ...DEFAULT_PART_NAMES, ...parts.names };
  const naming = parts.naming ?? llavaTensorNaming;
  const stage = stageOf(options.stage, options.stageIndex);

  const embed = renamePart(parts.embedTokens, 'embedTokens', naming, new Map([[names.embedInput, TRAINING_IO.inputIds]]));
  const encoder = parts.encoder ? renamePart(parts.encoder, 'encoder', naming, new Map([[names.encoderInput, TRAINING_IO.pixelValues]])) : undefined;
  const connector = renamePart(
    parts.connector,
    'connector',
    naming,
    new Map([[names.connectorInput, encoder ? 'train/image_features' : TRAINING_IO.imageFeatures]]),
  );
  const decoderInputs = new Map<string, string>([
    [names.decoderEmbeds, 'train/inputs_embeds'],
    [names.decoderAttentionMask, TRAINING_IO.attentionMask],
    [names.decoderPositionIds, TRAINING_IO.positionIds],
  ]);
  const decoder = renamePart(parts.decoder, 'decoder', naming, decoderInputs);

  for (const [part, p] of [['embedTokens', embed], ['connector', connector], ...(encoder ? [['encoder', encoder] as const] : [])] as const) {
    if (p.opset !== decoder.opset) {
      throw new CompatibilityError(`the ${part} graph uses opset ${p.opset}, the decoder ${decoder.opset}; one training graph cannot mix them`, {
        details: { field: `${part}.opset_import`, left: `${part}: ${p.opset}`, right: `decoder: ${decoder.opset}` },
      });
    }
  }
  const need = (p: RenamedPart, part: TrainingPart, kind: 'input' | 'output', name: string): TypeInfo => {
    const t = (kind === 'input' ? p.inputs : p.outputs).get(name);
    const has = (kind === 'input' ? p.inputs : p.outputs).has(name);
    if (!has) {
      throw new NotFoundError(`the ${part} graph has no ${kind} '${name}'`, {
        details: { field: `${part}.${kind}s`, name, available: [...(kind === 'input' ? p.inputs : p.outputs).keys()] },
      });
    }
    if (!t || !t.dims) throw new UnsupportedError(`the ${part} ${kind} '${name}' has no known shape`, { details: { field: `${part}.${name}` } });
    return t;
  };
  const embedsIn = need(decoder, 'decoder', 'input', names.decoderEmbeds);
  need(decoder, 'decoder', 'input', names.decoderAttentionMask);
  need(decoder, 'decoder', 'output', names.decoderLogits);
  const featuresIn = need(connector, 'connector', 'input', names.connectorInput);
  const projectedOut = need(connector, 'connector', 'output', names.connectorOutput);
  need(embed, 'embedTokens', 'output', names.embedOutput);
  const hidden = embedsIn.dims?.[2];
  if (embedsIn.dims?.length !== 3 || typeof hidden !== 'number') {
    throw new UnsupportedError(
      `the decoder input '${names.decoderEmbeds}' must be [batch, seq, hidden] with a known hidden size, got ${dimsText(embedsIn.dims)}`,
      {
        details: { field: `decoder.${names.decoderEmbeds}` },
      },
    );
  }
  const pDims = projectedOut.dims as Dim[];
  if (pDims.length !== 3 || pDims[2] !== hidden) {
    throw new CompatibilityError(`the connector projects to ${dimsText(pDims)}, the decoder takes embeddings of width ${hidden}`, {
      details: { field: 'connector.outputDim', left: `connector ${dimsText(pDims)}`, right: `decoder hidden ${hidden}` },
    });
  }
  const fDims = featuresIn.dims as Dim[];
  const extraInitsEarly: TensorProto[] = [];
  const featureDim = fDims[2];
  if (fDims.length !== 3 || typeof featureDim !== 'number') {
    throw new UnsupportedError(`the connector input must be [images, tokens, dim] with a known dim, got ${dimsText(fDims)}`, {
      details: { field: 'connector.input' },
    });
  }
  let tokensIn = fDims[1];
  // The encoder in front: its chosen output (first token dropped if asked) becomes the connector's input.
  const encoderNodes: NodeProto[] = [];
  let imageDims: Dim[] = [typeof tokensIn === 'number' ? tokensIn : 'image_tokens', featureDim];
  let encoderTokens: number | undefined;
  if (encoder) {
    const pix = need(encoder, 'encoder', 'input', names.encoderInput);
    const eo = need(encoder, 'encoder', 'output', names.encoderOutput);
    const eDims = eo.dims as Dim[];
    if (eDims.length !== 3 || typeof eDims[1] !== 'number' || eDims[2] !== featureDim) {
      throw new CompatibilityError(`the encoder output '${names.encoderOutput}' is ${dimsText(eDims)}, the connector takes [images, tokens, ${featureDim}]`, {
        details: { field: 'encoder.output', left: `encoder ${dimsText(eDims)}`, right: `connector dim ${featureDim}` },
      });
    }
    encoderTokens = (eDims[1] as number) - (parts.dropFirstEncoderToken ? 1 : 0);
    tokensIn = encoderTokens;
    imageDims = (pix.dims as Dim[]).slice(1);
    const out = `encoder/${names.encoderOutput}`;
    if (parts.dropFirstEncoderToken) {
      extraInitsEarly.push(int64Proto('train/cls_starts', [1]), int64Proto('train/cls_ends', [Number.MAX_SAFE_INTEGER]), int64Proto('train/cls_axes', [1]));
      encoderNodes.push(node('Slice', [out, 'train/cls_starts', 'train/cls_ends', 'train/cls_axes'], ['train/image_features'], 'train/drop_cls'));
    } else encoderNodes.push(node('Identity', [out], ['train/image_features'], 'train/image_features'));
  }
  const tokensOut = pDims[1];
  const projectedTokens = (inputTokens: number): number => {
    if (typeof tokensOut === 'number') return tokensOut;
    if (encoderTokens !== undefined && tokensOut !== null && tokensOut === fDims[1]) return encoderTokens;
    if (tokensOut !== null && tokensOut === tokensIn) return inputTokens;
    throw new UnsupportedError(`cannot tell how many tokens the connector makes of ${inputTokens} (its output is ${dimsText(pDims)})`, {
      details: { field: 'connector.output' },
    });
  };

  // Decoder inputs a full-sequence forward does not use: the KV cache gets zero-length tensors.
  const extraNodes: NodeProto[] = [];
  const extraInits: TensorProto[] = [int64Proto('train/flat_shape', [-1, hidden]), ...extraInitsEarly];
  const decoderGraph = decoder.graph;
  let pastCount = 0;
  for (const [name, t] of decoder.inputs) {
    if (decoderInputs.has(name)) continue;
    if (!names.decoderPast.test(name)) {
      throw new UnsupportedError(`the decoder input '${name}' has no training feed (known: embeddings, attention mask, positions, KV cache)`, {
        details: { field: `decoder.${name}` },
      });
    }
    const d = t?.dims;
    if (!d || d.length !== 4 || typeof d[1] !== 'number' || typeof d[3] !== 'number') {
      throw new UnsupportedError(`the cache input '${name}' must be [batch, heads, past, headDim] with known heads and headDim, got ${dimsText(d)}`, {
        details: { field: `decoder.${name}` },
      });
    }
    if (pastCount === 0)
      extraNodes.push(node('Shape', [TRAINING_IO.inputIds], ['train/batch_dim'], 'train/batch_dim', [attrInt('start', 0), attrInt('end', 1)]));
    const k = pastCount++;
    extraInits.push(int64Proto(`train/past_dims_${k}`, [d[1], 0, d[3]]));
    extraNodes.push(node('Concat', ['train/batch_dim', `train/past_dims_${k}`], [`train/past_shape_${k}`], `train/past_shape_${k}`, [attrInt('axis', 0)]));
    extraNodes.push(node('ConstantOfShape', [`train/past_shape_${k}`], [`decoder/${name}`], `train/past_${k}`));
  }
  if (decoder.inputs.has(names.decoderPositionIds) === false) {
    // Decoders without a position input derive positions themselves; the feed is then unused.
    decoderInputs.delete(names.decoderPositionIds);
  }

  // Splice: row i of the flat embeddings is row splice_index[i] of concat(text embeddings, image tokens).
  const embedsOut = `embedTokens/${names.embedOutput}`;
  const projected = `connector/${names.connectorOutput}`;
  const splice: NodeProto[] = [
    node('Reshape', [embedsOut, 'train/flat_shape'], ['train/text_flat'], 'train/text_flat'),
    node('Reshape', [projected, 'train/flat_shape'], ['train/image_flat'], 'train/image_flat'),
    node('Concat', ['train/text_flat', 'train/image_flat'], ['train/embed_pool'], 'train/embed_pool', [attrInt('axis', 0)]),
    node('Gather', ['train/embed_pool', TRAINING_IO.spliceIndex], ['train/spliced_flat'], 'train/spliced_flat', [attrInt('axis', 0)]),
    node('Shape', [embedsOut], ['train/embeds_shape'], 'train/embeds_shape'),
    node('Reshape', ['train/spliced_flat', 'train/embeds_shape'], ['train/inputs_embeds'], 'train/inputs_embeds'),
  ];

  // LM head only at trained positions.
  const decoderTypes = inferGraphTypes(graphOf(parts.decoder, 'decoder'), decoder.opset);
  const renamedTypes = new Map<string, TypeInfo>();
  {
    // Types by renamed name, for the head search (shape inference on the renamed graph needs its inputs typed).
    const probe = cloneModel(parts.decoder).graph as GraphProto;
    const probeMap = new Map<string, string>();
    for (const n of probe.node) for (const o of n.output) if (o) probeMap.set(o, `decoder/${o}`);
    for (const t of probe.initializer) probeMap.set(t.name, naming('decoder', t.name) ?? `decoder/${t.name}`);
    for (const [orig, renamed] of probeMap) {
      const t = decoderTypes.get(orig);
      if (t) renamedTypes.set(renamed, t);
    }
  }
  const logitsName = `decoder/${names.decoderLogits}`;
  const head = findHeadChain(decoderGraph, logitsName, renamedTypes);
  const hType = renamedTypes.get(head.hidden);
  if (!hType?.dims || hType.dims.length !== 3 || hType.dims[2] !== hidden) {
    throw new UnsupportedError(`the LM head's input '${head.hidden}' must be [batch, seq, ${hidden}], got ${dimsText(hType?.dims)}`, {
      details: { field: 'decoder.logits' },
    });
  }
  const firstHead = head.first;
  firstHead.input = firstHead.input.map((x) => (x === head.hidden ? 'train/trained_hidden' : x));
  const headAt = decoderGraph.node.indexOf(firstHead);
  const decoderNodes = [
    ...decoderGraph.node.slice(0, headAt),
    node('Reshape', [head.hidden, 'train/flat_shape'], ['train/hidden_flat'], 'train/hidden_flat'),
    node('Gather', ['train/hidden_flat', TRAINING_IO.trainedPositions], ['train/trained_hidden'], 'train/trained_hidden', [attrInt('axis', 0)]),
    ...decoderGraph.node.slice(headAt),
  ];

  // Initializers, once per model tensor name (tied embeddings are one tensor).
  const initializers = new Map<string, TensorProto>();
  const partOf = new Map<string, TrainingPart>();
  const all = [['embedTokens', embed], ['connector', connector], ['decoder', decoder], ...(encoder ? [['encoder', encoder] as const] : [])] as const;
  for (const [part, p] of all) {
    for (const t of p.graph.initializer) {
      const prev = initializers.get(t.name);
      if (prev) {
        const a = (prev.dims ?? []).map(Number);
        const b = (t.dims ?? []).map(Number);
        if (a.length !== b.length || a.some((v, i) => v !== b[i]) || prev.dataType !== t.dataType) {
          throw new CompatibilityError(
            `tensor '${t.name}' is [${a.join(', ')}] in the ${partOf.get(t.name)} graph but [${b.join(', ')}] in the ${part} graph`,
            {
              details: { field: t.name, left: `${partOf.get(t.name)} [${a.join(', ')}]`, right: `${part} [${b.join(', ')}]` },
            },
          );
        }
        continue;
      }
      initializers.set(t.name, t);
      partOf.set(t.name, part);
    }
  }
  for (const t of extraInits) initializers.set(t.name, t);
  const tensorNames = [...new Set([...(encoder?.weights.keys() ?? []), ...embed.weights.keys(), ...connector.weights.keys(), ...decoder.weights.keys()])];

  const graph = onnx.GraphProto.create({
    name: 'vlit-training',
    input: [
      makeValueInfo(TRAINING_IO.inputIds, 'int64', ['batch', 'sequence']),
      makeValueInfo(encoder ? TRAINING_IO.pixelValues : TRAINING_IO.imageFeatures, 'float32', ['images', ...imageDims]),
      makeValueInfo(TRAINING_IO.spliceIndex, 'int64', ['positions']),
      makeValueInfo(TRAINING_IO.attentionMask, 'int64', ['batch', 'sequence']),
      ...(decoderInputs.has(names.decoderPositionIds) ? [makeValueInfo(TRAINING_IO.positionIds, 'int64', ['batch', 'sequence'])] : []),
      makeValueInfo(TRAINING_IO.trainedPositions, 'int64', ['trained']),
      makeValueInfo(TRAINING_IO.targets, 'int64', ['trained']),
    ],
    output: [],
    initializer: [...initializers.values()],
    node: [...embed.graph.node, ...(encoder?.graph.node ?? []), ...encoderNodes, ...connector.graph.node, ...splice, ...extraNodes, ...decoderNodes],
    valueInfo: [],
  }) as unknown as GraphProto;
  const opsets = new Map<string, number>();
  for (const m of [parts.embedTokens, parts.connector, parts.decoder, ...(parts.encoder ? [parts.encoder] : [])]) {
    for (const o of m.opsetImport) {
      const d = o.domain === 'ai.onnx' ? '' : (o.domain ?? '');
      const v = typeof o.version === 'number' ? o.version : Number(String(o.version));
      opsets.set(d, Math.max(opsets.get(d) ?? 0, v));
    }
  }
  let model = onnx.ModelProto.create({
    irVersion: parts.decoder.irVersion,
    producerName: 'vlit-trainer',
    opsetImport: [...opsets].map(([domain, version]) => ({ domain, version })),
    graph,
  }) as unknown as OnnxModel;

  // What trains.
  const resolved = resolveTrainables(stage, tensorNames, { stageIndex: options.stageIndex });
  const rng = createRng(options.seed ?? 0);
  const lora = insertLora(model, resolved.lora, rng, options.loraWeights, decoder.opset);
  model = lora.model;

  // Loss and trained-position logits.
  const ed = editModel(model);
  ed.output(logitsName, TRAINING_IO.trainedLogits);
  addMaskedCrossEntropy(ed, logitsName, TRAINING_IO.targets, { shift: false, name: TRAINING_IO.loss });
  ed.output(TRAINING_IO.loss);
  const promoted = promoteInitializers(ed.toModel(), resolved.trained);

  const parameters: TrainingParameter[] = [];
  for (const name of resolved.trained) {
    const t = promoted.values[name];
    if (t.dtype !== 'float32') {
      throw new UnsupportedError(`trained tensor '${name}' is ${t.dtype}; the local engine trains float32 tensors`, { details: { field: name } });
    }
    parameters.push({ name, kind: 'trained', initial: t as Tensor<'float32'> });
  }
  for (const m of lora.modules) {
    parameters.push({ name: m.aName, kind: 'lora-a', module: m.module, initial: lora.initial.get(m.aName) as Tensor<'float32'> });
    parameters.push({ name: m.bName, kind: 'lora-b', module: m.module, initial: lora.initial.get(m.bName) as Tensor<'float32'> });
  }
  if (parameters.length === 0) {
    throw new ValidationError('the stage trains nothing: every tensor is frozen', {
      details: { field: `${options.stageIndex !== undefined ? `stages.${options.stageIndex}.` : ''}trainables` },
    });
  }
  const gradient = buildGradientModel(promoted.model, { loss: TRAINING_IO.loss, wrt: parameters.map((p) => p.name) });
  return {
    // Without the nodes the loss and logits do not need (an encoder's other outputs, the KV-cache outputs).
    forward: pruneModel(promoted.model),
    gradient,
    parameters,
    frozen: resolved.frozen,
    lora: lora.modules,
    tensorNames,
    hiddenSize: hidden,
    featureDim,
    imageInput: encoder ? TRAINING_IO.pixelValues : TRAINING_IO.imageFeatures,
    imageDims,
    projectedTokens,
    dropout: lora.modules.some((m) => m.dropout > 0),
  };
}

/**
 * Put `+ scale * (x A^T) B^T` beside every MatMul that multiplies by a LoRA target weight: either
 * `MatMul(x, Transpose(W))` with W in torch layout [out, in], or `MatMul(x, W)` with W stored [in, out].
 * The MatMul's output is renamed and the sum takes its old name, so every consumer reads the adapted value.
 */
function insertLora(
  model: OnnxModel,
  targets: readonly LoraTarget[],
  rng: ReturnType<typeof createRng>,
  given: BuildTrainingGraphOptions['loraWeights'],
  opset: number,
): { model: OnnxModel; modules: TrainingLoraModule[]; initial: Map<string, Tensor<'float32'>> } {
  const out = cloneModel(model);
  const g = out.graph as GraphProto;
  const types = targets.some((t) => t.dropout > 0) ? inferGraphTypes(g, opset) : new Map<string, TypeInfo>();
  let dropoutSites = 0;
  const dropoutSetup = (): void => {
    if (dropoutSites++ > 0) return;
    g.input.push(makeValueInfo(TRAINING_IO.loraDropoutSeed, 'int64', [1]), makeValueInfo(TRAINING_IO.loraDropoutOn, 'float32', [1]));
    const i64 = (name: string, v: number) => g.initializer.push(tensorToProto(`lora/dropout/${name}`, createTensor('int64', [], [BigInt(v)])));
    i64('zero', 0);
    i64('one', 1);
    i64('mask31', 0x7fffffff);
    i64('golden', 0x2545f491);
    i64('m1', 0x5bd1e995);
    i64('m2', 0x1b873593);
    i64('m3', 0x3c6ef372);
    i64('shift15', 1 << 15);
    i64('shift13', 1 << 13);
    i64('shift16', 1 << 16);
    g.initializer.push(tensorToProto('lora/dropout/f_one', createTensor('float32', [], [1])));
    g.initializer.push(tensorToProto('lora/dropout/two31', createTensor('float32', [], [2 ** 31])));
  };
  const modules: TrainingLoraModule[] = [];
  const initial = new Map<string, Tensor<'float32'>>();
  if (targets.length === 0) return { model: out, modules, initial };
  const inits = new Map(g.initializer.map((t) => [t.name, t]));
  const consumers = new Map<string, NodeProto[]>();
  for (const n of g.node) for (const x of n.input) if (x) consumers.set(x, [...(consumers.get(x) ?? []), n]);
  const head: NodeProto[] = [];
  const after = new Map<NodeProto, NodeProto[]>();
  /**
   * PEFT's dropout on the LoRA input, x * mask with mask in {0, 1/(1-p)}, drawn in the graph from a
   * counter-based integer hash of (element index, fed seed, site): no random state to checkpoint (a
   * resumed run feeds the same seeds), and native and web runtimes draw the same masks.
   */
  const dropoutNodes = (x: string, s: string, p: number): NodeProto[] => {
    dropoutSetup();
    const site = dropoutSites;
    const c = (name: string) => `lora/dropout/${name}`;
    const v = (name: string) => `${s}/dropout/${name}`;
    g.initializer.push(tensorToProto(v('salt'), createTensor('int64', [], [BigInt((site * 0x9e3779b) % 0x7fffffff)])));
    g.initializer.push(tensorToProto(v('keep'), createTensor('float32', [], [1 - p])));
    g.initializer.push(tensorToProto(v('rescale'), createTensor('float32', [], [1 / (1 - p)])));
    const xType = types.get(x);
    if (xType?.dims) g.valueInfo.push(makeValueInfo(v('mask'), 'float32', xType.dims));
    const list: NodeProto[] = [
      node('Size', [x], [v('size')], v('size')),
      node('Range', [c('zero'), v('size'), c('one')], [v('index')], v('index')),
      node('Add', [TRAINING_IO.loraDropoutSeed, v('salt')], [v('seed')], v('seed')),
      node('Mul', [v('index'), c('golden')], [v('h0m')], v('h0m')),
      node('Add', [v('h0m'), v('seed')], [v('h0s')], v('h0s')),
      node('BitwiseAnd', [v('h0s'), c('mask31')], [v('h0')], v('h0')),
    ];
    let h = v('h0');
    for (const [r, [mul, shift]] of [
      ['m1', 'shift15'],
      ['m2', 'shift13'],
      ['m3', 'shift16'],
    ].entries()) {
      list.push(
        node('Mul', [h, c(mul)], [v(`h${r}mul`)], v(`h${r}mul`)),
        node('BitwiseAnd', [v(`h${r}mul`), c('mask31')], [v(`h${r}and`)], v(`h${r}and`)),
        node('Div', [v(`h${r}and`), c(shift)], [v(`h${r}shift`)], v(`h${r}shift`)),
        node('BitwiseXor', [v(`h${r}and`), v(`h${r}shift`)], [v(`h${r + 1}`)], v(`h${r + 1}`)),
      );
      h = v(`h${r + 1}`);
    }
    list.push(
      node('Cast', [h], [v('hf')], v('hf'), [attrInt('to', 1)]),
      node('Div', [v('hf'), c('two31')], [v('uniform')], v('uniform')),
      node('Less', [v('uniform'), v('keep')], [v('kept')], v('kept')),
      node('Cast', [v('kept')], [v('kept_f')], v('kept_f'), [attrInt('to', 1)]),
      node('Mul', [v('kept_f'), v('rescale')], [v('scaled')], v('scaled')),
      // on = 0 gives mask 1 (evaluation): 1 + on * (mask - 1).
      node('Sub', [v('scaled'), c('f_one')], [v('minus1')], v('minus1')),
      node('Mul', [v('minus1'), TRAINING_IO.loraDropoutOn], [v('gated')], v('gated')),
      node('Add', [v('gated'), c('f_one')], [v('flat')], v('flat')),
      node('Shape', [x], [v('shape')], v('shape')),
      node('Reshape', [v('flat'), v('shape')], [v('mask')], v('mask')),
      node('Mul', [x, v('mask')], [`${s}/x_dropped`], `${s}/x_dropped`),
    );
    return list;
  };
  for (const t of targets) {
    const w = inits.get(t.weight);
    if (!w) throw new NotFoundError(`LoRA target weight '${t.weight}' is not an initializer of the graph`, { details: { field: t.weight } });
    const dims = (w.dims ?? []).map(Number);
    if (dims.length !== 2)
      throw new UnsupportedError(`LoRA target '${t.weight}' is [${dims.join(', ')}]; only 2-D Linear weights are supported`, { details: { field: t.weight } });
    const sites: { mm: NodeProto; transposed: boolean }[] = [];
    for (const c of consumers.get(t.weight) ?? []) {
      if (c.opType === 'MatMul' && c.input[1] === t.weight) sites.push({ mm: c, transposed: false });
      else if (c.opType === 'Transpose') {
        const perm = c.attribute.find((a) => a.name === 'perm')?.ints?.map(Number);
        if (perm && !(perm[0] === 1 && perm[1] === 0)) continue;
        for (const m of consumers.get(c.output[0]) ?? []) if (m.opType === 'MatMul' && m.input[1] === c.output[0]) sites.push({ mm: m, transposed: true });
      }
    }
    if (sites.length === 0) {
      throw new UnsupportedError(`no MatMul multiplies by LoRA target '${t.weight}' (expected MatMul(x, Transpose(W)) or MatMul(x, W))`, {
        details: { field: t.weight },
      });
    }
    if (sites.some((s) => s.transposed !== sites[0].transposed)) {
      throw new UnsupportedError(`LoRA target '${t.weight}' is used both transposed and not`, { details: { field: t.weight } });
    }
    const [outF, inF] = sites[0].transposed ? dims : [dims[1], dims[0]];
    const aName = `${t.module}.lora_A.weight`;
    const bName = `${t.module}.lora_B.weight`;
    const init = loraInit(given, t.module) ?? initLoraModule(t.module, inF, outF, t.r, rng.fork(t.module));
    const check = (x: Tensor<'float32'>, want: number[], which: string) => {
      if (x.dtype !== 'float32' || x.dims.length !== 2 || x.dims[0] !== want[0] || x.dims[1] !== want[1]) {
        throw new CompatibilityError(`LoRA ${which} of '${t.module}' is [${x.dims.join(', ')}], the module needs [${want.join(', ')}]`, {
          details: { field: `${t.module}.lora_${which}.weight`, left: `given [${x.dims.join(', ')}]`, right: `needed [${want.join(', ')}]` },
        });
      }
    };
    check(init.a, [t.r, inF], 'A');
    check(init.b, [outF, t.r], 'B');
    initial.set(aName, init.a);
    initial.set(bName, init.b);
    g.input.push(makeValueInfo(aName, 'float32', [t.r, inF]), makeValueInfo(bName, 'float32', [outF, t.r]));
    const p = `lora/${t.module}`;
    g.initializer.push(tensorToProto(`${p}/scale`, createTensor('float32', [], [t.scale])));
    head.push(
      node('Transpose', [aName], [`${p}/A_T`], `${p}/A_T`, [attrInts('perm', [1, 0])]),
      node('Transpose', [bName], [`${p}/B_T`], `${p}/B_T`, [attrInts('perm', [1, 0])]),
    );
    const nodeNames: string[] = [];
    sites.forEach(({ mm }, k) => {
      const y = mm.output[0];
      const base = `${p}/${k}/base`;
      mm.output = [base];
      const s = `${p}/${k}`;
      const x = mm.input[0];
      const dropped = t.dropout > 0 ? dropoutNodes(x, s, t.dropout) : [];
      after.set(mm, [
        ...dropped,
        node('MatMul', [t.dropout > 0 ? `${s}/x_dropped` : x, `${p}/A_T`], [`${s}/xa`], `${s}/xa`),
        node('MatMul', [`${s}/xa`, `${p}/B_T`], [`${s}/xab`], `${s}/xab`),
        node('Mul', [`${s}/xab`, `${p}/scale`], [`${s}/scaled`], `${s}/scaled`),
        node('Add', [base, `${s}/scaled`], [y], `${s}/add`),
      ]);
      nodeNames.push(mm.name || y);
    });
    modules.push({ ...t, aName, bName, inFeatures: inF, outFeatures: outF, nodes: nodeNames });
  }
  g.node = [...head, ...g.node.flatMap((n) => [n, ...(after.get(n) ?? [])])];
  // Only the declared dropout masks stay: the other shapes are inferred again from the edited graph.
  g.valueInfo = g.valueInfo.filter((vi) => vi.name.endsWith('/dropout/mask'));
  return { model: out, modules, initial };
}

/** The current value of a model tensor in a training graph (a frozen initializer or a parameter's initial value). */
export function trainingGraphTensor(graph: TrainingGraph, name: string): Tensor {
  const p = graph.parameters.find((x) => x.name === name);
  if (p) return p.initial;
  const t = graph.forward.graph?.initializer.find((x) => x.name === name);
  if (!t) throw new NotFoundError(`no tensor named '${name}' in the training graph`, { details: { field: name } });
  return protoToTensor(t, { field: name });
}
