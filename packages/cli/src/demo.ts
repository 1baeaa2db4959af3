/**
 * Vlit's main job, on a laptop CPU, offline (`vlit demo [out]`, or `node examples/vlit-demo.mjs [out]`):
 *
 *  1. generate COCO-style annotations and images deterministically (captions, objects with boxes, regions, VQA, OCR),
 *     plus a noisy conversation source with planted faults (wrong counts, hallucinated objects, duplicates, corrupt
 *     images, escaping paths, ...), as a Self-Instruct-style source would be;
 *  2. Annotation Adaption: rewrite the annotations into instruction records with the template pools;
 *  3. quality control over everything: every rejected record is kept with its reason;
 *  4. the data-quality report (the review's characteristics: correctness, diversity, complexity, balance);
 *  5. the model path: a ViT encoder, an MLP connector and a tiny Llama-style decoder composed into one
 *     VisionLanguageModel, which answers a kept record's question (untrained weights: the point is the plumbing,
 *     and the visual-token plan that predicts memory before anything runs);
 *  6. evaluation, SEED-Bench style: multiple-choice questions about the kept images (scene: which caption;
 *     counting: how many), options ranked by the model's likelihood, per-dimension accuracy in the review's
 *     table layout and an HTML report with charts (an untrained model scores near chance, 25%).
 */
import { join, resolve } from 'node:path';
import { NotFoundError, type VlitRecord } from '@vlit/core';
import { prepareOutputDir, writeFileAtomic } from '@vlit/core/node';
import { createSharpCodec, createNodeRuntime } from '@vlit/runtime/node';
import {
  FIXTURE_FAULTS,
  computeDataQuality,
  createAnnotationAdapter,
  defaultQualityFilters,
  renderQualityMarkdown,
  runQualityControl,
  type QualityCounts,
} from '@vlit/data';
import { createRootImageLoader, generateCocoFixtureToDir, writeQualityReport, writeRecordsFile } from '@vlit/data/node';
import { buildWordLevelTokenizer, createBuiltinTemplate } from '@vlit/templates';
import { createVitEncoder, planVisualTokens } from '@vlit/encoders';
import { createMlpConnector } from '@vlit/connectors';
import { composeVisionLanguageModel, createLlamaDecoder, tinyLlamaConfig } from '@vlit/models';
import { annotationBenchmarkItems, createMultipleChoiceBenchmark, evaluate, renderResultsTable } from '@vlit/eval';
import { writeReports } from '@vlit/eval/node';
import { rejectLine } from './shared.js';

/** Options of `runDemo`. */
export interface DemoOptions {
  /**
   * Output directory. A new or empty folder is made Vlit's (a `.vlit-output` marker) and a Vlit-made one
   * is emptied first; a non-empty folder Vlit did not make is refused (ConflictError) unless `force`.
   */
  out: string;
  /** Write into a non-empty folder Vlit did not make: the demo's files are overwritten, nothing else is deleted. */
  force?: boolean;
  /** Receives each line of the human-readable log (without a newline). */
  onLog?: (line: string) => void;
}

/** What the demo produced, with counts that add up. */
export interface DemoResult {
  out: string;
  files: { adapted: string; kept: string; rejects: string; reportJson: string; reportMarkdown: string; coco: string; evalHtml: string; evalMarkdown: string };
  generated: { annotations: number; records: number };
  adaption: { written: number; refused: number; byTask: Record<string, number> };
  qualityControl: QualityCounts;
  model: { id: string; encoderTokens: number; decoderTokens: number; replyTokens: number };
  evaluation: { items: number; accuracy: number; byDimension: Record<string, number> };
}

function textOf(content: VlitRecord['messages'][number]['content']): string {
  return typeof content === 'string' ? content : content.map((p) => (p.type === 'text' ? p.text : '')).join(' ');
}

