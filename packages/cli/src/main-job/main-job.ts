/**
 * Vlit's main job, trained for real: render the synthetic world, adapt its annotations into instruction
 * data (held-out phrasings excluded), plant faults, run quality control and the data-quality report,
 * train a small LLaVA-architecture model (frozen tiny ViT with cached features + MLP projector + tiny
 * Llama decoder, word-level tokenizer) in LLaVA's two stages with the local engine, evaluate it on the
 * held-out benchmark (seen and unseen phrasings, and with blank images), save it as a LLaVA checkpoint
 * folder, check that the folder reloads to the same answers, and write an HTML report and a summary.
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { InvalidArgumentError, createTensor, type RawImage, type Tensor, type VlitRecord } from '@vlit/core';
import { prepareOutputDir, writeFileAtomic } from '@vlit/core/node';
import { createNodeRuntime, createSharpCodec } from '@vlit/runtime/node';
import {
  computeDataQuality,
  createCategoryVocabulary,
  createWorld,
  defaultQualityFilters,
  runQualityControl,
  WORLD_SHAPES,
  type DataQualityReport,
  type QualityCounts,
} from '@vlit/data';
import { createRootImageLoader, writeQualityReport, writeRecordsFile, writeWorldDataset } from '@vlit/data/node';
import { buildWordLevelTokenizer, createBuiltinTemplate, createJinjaChatTemplate, encodeBatch, type EncodedSample } from '@vlit/templates';
import { createHfVisionEncoder } from '@vlit/encoders';
import { buildConnectorModel, createMlpConnector, initConnectorWeights, type ConnectorConfig, type ConnectorWeights } from '@vlit/connectors';
import { buildEmbedTokensModel, buildLlamaDecoderModel, composeVisionLanguageModel, createLlamaDecoder, initLlamaWeights, tinyLlamaConfig, type LlamaWeights } from '@vlit/models';
import { loadVisionLanguageModel, saveLlavaCheckpoint, vitAsHfVisionTower } from '@vlit/models/node';
import { llavaRecipe, type RecipeStage, type TrainingModelParts, type TrainingProgressEvent } from '@vlit/trainer';
import { trainStageInDirectory } from '@vlit/trainer/node';
import { createMemoryCache, createMultipleChoiceBenchmark, evaluate, type EvalRun, type MultipleChoiceItem } from '@vlit/eval';
import { createFileImageLoader, loadSeedBenchFile, writeReports } from '@vlit/eval/node';
import { adaptWorldScenes, captionRecords, contentText, plantFaults, type PlantedFault, type PlantedFaultKind } from './data.js';
import { patchStatisticsVitConfig, patchStatisticsVitWeights } from './vision.js';
import { FULL_SETTINGS, QUICK_SETTINGS, type MainJobSettings } from './settings.js';
import { dimensionTable, renderMainJobHtml, renderMainJobMarkdown, type DimensionRow } from './report.js';

/** Progress of the job: a stage name, units done and the total (the CLI draws a bar per stage). */
export interface MainJobProgress {
  stage: 'render-world' | 'adapt' | 'quality-control' | 'data-quality' | 'encode-images' | 'train-stage-1' | 'train-stage-2' | 'evaluate' | 'evaluate-blank' | 'save' | 'reload-check' | 'report';
  done: number;
  total: number;
  /** A short note (e.g. the training loss). */
  detail?: string;
}

/** Options of runTrainedMainJob. */
export interface TrainedMainJobOptions {
  /** Output folder: new, empty, or one an earlier run made (emptied first); other folders need `force`. */
  out: string;
  /** Small enough for a CI test (about 2-3 minutes on 2 cores); otherwise the full job (under 15). */
  quick?: boolean;
  /** Seed of everything (world, adaption, faults, weights, data order). Default 7. */
  seed?: number;
  /** Write into a non-empty folder Vlit did not make (nothing else there is deleted). */
  force?: boolean;
  /** Override sizes (tests and experiments); merged over the quick or full settings. */
  settings?: Partial<MainJobSettings>;
  onProgress?: (event: MainJobProgress) => void;
}

