/**
 * Decoders from Hugging Face checkpoint folders (LlamaForCausalLM, Qwen2ForCausalLM, MistralForCausalLM):
 * config.json + safetensors in, an ONNX graph built by @vlit/graph out, run through the same loader as
 * an Optimum export; and any Vlit decoder saved back as a folder transformers loads.
 */
import { closeSync, linkSync, openSync, writeSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError, createTensor, typedArrayToBytes, type InferenceBackend, type SessionOptions, type VlitRuntime } from '@vlit/core';
import { openCheckpointFolder, writeCheckpointFolder, type CheckpointTensorInfo } from '@vlit/core/node';
import { elementTypeToOnnx, encodeModel, onnx, type GraphProto, type OnnxModel, type TensorProto } from '@vlit/graph';
import { fromHfLlamaConfig, toHfLlamaConfig, type LlamaConfig } from '../decoder/llama-config.js';
import { buildEmbedTokensModel, buildLlamaDecoderModel } from '../decoder/llama-graph.js';
import { LLAMA_DECODER_FILE, llamaSessionCache } from '../decoder/llama.js';
import { checkLlamaWeights, llamaWeightShapes, type LlamaWeights } from '../decoder/llama-weights.js';
import { loadOptimumDecoder, type OnnxLanguageModel } from '../language-model/optimum-decoder.js';
import { OPTIMUM_FILES } from '../language-model/optimum-layout.js';
import { createBuiltDecoderSource } from '../language-model/sources.js';

/** Progress of a load: weights read so far, out of all. */
export interface HfLoadProgress {
  stage: 'weights' | 'graph' | 'session';
  done: number;
  total: number;
}

/** Options of loadHfLanguageModel. */
export interface LoadHfLanguageModelOptions {
  /** The runtime whose backend runs the model (or give `backend`). */
  runtime?: VlitRuntime;
  /** The backend that runs the model, when no runtime is given. */
  backend?: InferenceBackend;
  session?: SessionOptions;
  /** Model id (default: the folder path). */
  id?: string;
  /** Keep the float32 weights on the model (needed to save it again or train it); default false, to hold them once. */
  keepWeights?: boolean;
  /** Called as weights are read and sessions built. */
  onProgress?: (progress: HfLoadProgress) => void;
}

/** A decoder loaded from a Hugging Face checkpoint folder. */
export interface HfLanguageModel extends OnnxLanguageModel {
  /** The folder it came from. */
  readonly checkpointDir: string;
  readonly llamaConfig: LlamaConfig;
  /** The weights by Hugging Face name, when loaded with keepWeights. */
  readonly weights?: Readonly<LlamaWeights>;
}

/**
 * Load a LlamaForCausalLM, Qwen2ForCausalLM or MistralForCausalLM checkpoint folder (config.json +
 * model.safetensors or shards with model.safetensors.index.json; F32, F16 or BF16 weights, computed in
 * float32) as a LanguageModel with KV cache. Typed errors: UnsupportedError for a model_type outside
 * llama/qwen2/mistral, FormatError naming a missing config field, NotFoundError naming a missing shard or
 * tensor, TensorShapeError naming a tensor whose shape disagrees with the config.
 */
