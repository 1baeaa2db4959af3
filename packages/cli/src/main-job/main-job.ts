/**
 * Vlit's main job, trained for real: render the synthetic world, adapt its annotations into instruction
 * data (held-out phrasings excluded), plant faults, run quality control and the data-quality report,
 * train a small LLaVA-architecture model (tiny ViT + MLP projector + tiny Llama decoder, word-level
 * tokenizer) with the local engine: the full run first pretrains the ViT's learned channels on rendered
 * scenes (stage 0), then, with the ViT frozen and its features cached, LLaVA's two stages; evaluate it on the
 * held-out benchmark (seen and unseen phrasings, and with blank images), save it as a LLaVA checkpoint
 * folder, check that the folder reloads to the same answers, and write an HTML report and a summary.
 */
import { join, resolve } from 'node:path';
import { InvalidArgumentError, type RawImage, type VlitRecord } from '@vlit/core';
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
import type { composeVisionLanguageModel } from '@vlit/models';
import { loadVisionLanguageModel, saveLlavaCheckpoint } from '@vlit/models/node';
import type { MultipleChoiceItem } from '@vlit/eval';
import { createFileImageLoader, loadSeedBenchFile, writeReports } from '@vlit/eval/node';
import { adaptWorldScenes, captionRecords, plantFaults, type PlantedFault, type PlantedFaultKind } from './data.js';
import {
  blankImage,
  composeTrainedModel,
  createFrozenTower,
  evaluateSplits,
  IMAGE_TOKEN,
  MAIN_JOB_CHAT_TEMPLATE,
  trainSmallLlava,
  type SplitScore,
} from './pipeline.js';
import { FULL_SETTINGS, QUICK_SETTINGS, type MainJobSettings } from './settings.js';
import { pretrainWorldTower, type PretrainedTower } from './vision-pretrain.js';
import { handSetWidth } from './vision.js';
import { dimensionTable, renderMainJobHtml, renderMainJobMarkdown, type DimensionRow } from './report.js';

export { MAIN_JOB_CHAT_TEMPLATE, type SplitScore } from './pipeline.js';

/** Progress of the job: a stage name, units done and the total (the CLI draws a bar per stage). */
export interface MainJobProgress {
  stage:
    | 'render-world'
    | 'adapt'
    | 'quality-control'
    | 'data-quality'
    | 'pretrain-tower'
    | 'encode-images'
    | 'train-stage-1'
    | 'train-stage-2'
    | 'evaluate'
    | 'evaluate-blank'
    | 'save'
    | 'reload-check'
    | 'report';
  done: number;
  total: number;
  /** A short note (e.g. the training loss). */
  detail?: string;
}