/** Accuracy of one run on one split, with chance from the options. */
export interface SplitScore {
  accuracy: number;
  chance: number;
  questions: number;
  byDimension: Record<string, { accuracy: number; chance: number; questions: number }>;
}

/** What the job produced; every number the report shows. */
export interface TrainedMainJobResult {
  out: string;
  quick: boolean;
  seed: number;
  settings: MainJobSettings;
  files: {
    world: string;
    adapted: string;
    kept: string;
    rejects: string;
    qualityReportMarkdown: string;
    qualityReportJson: string;
    model: string;
    stage1: string;
    stage2: string;
    evalReportHtml: string;
    reportHtml: string;
    summaryMarkdown: string;
    resultJson: string;
  };
  world: { trainScenes: number; heldoutScenes: number; images: number; benchmarkQuestions: number };
  adaption: { records: number; droppedHeldoutPhrasings: number; refused: number; byTask: Record<string, number> };
  faults: { planted: number; caught: number; byKind: Record<PlantedFaultKind, { planted: number; caught: number }> };
  qualityControl: QualityCounts;
  dataQuality: DataQualityReport[];
  model: {
    encoder: string;
    /** Why this encoder (frozen tiny ViT, deterministic weights, features cached). */
    encoderNote: string;
    visualTokens: number;
    vocabSize: number;
    parameters: { projector: number; languageModel: number; encoder: number };
  };
  training: {
    stage1: { steps: number; samples: number; rejected: number; firstLoss: number; lastLoss: number };
    stage2: { steps: number; samples: number; rejected: number; firstLoss: number; lastLoss: number };
  };
  evaluation: {
    seen: SplitScore;
    unseen: SplitScore;
    blankSeen: SplitScore;
    table: DimensionRow[];
  };
  reload: { questions: number; sameChoice: number; maxScoreDiff: number };
  seconds: Record<string, number>;
}

const IMAGE_TOKEN = '<image>';
const SPECIALS = ['<pad>', '<s>', '</s>', IMAGE_TOKEN];

/**
 * The conversation template of stage 2 (Vicuna-style turns, no system prompt to keep samples short). It is a
 * Jinja template so that the saved checkpoint folder carries exactly the template the model was trained with.
 */
export const MAIN_JOB_CHAT_TEMPLATE =
  "<s>{% for message in messages %}{% if message['role'] == 'system' %}{{ message['content'] }} {% elif message['role'] == 'user' %}USER: {{ message['content'] }} {% else %}ASSISTANT: {{ message['content'] }}</s>{% endif %}{% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}";

function count(t: { data: ArrayLike<number> }): number {
  return t.data.length;
}

function scoreOf(run: EvalRun, index: number, items: readonly MultipleChoiceItem[]): SplitScore {
  const result = run.benchmarks[index];
  const chanceOf = (xs: readonly MultipleChoiceItem[]): number => (xs.length ? xs.reduce((s, it) => s + 1 / it.options.length, 0) / xs.length : 0);
  const byDimension: SplitScore['byDimension'] = {};
  for (const [dim, g] of Object.entries(result.groups)) {
    const members = items.filter((it) => it.dimension === dim);
    byDimension[dim] = { accuracy: g.accuracy, chance: chanceOf(members), questions: members.length };
  }
  return { accuracy: result.metrics.accuracy, chance: chanceOf(items), questions: items.length, byDimension };
}

