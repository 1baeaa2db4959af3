/**
 * Helpers of the CLI's tests (not exported, not built): `vlit` run in-process with buffered streams or as
 * the built binary in a child process, a JSON Lines reader, the one-line failure check, a COCO-style fixture with
 * planted faults, and a tiny LLaVA checkpoint folder (Vlit's ViT in CLIP layout + MLP projector +
 * Llama decoder with seeded weights, a word-level tokenizer and a USER/ASSISTANT chat template).
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { createMlpConnector } from '@vlit/connectors';
import { createHfVisionEncoder, createVitWeights, resolveVitConfig } from '@vlit/encoders';
import { composeVisionLanguageModel, createLlamaDecoder, tinyLlamaConfig } from '@vlit/models';
import { saveLlavaCheckpoint, vitAsHfVisionTower } from '@vlit/models/node';
import { createNodeRuntime, createSharpCodec } from '@vlit/runtime/node';
import { FIXTURE_FAULTS, type FixtureFault } from '@vlit/data';
import { generateCocoFixtureToDir } from '@vlit/data/node';
import { buildWordLevelTokenizer, createJinjaChatTemplate } from '@vlit/templates';
import { runCli } from '../main.js';

/** What a `vlit` run gave. */
export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run `vlit argv…` in this process (runCli with buffered streams): a spawn per call costs seconds of module loading on a busy machine. */
export async function vlit(...argv: string[]): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, {
    stdout: (t) => {
      stdout += t;
    },
    stderr: (t) => {
      stderr += t;
    },
  });
  return { code, stdout, stderr };
}

/** The BUILT binary, which the spawning tests run as users do. */
export const BUILT_CLI = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'cli.js');

/** Where and with what extra environment `spawnVlit` runs (VLIT_DEBUG is always cleared, so failures stay one line). */
export interface SpawnOptions {
  cwd?: string;
  env?: Record<string, string>;
  /** Written to the child's stdin, which is then closed. */
  stdin?: string;
}

/** Run the built `vlit args…` as a child process; it is killed after 4 minutes, so a command that hangs (a FIFO, a lock) fails its test instead of wedging the run. */
export function spawnVlit(args: readonly string[], options: SpawnOptions = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [BUILT_CLI, ...args],
      { cwd: options.cwd, timeout: 240_000, maxBuffer: 64 << 20, env: { ...process.env, VLIT_DEBUG: '', ...options.env } },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    if (options.stdin !== undefined) child.stdin?.end(options.stdin);
  });
}