/** Run the whole demo flow (data -> QC -> report -> composed model) into `out`; logs through `onLog`. */
export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const out = resolve(options.out);
  const say = options.onLog ?? ((): void => undefined);
  const t0 = performance.now();
  // Never `rm -rf out`: a user's folder (or `.`) is refused unless forced, and even then only written into.
  await prepareOutputDir(out, { clean: true, force: options.force, owner: 'vlit demo' });
  const codec = createSharpCodec();

  // 1. Annotations, images and a noisy source.
  const root = join(out, 'coco');
  const { fixture } = await generateCocoFixtureToDir(root, {
    images: 60,
    seed: 7,
    codec,
    faults: Object.fromEntries(FIXTURE_FAULTS.map((f) => [f, 1])),
  });
  say(`1. generated ${fixture.annotations.length} annotated images and ${fixture.records.length} noisy-source records under ${root}`);

  // 2. Annotation Adaption.
  const adapter = createAnnotationAdapter({ dataset: 'vlit-demo-coco', seed: 7 });
  const adapted: VlitRecord[] = [];
  const adaptRejects: unknown[] = [];
  for await (const r of adapter.adaptAll(fixture.annotations, { onReject: (x) => adaptRejects.push(x) })) adapted.push(r);
  await writeRecordsFile(join(out, 'adapted.jsonl'), adapted, { dialect: 'vlit' });
  const tasks = new Map<string | undefined, number>();
  for (const r of adapted) tasks.set(r.task, (tasks.get(r.task) ?? 0) + 1);
  say(`2. annotation adaption wrote ${adapted.length} records, ${adaptRejects.length} images refused (${[...tasks].map(([t, n]) => `${t} ${n}`).join(', ')})`);

  // 3. Quality control over adapted + noisy records.
  const all = [...adapted, ...fixture.records];
  const qc = await runQualityControl(all, defaultQualityFilters(), {
    annotations: fixture.annotations,
    images: { codec, load: createRootImageLoader(root) },
  });
  await writeRecordsFile(join(out, 'kept.jsonl'), qc.kept, { dialect: 'vlit' });
  await writeFileAtomic(join(out, 'rejects.jsonl'), `${qc.rejects.map((r) => JSON.stringify(rejectLine(r))).join('\n')}\n`);
  say(`3. quality control: read ${qc.counts.read} = kept ${qc.counts.kept} + rejected ${qc.counts.rejected}`);
  for (const [reason, n] of Object.entries(qc.counts.byReason)) say(`     rejected ${n} x ${reason}`);

  // 4. Data-quality report.
  const reports = [
    await computeDataQuality(adapted, { name: 'annotation adaption', annotations: fixture.annotations }),
    await computeDataQuality(fixture.records, { name: 'noisy source', annotations: fixture.annotations }),
    await computeDataQuality(qc.kept, { name: 'mixed, after QC', annotations: fixture.annotations }),
  ];
  const written = await writeQualityReport(join(out, 'quality-report'), reports);
  say(`4. data-quality report:\n\n${renderQualityMarkdown(reports)}`);

  // 5. The model path: ViT -> MLP connector -> tiny Llama decoder, composed.
  const runtime = createNodeRuntime();
  const imageTokenText = '<|image_pad|>';
  const corpus = qc.kept.flatMap((r) => r.messages.map((m) => textOf(m.content)));
  const tokenizer = buildWordLevelTokenizer({ corpus, specialTokens: ['<|im_start|>', '<|im_end|>', imageTokenText], maxVocab: 4000 });
  const vit = { imageSize: 32, patchSize: 8, hiddenSize: 32, numLayers: 2, numHeads: 4 };
  const encoder = await createVitEncoder({ backend: runtime.backend, config: vit, seed: 1 });
  const model = composeVisionLanguageModel({
    encoder,
    connector: createMlpConnector({ inputDim: 32, hiddenDim: 48, outputDim: 48 }, { backend: runtime.backend, seed: 2 }),
    languageModel: await createLlamaDecoder({ backend: runtime.backend, config: tinyLlamaConfig({ hiddenSize: 48, vocabSize: tokenizer.vocabSize }), seed: 3 }),
    template: createBuiltinTemplate('chatml', { imageToken: imageTokenText }),
    tokenizer,
  });
  const sample = qc.kept.find((r) => r.images.length === 1 && r.task === 'counting') ?? qc.kept.find((r) => r.images.length === 1);
  if (!sample) throw new NotFoundError('no kept record with exactly one image to ask the model about', { details: { file: join(out, 'kept.jsonl') } });
  const ref = sample.images[0];
  const imagePath = typeof ref === 'string' ? ref : ref.path;
  const bytes = fixture.images.get(imagePath);
  if (!bytes) throw new NotFoundError(`image not in the fixture: ${imagePath}`, { details: { record: sample.id, field: 'images.0' } });
  const image = await codec.decode(bytes);
  const question = sample.messages.slice(0, 1);
  const reply = await model.generate({ messages: question, images: [image] }, { maxNewTokens: 12 });
  const answer = sample.messages[1]?.content;
  const [scoreRight, scoreWrong] = await model.score({ messages: question, images: [image] }, [
    typeof answer === 'string' ? answer : 'yes',
    'The image shows a spaceship.',
  ]);
  const encoderTokens = planVisualTokens({ width: 640, height: 480 }, encoder.plan).tokens;
  const decoderTokens = model.imageTokenCount({ width: 640, height: 480 });
  say(`5. composed ${model.id}`);
  say(
    `   visual tokens per image, planned before running: ${encoderTokens} from the encoder, ${decoderTokens} into the decoder; question: ${JSON.stringify(typeof question[0].content === 'string' ? question[0].content : '')}`,
  );
  say(`   untrained reply (${reply.usage.completionTokens} tokens): ${JSON.stringify(reply.text)}`);
  const perToken = (s: { logLikelihood: number; tokens: number }): string => (s.logLikelihood / s.tokens).toFixed(2);
  say(
    `   mean log-prob per token: reference answer ${perToken(scoreRight)} vs a wrong one ${perToken(scoreWrong)} (untrained weights: no real preference yet)`,
  );

  // 6. Evaluation: SEED-Bench-style multiple choice over the kept images, ranked by likelihood.
  const keptImages = new Set(qc.kept.flatMap((r) => r.images.map((i) => (typeof i === 'string' ? i : i.path))));
  const items = annotationBenchmarkItems(
    fixture.annotations.filter((a) => keptImages.has(a.file)),
    7,
  );
  const benchmark = createMultipleChoiceBenchmark({ id: 'demo-seed', items, method: 'likelihood' });
  const run = await evaluate({
    model,
    benchmarks: [benchmark],
    name: 'untrained ViT + MLP + Llama',
    loadImage: async (img) => {
      const data = typeof img === 'string' ? fixture.images.get(img) : img.bytes;
      if (!data) throw new NotFoundError(`benchmark image not in the fixture: ${String(img)}`, { details: { field: 'images' } });
      return codec.decode(data);
    },
  });
  const evalFiles = await writeReports(join(out, 'eval-report'), [run], { title: 'Vlit demo evaluation' });
  const result = run.benchmarks[0];
  const byDimension = Object.fromEntries(Object.entries(result.groups).map(([k, v]) => [k, v.accuracy]));
  say(
    `6. evaluation on ${items.length} multiple-choice questions (likelihood ranking; chance is 25%, though an untrained model's language prior can beat it on some dimensions):\n\n${renderResultsTable([run])}`,
  );

  say(
    `\nOutputs in ${out}: adapted.jsonl, kept.jsonl, rejects.jsonl, quality-report.md/.json, eval-report/ (report.html, .md, .json), coco/ (images + annotations)`,
  );
  say(`done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  return {
    out,
    files: {
      adapted: join(out, 'adapted.jsonl'),
      kept: join(out, 'kept.jsonl'),
      rejects: join(out, 'rejects.jsonl'),
      reportJson: written.json,
      reportMarkdown: written.markdown,
      coco: root,
      evalHtml: evalFiles.html,
      evalMarkdown: evalFiles.markdown,
    },
    generated: { annotations: fixture.annotations.length, records: fixture.records.length },
    adaption: { written: adapted.length, refused: adaptRejects.length, byTask: Object.fromEntries([...tasks].map(([t, n]) => [String(t), n])) },
    qualityControl: qc.counts,
    model: { id: model.id, encoderTokens, decoderTokens, replyTokens: reply.usage.completionTokens },
    evaluation: { items: items.length, accuracy: result.metrics.accuracy, byDimension },
  };
}