/** Run the trained main job into `out` (see the file comment); deterministic for a seed. */
export async function runTrainedMainJob(options: TrainedMainJobOptions): Promise<TrainedMainJobResult> {
  const quick = options.quick ?? false;
  const seed = options.seed ?? 7;
  const settings: MainJobSettings = { ...(quick ? QUICK_SETTINGS : FULL_SETTINGS), ...options.settings };
  if (settings.imageSize % settings.patchSize !== 0) {
    throw new InvalidArgumentError(`imageSize ${settings.imageSize} is not a multiple of patchSize ${settings.patchSize}`, { details: { field: 'settings.patchSize' } });
  }
  const report = (event: MainJobProgress): void => options.onProgress?.(event);
  const seconds: Record<string, number> = {};
  let mark = performance.now();
  const lap = (name: string): void => {
    const now = performance.now();
    seconds[name] = (now - mark) / 1000;
    mark = now;
  };
  const t0 = performance.now();

  const out = resolve(options.out);
  await prepareOutputDir(out, { clean: true, force: options.force, owner: 'vlit main job' });
  const runtime = createNodeRuntime({ session: { intraOpThreads: 2 } });
  const codec = createSharpCodec();

  // 1. The world: training scenes for data, held-out scenes for the benchmark (seen and unseen phrasings).
  const worldDir = join(out, 'world');
  const summary = await writeWorldDataset(worldDir, {
    seed,
    size: settings.imageSize,
    scenes: settings.trainScenes,
    heldoutScenes: settings.heldoutScenes,
    runtime,
    onProgress: (e) => report({ stage: 'render-world', done: e.done, total: e.total ?? settings.trainScenes + settings.heldoutScenes }),
  });
  const world = createWorld({ seed, size: settings.imageSize });
  const scenes = world.scenes('train', settings.trainScenes);
  lap('render-world');

  // 2. Annotation adaption (held-out phrasings dropped), 3. planted faults.
  report({ stage: 'adapt', done: 0, total: scenes.length });
  const adapted = adaptWorldScenes(scenes, seed, settings.tasks);
  const faults = plantFaults(scenes, adapted.records, seed);
  await writeRecordsFile(join(out, 'adapted.jsonl'), adapted.records, { dialect: 'vlit' });
  report({ stage: 'adapt', done: scenes.length, total: scenes.length, detail: `${adapted.records.length} records, ${faults.planted.length} faults planted` });
  lap('adapt');

  // 4. Quality control over adapted + faulty records, with the world's shapes as the object vocabulary.
  const vocabulary = createCategoryVocabulary({ categories: WORLD_SHAPES, replaceSynonyms: true });
  const mixed = [...adapted.records, ...faults.records];
  const qc = await runQualityControl(
    mixed,
    // The world repeats simple scenes by design (one shape on a plain background), so near-identical
    // images are legitimate here: the perceptual-duplicate filter is left out.
    defaultQualityFilters({ imageDuplicate: false }),
    {
      annotations: adapted.annotations,
      images: { codec, load: createRootImageLoader(worldDir) },
      vocabulary,
      onProgress: (e) => report({ stage: 'quality-control', done: e.done, total: mixed.length }),
    },
  );
  await writeRecordsFile(join(out, 'kept.jsonl'), qc.kept, { dialect: 'vlit' });
  await writeFileAtomic(
    join(out, 'rejects.jsonl'),
    qc.rejects.map((r) => JSON.stringify({ id: r.id, index: r.index, filter: r.filter, reason: r.reason, message: r.message })).join('\n') + '\n',
  );
  const rejectedIds = new Set(qc.rejects.map((r) => r.id));
  const byKind = { 'wrong-count': { planted: 0, caught: 0 }, 'hallucinated-object': { planted: 0, caught: 0 }, duplicate: { planted: 0, caught: 0 } };
  for (const f of faults.planted as PlantedFault[]) {
    byKind[f.kind].planted++;
    if (rejectedIds.has(f.id)) byKind[f.kind].caught++;
  }
  const caught = faults.planted.filter((f) => rejectedIds.has(f.id)).length;
  lap('quality-control');

  // 5. Data-quality report: adaption alone, with the faults, after quality control.
  report({ stage: 'data-quality', done: 0, total: 3 });
  const dataQuality: DataQualityReport[] = [];
  for (const [name, records] of [
    ['annotation adaption', adapted.records],
    ['adaption + planted faults', mixed],
    ['after quality control', qc.kept],
  ] as const) {
    dataQuality.push(await computeDataQuality(records, { name, annotations: adapted.annotations, vocabulary, seed, maxSimilarityTexts: settings.similarityTexts }));
    report({ stage: 'data-quality', done: dataQuality.length, total: 3 });
  }
  const qualityFiles = await writeQualityReport(join(out, 'quality-report'), dataQuality);
  lap('data-quality');

  // 6. Tokenizer, templates and encoded samples.
  const keptImages = new Set(qc.kept.flatMap((r) => r.images.map((i) => (typeof i === 'string' ? i : i.path))));
  const captions = captionRecords(scenes, keptImages);
  const corpus = [...qc.kept, ...captions].flatMap((r) => r.messages.map((m) => contentText(m.content))).concat(['USER: ASSISTANT:']);
  const tokenizer = buildWordLevelTokenizer({ corpus, specialTokens: SPECIALS, roles: { bos: '<s>', eos: '</s>', pad: '<pad>' } });
  const padId = tokenizer.tokenToId('<pad>') as number;
  const imageTokenId = tokenizer.tokenToId(IMAGE_TOKEN) as number;
  const plain = createBuiltinTemplate('llava-plain', { imageToken: IMAGE_TOKEN, bos: '<s>' });
  const conversation = createJinjaChatTemplate({ source: MAIN_JOB_CHAT_TEMPLATE, name: 'vlit-main-job', imageToken: IMAGE_TOKEN, contentFormat: 'string' });
  const grid = settings.imageSize / settings.patchSize;
  const visualTokens = grid * grid;
  const stage1Data = encodeBatch(captions, { template: plain, tokenizer, imageTokens: visualTokens, maxLength: settings.maxLength, truncation: 'error' });
  const stage2Data = encodeBatch(qc.kept, { template: conversation, tokenizer, imageTokens: visualTokens, maxLength: settings.maxLength, truncation: 'error' });

  // 7. The frozen vision tower (Vlit's tiny ViT in CLIP layout, deterministic weights) and its cached features.
  const vit = patchStatisticsVitConfig(settings.imageSize, settings.patchSize);
  const towerParts = vitAsHfVisionTower(vit, patchStatisticsVitWeights(vit, `${seed}:vit`));
  const tower = await createHfVisionEncoder({ backend: runtime.backend, spec: towerParts.spec, weights: towerParts.weights, featureLayer: -2, selectStrategy: 'default' });
  const pathOf = new Map<string, string>();
  for (const r of [...qc.kept, ...captions]) {
    const ref = r.images[0];
    if (ref !== undefined) pathOf.set(r.id, typeof ref === 'string' ? ref : ref.path);
  }
  const features = new Map<string, Tensor<'float32'>>();
  const imagePaths = [...keptImages].sort();
  for (let i = 0; i < imagePaths.length; i += 32) {
    const chunk = imagePaths.slice(i, i + 32);
    const images = await Promise.all(chunk.map(async (p) => codec.decode(await readFile(join(worldDir, p)), { source: p })));
    const encoded = await tower.encode(images);
    const [, tokens, dim] = encoded.dims;
    chunk.forEach((p, k) => features.set(p, createTensor('float32', [tokens, dim], encoded.data.slice(k * tokens * dim, (k + 1) * tokens * dim))));
    report({ stage: 'encode-images', done: Math.min(i + 32, imagePaths.length), total: imagePaths.length });
  }
  const featuresOf = (sample: EncodedSample): Tensor<'float32'>[] => {
    const f = features.get(pathOf.get(sample.id) ?? '');
    if (!f) throw new InvalidArgumentError(`no cached features for sample ${sample.id}`, { details: { record: sample.id, field: 'images.0' } });
    return [f];
  };
  lap('encode-images');

  // 8. Projector + tiny Llama decoder; LLaVA's two stages with the local engine.
  const connectorConfig: ConnectorConfig = { kind: 'mlp', inputDim: vit.hiddenSize, hiddenDim: settings.hidden, outputDim: settings.hidden };
  let connectorWeights: ConnectorWeights = initConnectorWeights(connectorConfig, `${seed}:projector`);
  const llama = tinyLlamaConfig({
    hiddenSize: settings.hidden,
    vocabSize: tokenizer.vocabSize,
    intermediateSize: 2 * settings.hidden,
    numHiddenLayers: settings.layers,
    numAttentionHeads: 4,
    numKeyValueHeads: 2,
    maxPositionEmbeddings: 256,
    bosTokenId: tokenizer.tokenToId('<s>'),
    eosTokenId: tokenizer.tokenToId('</s>'),
  });
  let llamaWeights: LlamaWeights = initLlamaWeights(llama, `${seed}:decoder`);
  const partsOf = (): TrainingModelParts => ({
    connector: buildConnectorModel(connectorConfig, connectorWeights),
    embedTokens: buildEmbedTokensModel(llama, llamaWeights['model.embed_tokens.weight']),
    decoder: buildLlamaDecoderModel(llama, llamaWeights),
  });
  const absorb = (weights: ReadonlyMap<string, Tensor<'float32'>>): void => {
    const c: ConnectorWeights = { ...connectorWeights };
    const l: LlamaWeights = { ...llamaWeights };
    for (const [name, t] of weights) {
      if (name.startsWith('model.multi_modal_projector.')) c[name.slice('model.multi_modal_projector.'.length)] = t;
      else if (name.startsWith('model.language_model.')) l[`model.${name.slice('model.language_model.'.length)}`] = t;
      else if (name.startsWith('lm_head.')) l[name] = t;
    }
    connectorWeights = c;
    llamaWeights = l;
  };
  const recipe = llavaRecipe({
    pretrainData: [{ name: 'world-captions', path: 'captions' }],
    instructionData: [{ name: 'world-instructions', path: 'kept.jsonl' }],
    seed,
    maxLength: settings.maxLength,
    stage1: { batchSize: settings.stage1.batchSize, gradientAccumulation: 1, lr: settings.stage1.lr },
    stage2: { batchSize: settings.stage2.batchSize, gradientAccumulation: 1, lr: settings.stage2.lr },
  });
  const stage1: RecipeStage = { ...recipe.stages[0], maxSteps: settings.stage1.steps };
  const stage2: RecipeStage = { ...recipe.stages[1], template: 'model', maxSteps: settings.stage2.steps };
  const progressFor = (stage: 'train-stage-1' | 'train-stage-2') => (e: TrainingProgressEvent): void => {
    if (e.type === 'step') report({ stage, done: e.step, total: e.totalSteps, detail: `loss ${e.record.loss.toFixed(3)}` });
  };
  const stage1Dir = join(out, 'train', 'stage-1');
  const r1 = await trainStageInDirectory(stage1, {
    backend: runtime.backend,
    model: partsOf(),
    samples: stage1Data.encoded,
    imageFeatures: (s) => featuresOf(s),
    outDir: stage1Dir,
    stageIndex: 0,
    padTokenId: padId,
    onProgress: progressFor('train-stage-1'),
  });
  absorb(r1.weights);
  lap('train-stage-1');
  const stage2Dir = join(out, 'train', 'stage-2');
  const r2 = await trainStageInDirectory(stage2, {
    backend: runtime.backend,
    model: partsOf(),
    samples: stage2Data.encoded,
    imageFeatures: (s) => featuresOf(s),
    outDir: stage2Dir,
    stageIndex: 1,
    padTokenId: padId,
    onProgress: progressFor('train-stage-2'),
  });
  absorb(r2.weights);
  lap('train-stage-2');

  // 9. The trained model, composed, evaluated on both splits and with blank images.
  const connector = createMlpConnector({ inputDim: vit.hiddenSize, hiddenDim: settings.hidden, outputDim: settings.hidden }, { backend: runtime.backend, weights: connectorWeights });
  const languageModel = await createLlamaDecoder({ backend: runtime.backend, config: llama, weights: llamaWeights });
  const model = composeVisionLanguageModel({ encoder: tower, connector, languageModel, template: conversation, tokenizer, id: 'vlit-main-job' });
  const seenFile = await loadSeedBenchFile(join(worldDir, summary.files.benchmark));
  const unseenFile = await loadSeedBenchFile(join(worldDir, summary.files.benchmarkUnseen));
  const seenBench = createMultipleChoiceBenchmark({ id: 'world-seen', items: seenFile.items, source: seenFile.sha256 });
  const unseenBench = createMultipleChoiceBenchmark({ id: 'world-unseen', items: unseenFile.items, source: unseenFile.sha256 });
  const loadImage = createFileImageLoader({ root: worldDir, codec });
  const trainedRun = await evaluate({
    name: 'trained',
    model,
    benchmarks: [seenBench, unseenBench],
    loadImage,
    cache: createMemoryCache(),
    batchSize: 16,
    onProgress: (e) => report({ stage: 'evaluate', done: e.done, total: e.total ?? 0 }),
  });
  lap('evaluate');
  const blankPixels = new Uint8Array(settings.imageSize * settings.imageSize * 3).fill(128);
  const blank: RawImage = { width: settings.imageSize, height: settings.imageSize, channels: 3, data: blankPixels };
  const blankRun = await evaluate({
    name: 'trained, blank images',
    model,
    benchmarks: [createMultipleChoiceBenchmark({ id: 'world-seen', items: seenFile.items, source: seenFile.sha256 })],
    loadImage: async () => blank,
    cache: createMemoryCache(),
    batchSize: 16,
    onProgress: (e) => report({ stage: 'evaluate-blank', done: e.done, total: e.total ?? 0 }),
  });
  lap('evaluate-blank');
  const seen = scoreOf(trainedRun, 0, seenFile.items);
  const unseen = scoreOf(trainedRun, 1, unseenFile.items);
  const blankSeen = scoreOf(blankRun, 0, seenFile.items);

  // 10. Save as a LLaVA checkpoint folder, reload it with the folder loader, and compare answers.
  report({ stage: 'save', done: 0, total: 1 });
  const modelDir = join(out, 'model');
  const tokenizerConfig = { bos_token: '<s>', eos_token: '</s>', pad_token: '<pad>', unk_token: '<unk>', model_max_length: 256, tokenizer_class: 'PreTrainedTokenizerFast' };
  await saveLlavaCheckpoint(modelDir, model, {
    imageTokenId,
    imageToken: IMAGE_TOKEN,
    chatTemplate: MAIN_JOB_CHAT_TEMPLATE,
    files: { 'tokenizer.json': JSON.stringify(tokenizer.toJson()), 'tokenizer_config.json': JSON.stringify(tokenizerConfig, null, 2) },
  });
  report({ stage: 'save', done: 1, total: 1 });
  lap('save');
  const reload = await reloadCheck(modelDir, runtime, model, seenFile.items.slice(0, 12), loadImage, (done, total) => report({ stage: 'reload-check', done, total }));
  lap('reload-check');

  // 11. Reports.
  report({ stage: 'report', done: 0, total: 1 });
  const evalFiles = await writeReports(join(out, 'eval-report'), [trainedRun, blankRun], { title: 'Vlit main job: trained model on the held-out world benchmark' });
  await connector.dispose();
  await languageModel.dispose();
  await tower.release();
  seconds.total = (performance.now() - t0) / 1000;
  const params = {
    projector: Object.values(connectorWeights).reduce((s, t) => s + count(t), 0),
    languageModel: Object.values(llamaWeights).reduce((s, t) => s + count(t), 0),
    encoder: [...towerParts.weights.values()].reduce((s, t) => s + count(t), 0),
  };
  const firstLast = (r: typeof r1): { firstLoss: number; lastLoss: number } => ({ firstLoss: r.metrics[0]?.loss ?? Number.NaN, lastLoss: r.metrics[r.metrics.length - 1]?.loss ?? Number.NaN });
  const files: TrainedMainJobResult['files'] = {
    world: worldDir,
    adapted: join(out, 'adapted.jsonl'),
    kept: join(out, 'kept.jsonl'),
    rejects: join(out, 'rejects.jsonl'),
    qualityReportMarkdown: qualityFiles.markdown,
    qualityReportJson: qualityFiles.json,
    model: modelDir,
    stage1: stage1Dir,
    stage2: stage2Dir,
    evalReportHtml: evalFiles.html,
    reportHtml: join(out, 'report.html'),
    summaryMarkdown: join(out, 'summary.md'),
    resultJson: join(out, 'result.json'),
  };
  const result: TrainedMainJobResult = {
    out,
    quick,
    seed,
    settings,
    files,
    world: { trainScenes: summary.trainScenes, heldoutScenes: summary.heldoutScenes, images: summary.images, benchmarkQuestions: summary.benchmarkQuestions },
    adaption: { records: adapted.records.length, droppedHeldoutPhrasings: adapted.droppedHeldoutPhrasings, refused: adapted.refused, byTask: adapted.byTask },
    faults: { planted: faults.planted.length, caught, byKind },
    qualityControl: qc.counts,
    dataQuality,
    model: {
      encoder: `Vlit tiny ViT (CLIP layout) ${settings.imageSize}px, patch ${settings.patchSize}, width ${vit.hiddenSize}, feature layer -2 (hidden state 0), CLS dropped`,
      encoderNote:
        'frozen, features cached (LLaVA keeps its tower frozen); its embedding weights are set by hand to patch statistics (mean colour of each 2x2-pixel cell, patch row and column, brightness anchors), the fixed-encoder approach of the trainer\'s learning test in a form the checkpoint folder carries as a CLIPVisionModel. Seeded random ViT weights were measured too weak: blank images scored as well as real ones',
      visualTokens,
      vocabSize: tokenizer.vocabSize,
      parameters: params,
    },
    training: {
      stage1: { steps: r1.steps, samples: stage1Data.encoded.length, rejected: stage1Data.rejects.length + r1.counts.rejected, ...firstLast(r1) },
      stage2: { steps: r2.steps, samples: stage2Data.encoded.length, rejected: stage2Data.rejects.length + r2.counts.rejected, ...firstLast(r2) },
    },
    evaluation: { seen, unseen, blankSeen, table: dimensionTable(seen, unseen, blankSeen) },
    reload,
    seconds,
  };
  await writeFileAtomic(files.summaryMarkdown, renderMainJobMarkdown(result));
  await writeFileAtomic(files.reportHtml, renderMainJobHtml(result));
  await writeFileAtomic(files.resultJson, JSON.stringify({ ...result, dataQuality: undefined }, null, 2) + '\n');
  report({ stage: 'report', done: 1, total: 1 });
  return result;
}