/** Options of runTrainedMainJob. */
export interface TrainedMainJobOptions {
  /** Output folder: new, empty, or one an earlier run made (emptied first); other folders need `force`. */
  out: string;
  /** Small enough for a CI test (about 75 s on 2 cores); otherwise the full job with stage 0 (about 8 minutes). */
  quick?: boolean;
  /** Seed of everything (world, adaption, faults, weights, data order). Default 7. */
  seed?: number;
  /** Write into a non-empty folder Vlit did not make (nothing else there is deleted). */
  force?: boolean;
  /** Override sizes (tests and experiments); merged over the quick or full settings. */
  settings?: Partial<MainJobSettings>;
  onProgress?: (event: MainJobProgress) => void;
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
    /** Stage 0 (the tower's pretraining), when the settings ask for it: shape accuracy at the labelled patches of held-out scenes. */
    stage0: {
      steps: number;
      scenes: number;
      firstLoss: number;
      lastLoss: number;
      heldoutShapeAccuracy: number;
      chance: number;
      heldoutPatches: number;
    } | null;
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

function count(t: { data: ArrayLike<number> }): number {
  return t.data.length;
}

/** Run the trained main job into `out` (see the file comment); deterministic for a seed. */
export async function runTrainedMainJob(options: TrainedMainJobOptions): Promise<TrainedMainJobResult> {
  const quick = options.quick ?? false;
  const seed = options.seed ?? 7;
  const settings: MainJobSettings = { ...(quick ? QUICK_SETTINGS : FULL_SETTINGS), ...options.settings };
  if (settings.imageSize % settings.patchSize !== 0) {
    throw new InvalidArgumentError(`imageSize ${settings.imageSize} is not a multiple of patchSize ${settings.patchSize}`, {
      details: { field: 'settings.patchSize' },
    });
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
    dataQuality.push(
      await computeDataQuality(records, { name, annotations: adapted.annotations, vocabulary, seed, maxSimilarityTexts: settings.similarityTexts }),
    );
    report({ stage: 'data-quality', done: dataQuality.length, total: 3 });
  }
  const qualityFiles = await writeQualityReport(join(out, 'quality-report'), dataQuality);
  lap('data-quality');

  // 6. Stage 0 when the settings ask for it: the tower's learned channels pretrained on rendered scenes.
  let pretrained: PretrainedTower | undefined;
  if (settings.visionPretrain) {
    pretrained = await pretrainWorldTower({
      runtime,
      imageSize: settings.imageSize,
      patchSize: settings.patchSize,
      settings: settings.visionPretrain,
      worldSeed: seed,
      seed,
      onProgress: (e) => {
        if (e.phase === 'train')
          report({ stage: 'pretrain-tower', done: e.done, total: e.total, detail: e.loss === undefined ? 'no labelled patch' : `loss ${e.loss.toFixed(3)}` });
      },
    });
    lap('pretrain-tower');
  }

  // The frozen vision tower (Vlit's tiny ViT in CLIP layout) and its cached features.
  const keptImages = new Set(qc.kept.flatMap((r) => r.images.map((i) => (typeof i === 'string' ? i : i.path))));
  const captions = captionRecords(scenes, keptImages);
  const frozen = await createFrozenTower({
    runtime,
    codec,
    settings,
    seed,
    worldDir,
    imagePaths: [...keptImages],
    ...(pretrained ? { pretrained } : {}),
    onProgress: (done, total) => report({ stage: 'encode-images', done, total }),
  });
  const { tower, visualTokens } = frozen;
  const towerParts = frozen.parts;
  lap('encode-images');

  // 7-8. Tokenizer, templates, projector + tiny Llama decoder; LLaVA's two stages with the local engine.
  const trained = await trainSmallLlava({
    runtime,
    settings,
    seed,
    tower: frozen,
    captions,
    instructions: qc.kept,
    outDir: join(out, 'train'),
    onProgress: (stage, e) => {
      if (e.type === 'step') report({ stage, done: e.step, total: e.totalSteps, detail: `loss ${e.record.loss.toFixed(3)}` });
    },
  });
  const { tokenizer, conversation, imageTokenId, connectorWeights, llamaWeights } = trained;
  const r1 = trained.stage1.result;
  const r2 = trained.stage2.result;
  const stage1Dir = trained.stage1.dir;
  const stage2Dir = trained.stage2.dir;
  lap('train-stage-2');
  seconds['train-stage-1'] = trained.stage1.seconds;
  seconds['train-stage-2'] -= trained.stage1.seconds;

  // 9. The trained model, composed, evaluated on both splits and with blank images.
  const composed = await composeTrainedModel(runtime, frozen, trained);
  const model = composed.model;
  const seenFile = await loadSeedBenchFile(join(worldDir, summary.files.benchmark));
  const unseenFile = await loadSeedBenchFile(join(worldDir, summary.files.benchmarkUnseen));
  const loadImage = createFileImageLoader({ root: worldDir, codec });
  const trainedEval = await evaluateSplits({
    name: 'trained',
    model,
    splits: [
      { id: 'world-seen', items: seenFile.items, source: seenFile.sha256 },
      { id: 'world-unseen', items: unseenFile.items, source: unseenFile.sha256 },
    ],
    loadImage,
    onProgress: (done, total) => report({ stage: 'evaluate', done, total }),
  });
  lap('evaluate');
  const blank = blankImage(settings.imageSize);
  const blankEval = await evaluateSplits({
    name: 'trained, blank images',
    model,
    splits: [{ id: 'world-seen', items: seenFile.items, source: seenFile.sha256 }],
    loadImage: async () => blank,
    onProgress: (done, total) => report({ stage: 'evaluate-blank', done, total }),
  });
  lap('evaluate-blank');
  const trainedRun = trainedEval.run;
  const blankRun = blankEval.run;
  const [seen, unseen] = trainedEval.scores;
  const [blankSeen] = blankEval.scores;

  // 10. Save as a LLaVA checkpoint folder, reload it with the folder loader, and compare answers.
  report({ stage: 'save', done: 0, total: 1 });
  const modelDir = join(out, 'model');
  await saveLlavaCheckpoint(modelDir, model, {
    imageTokenId,
    imageToken: IMAGE_TOKEN,
    chatTemplate: MAIN_JOB_CHAT_TEMPLATE,
    files: tokenizer.hfTokenizerFiles({ modelMaxLength: 256 }),
  });
  report({ stage: 'save', done: 1, total: 1 });
  lap('save');
  const reload = await reloadCheck(modelDir, runtime, model, seenFile.items.slice(0, 12), loadImage, (done, total) =>
    report({ stage: 'reload-check', done, total }),
  );
  lap('reload-check');

  // 11. Reports.
  report({ stage: 'report', done: 0, total: 1 });
  const evalFiles = await writeReports(join(out, 'eval-report'), [trainedRun, blankRun], {
    title: 'Vlit main job: trained model on the held-out world benchmark',
  });
  await composed.dispose();
  await tower.release();
  seconds.total = (performance.now() - t0) / 1000;
  const params = {
    projector: Object.values(connectorWeights).reduce((s, t) => s + count(t), 0),
    languageModel: Object.values(llamaWeights).reduce((s, t) => s + count(t), 0),
    encoder: [...towerParts.weights.values()].reduce((s, t) => s + count(t), 0),
  };
  const firstLast = (r: typeof r1): { firstLoss: number; lastLoss: number } => ({
    firstLoss: r.metrics[0]?.loss ?? Number.NaN,
    lastLoss: r.metrics[r.metrics.length - 1]?.loss ?? Number.NaN,
  });
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
      encoder: pretrained
        ? `Vlit tiny ViT (CLIP layout) ${settings.imageSize}px, patch ${settings.patchSize}, width ${frozen.vit.hiddenSize} (${handSetWidth(settings.imageSize, settings.patchSize)} hand-set + ${settings.visionPretrain?.width} learned channels), ${frozen.vit.numLayers} layers, feature layer ${frozen.featureLayer}, CLS dropped`
        : `Vlit tiny ViT (CLIP layout) ${settings.imageSize}px, patch ${settings.patchSize}, width ${frozen.vit.hiddenSize}, feature layer ${frozen.featureLayer} (hidden state 0), CLS dropped`,
      encoderNote: pretrained
        ? "stage 0 pretrained its learned channels on rendered scenes with the shape of each object at the patch holding its centre (a linear head, masked cross-entropy, AdamW); the layers never write the hand-set channels (mean colour of each 2x2-pixel cell, patch row and column, brightness anchors), so the features carry them as hidden state 0 does; then frozen with features cached for LLaVA's stages, as LLaVA keeps its CLIP tower frozen"
        : "frozen, features cached (LLaVA keeps its tower frozen); its embedding weights are set by hand to patch statistics (mean colour of each 2x2-pixel cell, patch row and column, brightness anchors), the fixed-encoder approach of the trainer's learning test in a form the checkpoint folder carries as a CLIPVisionModel. Seeded random ViT weights were measured too weak: blank images scored as well as real ones",
      visualTokens,
      vocabSize: tokenizer.vocabSize,
      parameters: params,
    },
    training: {
      stage0: pretrained
        ? {
            steps: settings.visionPretrain?.steps ?? 0,
            scenes: settings.visionPretrain?.scenes ?? 0,
            firstLoss: pretrained.firstLoss,
            lastLoss: pretrained.lastLoss,
            heldoutShapeAccuracy: pretrained.heldoutAccuracy,
            chance: pretrained.chance,
            heldoutPatches: pretrained.labelledPatches.heldout,
          }
        : null,
      stage1: { steps: r1.steps, samples: trained.stage1.samples, rejected: trained.stage1.rejected, ...firstLast(r1) },
      stage2: { steps: r2.steps, samples: trained.stage2.samples, rejected: trained.stage2.rejected, ...firstLast(r2) },
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
      const request = {
        messages: [{ role: 'user' as const, content: [{ type: 'image' as const }, { type: 'text' as const, text: it.question }] }],
        images: [await loadImage(it.images[0])],
      };
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