export async function loadHfLanguageModel(dir: string, options: LoadHfLanguageModelOptions): Promise<HfLanguageModel> {
  const backend = options?.backend ?? options?.runtime?.backend;
  if (!backend || typeof backend.createSession !== 'function') {
    throw new InvalidArgumentError('loadHfLanguageModel needs options.runtime or options.backend', { details: { field: 'runtime' } });
  }
  const folder = await openCheckpointFolder(dir);
  let config: LlamaConfig;
  let kept: LlamaWeights | undefined;
  let generation: Record<string, unknown> | undefined;
  // Native sessions load model files from a scratch folder whose external data points into the checkpoint's
  // safetensors (F32) or holds the widened weights (F16/BF16); web sessions take encoded bytes built from
  // lazily read weights.
  const scratch = backend.platform === 'node' ? await mkdtemp(join(tmpdir(), 'vlit-hf-decoder-')) : undefined;
  const inputs: Record<string, Uint8Array | string> = {};
  try {
    config = fromHfLlamaConfig(folder.config, join(folder.dir, 'config.json'));
    generation = await folder.readJson(OPTIMUM_FILES.generationConfig);
    const shapes = llamaWeightShapes(config);
    const total = Object.keys(shapes).length;
    let done = 0;
    const progress = (): void => options.onProgress?.({ stage: 'weights', done: Math.min(++done, total), total });
    const read = (name: string): Float32Array => {
      const data = kept ? kept[name].data : folder.readFloat32Sync(name, shapes[name]);
      progress();
      return data;
    };
    if (options.keepWeights) {
      kept = {};
      for (const [name, dims] of Object.entries(shapes)) kept[name] = createTensor('float32', dims, folder.readFloat32Sync(name, dims));
    }
    const models: Array<[string, () => OnnxModel]> = [
      [
        LLAMA_DECODER_FILE,
        () => buildLlamaDecoderModel(config, lazyWeights(shapes, read), { weights: scratch ? 'inputs' : 'initializers', cache: llamaSessionCache(config) }),
      ],
      [
        OPTIMUM_FILES.embedTokens,
        () =>
          buildEmbedTokensModel(config, scratch ? undefined : lazyWeights(shapes, read)['model.embed_tokens.weight'], {
            weights: scratch ? 'inputs' : 'initializers',
          }),
      ],
    ];
    const links = new Map<string, string>();
    for (const [file, build] of models) {
      const model = build();
      if (!scratch) {
        inputs[file] = encodeModel(model);
        continue;
      }
      streamWeightsToExternalData(
        model,
        shapes,
        { dir: folder.dir, info: (n) => folder.info(n), read, skipped: () => progress(), links },
        scratch,
        `${file}.data`,
      );
      inputs[file] = join(scratch, file);
      await writeFile(inputs[file], encodeModel(model));
    }
    options.onProgress?.({ stage: 'graph', done: 1, total: 1 });
  } catch (err) {
    if (scratch) await rm(scratch, { recursive: true, force: true });
    throw err;
  } finally {
    await folder.close();
  }
  if (kept) Object.freeze(kept);
  const generationConfig = generation ?? {
    ...(config.bosTokenId !== undefined ? { bos_token_id: config.bosTokenId } : {}),
    ...(config.eosTokenId !== undefined ? { eos_token_id: config.eosTokenId } : {}),
  };
  const source = createBuiltDecoderSource(folder.dir, { config: folder.config, generationConfig }, async (file) => {
    // Handed over once, so the encoded bytes (web) are not kept alive by this source.
    const input = inputs[file];
    delete inputs[file];
    return input;
  });
  let model: OnnxLanguageModel;
  try {
    model = await loadOptimumDecoder(source, {
      backend,
      session: options.session,
      id: options.id ?? folder.dir,
      decoderFile: LLAMA_DECODER_FILE,
      embedFile: OPTIMUM_FILES.embedTokens,
    });
  } finally {
    // The sessions hold what they need (a mapped file stays readable after its name is gone).
    if (scratch) await rm(scratch, { recursive: true, force: true });
  }
  options.onProgress?.({ stage: 'session', done: 1, total: 1 });
  return Object.assign(model, { checkpointDir: folder.dir, llamaConfig: config, ...(kept ? { weights: kept as Readonly<LlamaWeights> } : {}) });
}

/** Alignment of external tensors: page-aligned, which lets onnxruntime map the data instead of copying it where it can. */
const EXTERNAL_ALIGNMENT = 4096;

/** Weights read on first use: the graph builder copies each into the graph at once, so only one is held outside it. */
function lazyWeights(shapes: Record<string, number[]>, read: (name: string) => Float32Array): LlamaWeights {
  const weights: LlamaWeights = {};
  for (const [name, dims] of Object.entries(shapes)) {
    Object.defineProperty(weights, name, { enumerable: true, get: () => createTensor('float32', dims, read(name)) });
  }
  return weights;
}

/** Where the weights of a checkpoint come from, for streamWeightsToExternalData. */
interface WeightSource {
  dir: string;
  info(name: string): CheckpointTensorInfo | undefined;
  /** The weight as float32, with the folder's typed errors for a missing tensor or a wrong shape. */
  read(name: string): Float32Array;
  /** Count a weight handed over without reading it. */
  skipped(name: string): void;
  /** Links already made in the scratch folder, by checkpoint file (shared by the models of one load). */
  links: Map<string, string>;
}

/**
 * Turn the weight inputs of a graph built with `{ weights: 'inputs' }` into external-data initializers.
 * F32 tensors are not read at all: the initializer points at their byte range in the checkpoint's own
 * safetensors file (through a hard link in the scratch folder, when the filesystem allows one). Other dtypes are widened to float32 one tensor
 * at a time and appended to `dataFile`, so the weights never exist in memory all at once.
 */