/** Load the saved folder with the checkpoint loader and ask both models the same questions: same choice, scores within tolerance. */
async function reloadCheck(
  dir: string,
  runtime: ReturnType<typeof createNodeRuntime>,
  model: ReturnType<typeof composeVisionLanguageModel>,
  items: readonly MultipleChoiceItem[],
  loadImage: (ref: MultipleChoiceItem['images'][number]) => Promise<RawImage>,
  onProgress: (done: number, total: number) => void,
): Promise<{ questions: number; sameChoice: number; maxScoreDiff: number }> {
  const loaded = await loadVisionLanguageModel(dir, { runtime });
  let same = 0;
  let maxDiff = 0;
  try {
    for (const [k, it] of items.entries()) {
      const request = { messages: [{ role: 'user' as const, content: [{ type: 'image' as const }, { type: 'text' as const, text: it.question }] }], images: [await loadImage(it.images[0])] };
      const a = await model.score(request, it.options);
      const b = await loaded.score(request, it.options);
      const mean = (s: { logLikelihood: number; tokens: number }): number => s.logLikelihood / s.tokens;
      const pick = (xs: readonly { logLikelihood: number; tokens: number }[]): number => xs.reduce((best, s, i) => (mean(s) > mean(xs[best]) ? i : best), 0);
      if (pick(a) === pick(b)) same++;
      a.forEach((s, i) => (maxDiff = Math.max(maxDiff, Math.abs(s.logLikelihood - b[i].logLikelihood))));
      onProgress(k + 1, items.length);
    }
  } finally {
    await loaded.dispose();
  }
  return { questions: items.length, sameChoice: same, maxScoreDiff: maxDiff };
}

/** The records type the job trains on (re-exported for callers that read kept.jsonl). */
export type MainJobRecord = VlitRecord;