/** The objects of a JSON Lines file (blank lines skipped). */
export async function readJsonLines(file: string): Promise<Record<string, unknown>[]> {
  return (await readFile(file, 'utf8'))
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** `count` one-image question/answer records with ids `${idPrefix}1`, `${idPrefix}2`, …: the smallest canonical records a command accepts. */
export function qaRecords(idPrefix: string, count: number) {
  return Array.from({ length: count }, (_, k) => ({
    id: `${idPrefix}${k + 1}`,
    images: ['a.png'],
    messages: [
      { role: 'user', content: `<image>\nQ${k + 1}` },
      { role: 'assistant', content: `A${k + 1}` },
    ],
  }));
}

/** Records as JSON Lines text: one object a line, newline-terminated. */
export function toJsonLines(records: readonly unknown[]): string {
  return `${records.map((r) => JSON.stringify(r)).join('\n')}\n`;
}

/** A failure as promised: the exit code and one error line naming the needles (usage errors, exit 2, add the --help pointer). */
export function expectOneLine(run: Run, code: number, ...needles: string[]): void {
  expect(run.code, run.stderr).toBe(code);
  const lines = run.stderr.trim().split('\n');
  expect(lines.length, run.stderr).toBe(code === 2 ? 2 : 1);
  for (const n of needles) expect(lines[0]).toContain(n);
}

/** Sizes of a COCO-style fixture. */
export interface CocoFixtureOptions {
  images: number;
  seed: number;
  /** How many times each of @vlit/data's planted faults occurs. */
  faultsEach: number;
}

/** Write @vlit/data's COCO-style fixture (images through sharp) into `dir/coco`, every planted fault `faultsEach` times. */
export function writeCocoFixture(dir: string, o: CocoFixtureOptions): ReturnType<typeof generateCocoFixtureToDir> {
  const faults = Object.fromEntries(FIXTURE_FAULTS.map((f) => [f, o.faultsEach])) as Record<FixtureFault, number>;
  return generateCocoFixtureToDir(join(dir, 'coco'), { images: o.images, seed: o.seed, codec: createSharpCodec(), faults });
}

/** The tiny folders' chat template (Vicuna-style USER/ASSISTANT turns). */
export const TINY_CHAT_TEMPLATE =
  "<s>{% for message in messages %}{% if message['role'] == 'user' %}USER: {{ message['content'] }} {% else %}ASSISTANT: {{ message['content'] }}</s>{% endif %}{% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}";

/** Sizes of a tiny LLaVA folder. */
export interface TinyLlavaOptions {
  /** Seed prefix of every weight. */
  seed: string;
  imageSize: number;
  towerHidden: number;
  lmHidden: number;
  /** Decoder layers (default: tinyLlamaConfig's). */
  lmLayers?: number;
  maxPositions: number;
}

/** Write a tiny LLaVA checkpoint folder at `out` whose word-level vocabulary covers `corpus`. */
export async function writeTinyLlavaFolder(out: string, corpus: string[], o: TinyLlavaOptions): Promise<void> {
  const runtime = createNodeRuntime();
  const tokenizer = buildWordLevelTokenizer({ corpus, specialTokens: ['<pad>', '<s>', '</s>', '<image>'], roles: { bos: '<s>', eos: '</s>', pad: '<pad>' } });
  const vit = resolveVitConfig({
    imageSize: o.imageSize,
    patchSize: 8,
    hiddenSize: o.towerHidden,
    numLayers: 2,
    numHeads: o.towerHidden >= 32 ? 4 : 2,
    intermediateSize: 2 * o.towerHidden,
    hiddenAct: 'quick_gelu',
  });
  const { spec, weights } = vitAsHfVisionTower(vit, createVitWeights(vit, `${o.seed}-vit`));
  const tower = await createHfVisionEncoder({ backend: runtime.backend, spec, weights, featureLayer: -2, selectStrategy: 'default' });
  const connector = createMlpConnector({ inputDim: o.towerHidden, outputDim: o.lmHidden }, { backend: runtime.backend, seed: `${o.seed}-mlp` });
  const languageModel = await createLlamaDecoder({
    config: tinyLlamaConfig({
      hiddenSize: o.lmHidden,
      vocabSize: tokenizer.vocabSize,
      intermediateSize: 2 * o.lmHidden,
      ...(o.lmLayers !== undefined ? { numHiddenLayers: o.lmLayers, numAttentionHeads: 2, numKeyValueHeads: 1 } : {}),
      bosTokenId: tokenizer.tokenToId('<s>'),
      eosTokenId: tokenizer.tokenToId('</s>'),
      maxPositionEmbeddings: o.maxPositions,
    }),
    seed: `${o.seed}-llama`,
    backend: runtime.backend,
  });
  const template = createJinjaChatTemplate({ source: TINY_CHAT_TEMPLATE, name: `${o.seed}-test`, imageToken: '<image>', contentFormat: 'string' });
  const model = composeVisionLanguageModel({ encoder: tower, connector, languageModel, template, tokenizer });
  await saveLlavaCheckpoint(out, model, {
    imageTokenId: tokenizer.tokenToId('<image>') as number,
    imageToken: '<image>',
    chatTemplate: TINY_CHAT_TEMPLATE,
    files: tokenizer.hfTokenizerFiles({ modelMaxLength: o.maxPositions }),
  });
  await tower.release();
  await connector.dispose();
  await languageModel.dispose();
}