function streamWeightsToExternalData(model: OnnxModel, shapes: Record<string, number[]>, source: WeightSource, scratch: string, dataFile: string): void {
  const graph = model.graph as GraphProto;
  // onnxruntime refuses external data that resolves outside the model's folder, symbolic links included,
  // so the checkpoint file is hard-linked in; across filesystems (no hard link) its tensors are copied.
  const links = source.links;
  const linkTo = (file: string): string | undefined => {
    let link = links.get(file);
    if (link === undefined) {
      link = `checkpoint-${links.size}.safetensors`;
      try {
        linkSync(join(source.dir, file), join(scratch, link));
      } catch {
        link = '';
      }
      links.set(file, link);
    }
    return link || undefined;
  };
  const external = (name: string, dims: number[], location: string, offset: number, length: number): TensorProto =>
    onnx.TensorProto.create({
      name,
      dims,
      dataType: elementTypeToOnnx('float32'),
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [
        onnx.StringStringEntryProto.create({ key: 'location', value: location }),
        onnx.StringStringEntryProto.create({ key: 'offset', value: String(offset) }),
        onnx.StringStringEntryProto.create({ key: 'length', value: String(length) }),
      ],
    }) as unknown as TensorProto;
  const weights = graph.input.filter((i) => i.name in shapes);
  const fd = openSync(join(scratch, dataFile), 'w');
  try {
    let offset = 0;
    for (const { name } of weights) {
      const dims = shapes[name];
      const info = source.info(name);
      const link =
        info && info.dtype === 'F32' && info.shape.length === dims.length && info.shape.every((d, i) => d === dims[i]) ? linkTo(info.file) : undefined;
      if (info && link) {
        graph.initializer.push(external(name, dims, link, info.fileOffset, info.byteLength));
        source.skipped(name);
        continue;
      }
      const bytes = typedArrayToBytes(source.read(name));
      const pad = (EXTERNAL_ALIGNMENT - (offset % EXTERNAL_ALIGNMENT)) % EXTERNAL_ALIGNMENT;
      if (pad) writeSync(fd, new Uint8Array(pad));
      offset += pad;
      for (let written = 0; written < bytes.length; ) written += writeSync(fd, bytes, written, bytes.length - written);
      graph.initializer.push(external(name, dims, dataFile, offset, bytes.length));
      offset += bytes.length;
    }
  } finally {
    closeSync(fd);
  }
  graph.input = graph.input.filter((i) => !(i.name in shapes));
}

/** Options of saveHfLanguageModel. */
export interface SaveHfLanguageModelOptions {
  /** Weight dtype in the files (default F32). */
  dtype?: 'F32' | 'F16' | 'BF16';
  /** Shard the weights, as transformers' save_pretrained(max_shard_size). */
  maxShardBytes?: number;
  /** Other files for the folder, e.g. tokenizer.json and tokenizer_config.json (with the chat template). */
  files?: Record<string, string | Uint8Array>;
}

/**
 * Save a Vlit decoder (createLlamaDecoder's, or loadHfLanguageModel's with keepWeights, or any
 * configuration + weights) as a checkpoint folder that transformers' AutoModelForCausalLM.from_pretrained
 * loads: config.json of the matching architecture, generation_config.json, safetensors with Hugging Face names.
 */
export async function saveHfLanguageModel(
  dir: string,
  model: { readonly llamaConfig: LlamaConfig; readonly weights?: Readonly<LlamaWeights> },
  options: SaveHfLanguageModelOptions = {},
): Promise<void> {
  const { llamaConfig: config, weights } = model;
  if (!weights) {
    throw new InvalidArgumentError('the model holds no weights to save; load it with keepWeights: true', { details: { field: 'weights' } });
  }
  checkLlamaWeights(config, weights);
  const tensors = new Map(Object.keys(llamaWeightShapes(config)).map((name) => [name, weights[name]]));
  const generationConfig: Record<string, unknown> = {
    ...(config.bosTokenId !== undefined ? { bos_token_id: config.bosTokenId } : {}),
    ...(config.eosTokenId !== undefined ? { eos_token_id: config.eosTokenId } : {}),
  };
  await writeCheckpointFolder(dir, {
    config: toHfLlamaConfig(config),
    tensors,
    dtype: options.dtype,
    maxShardBytes: options.maxShardBytes,
    files: { [OPTIMUM_FILES.generationConfig]: `${JSON.stringify(generationConfig, null, 2)}\n`, ...options.files },
  });
}
