// The command tree (issue #12 item 1): every subcommand's --help, one real invocation of each against
// fixtures generated here (a COCO-style fixture, a world benchmark, a tiny LLaVA checkpoint folder saved
// by @vlit/models, a real server on 127.0.0.1), bad flags and missing files, --json, --config, the
// progress bars' TTY and quiet paths, and the generated reference in docs/cli.md. Runs the BUILT binary.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planMixture } from '@vlit/data';
import { writeWorldDataset, type WrittenFixture } from '@vlit/data/node';
import { createSharpCodec } from '@vlit/runtime/node';
import { llavaRecipe } from '@vlit/trainer';
import { loadSeedBenchFile } from '@vlit/eval/node';
import { COMMANDS } from './main.js';
import {
  BUILT_CLI,
  expectOneLine,
  readJsonLines,
  qaRecords,
  spawnVlit,
  toJsonLines,
  vlit as vlitInProcess,
  writeCocoFixture,
  writeTinyLlavaFolder,
  type Run,
} from './testing/harness.js';
import { createProgressBars } from './progress.js';
import { REFERENCE_END, REFERENCE_START, renderCliReference, replaceReferenceSection } from './reference.js';
import { configSchema } from './define.js';

const PKG = join(dirname(fileURLToPath(import.meta.url)), '..');
const ROOT = join(PKG, '..', '..');

/** The built binary with no API key in its environment, so no test reaches out with a real one. */
function vlit(...args: string[]): Promise<Run> {
  return spawnVlit(args, { env: { VLIT_API_KEY: '' } });
}

let dir: string;
let coco: WrittenFixture;
let benchmark: string;
let benchmarkItems: number;
let benchmarkDims: string[];
let worldDir: string;
let modelDir: string;

beforeAll(async () => {
  expect(existsSync(BUILT_CLI)).toBe(true);
  dir = await mkdtemp(join(tmpdir(), 'vlit-commands-'));
  ({ paths: coco } = await writeCocoFixture(dir, { images: 12, seed: 3, faultsEach: 1 }));
  const world = await writeWorldDataset(join(dir, 'world'), { scenes: 2, heldoutScenes: 3, runtime: { images: createSharpCodec() }, seed: 5 });
  benchmark = join(world.dir, world.files.benchmark);
  worldDir = world.dir;
  const parsed = JSON.parse(await readFile(benchmark, 'utf8')) as { questions: { question_type_id: number | string }[]; question_type: Record<string, number> };
  benchmarkItems = parsed.questions.length;
  benchmarkDims = [...new Set((await loadSeedBenchFile(benchmark)).items.map((i) => String(i.dimension)))].sort();
  modelDir = join(dir, 'model');
  await writeTinyLlavaFolder(modelDir, ['USER:', 'ASSISTANT:', 'the image shows', ...parsed.questions.map((q) => Object.values(q).join(' '))], {
    seed: 'cli',
    imageSize: 32,
    towerHidden: 32,
    lmHidden: 48,
    maxPositions: 1024,
  });
}, 300_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('every command: --help with a worked example, and bad flags', () => {
  // In process: a spawn per command costs seconds of module loading on a busy machine.
  const run = vlitInProcess;

  it('each command and group prints help with Usage and an Examples section; an unknown flag is one line, exit 2', async () => {
    for (const c of COMMANDS) {
      const help = await run(...c.name.split(' '), '--help');
      expect(help.code, c.name).toBe(0);
      expect(help.stdout).toContain(`Usage: vlit ${c.name}`);
      expect(help.stdout).toContain('Examples:\n');
      expect(c.spec.examples.length).toBeGreaterThan(0);
      for (const e of c.spec.examples) expect(/(^|\| |^\S+=\S* )vlit /.test(e.command), e.command).toBe(true);
      const bad = await run(...c.name.split(' '), '--no-such-flag');
      expectOneLine(bad, 2, `vlit ${c.name}:`, '--no-such-flag');
    }
    const group = await run('data', '--help');
    expect(group.code).toBe(0);
    for (const c of COMMANDS.filter((x) => x.name.startsWith('data '))) expect(group.stdout).toContain(c.name);
    expectOneLine(await run('data', 'frobnicate'), 2, "unknown command 'data frobnicate'");
    // The old top-level names still run (aliases), with the same help.
    expect((await run('convert', '--help')).stdout).toBe((await run('data', 'convert', '--help')).stdout);
    expect((await run('lint-template', '--help')).stdout).toContain('Usage: vlit data lint');
  });

  it('numeric flags: help prints the declared default; a bad value (argv or --config) is one line naming the flag, exit 2', async () => {
    const help = (await run('serve', '--help')).stdout;
    expect(help).toMatch(/--concurrency N +requests generating at once \(default 1\)/);
    expect(help).toMatch(/--port PORT +port \(0 picks a free one\) \(default 8000\)/);
    for (const [flag, value, says] of [
      ['--concurrency', '0', 'an integer >= 1'],
      ['--concurrency', '2.5', 'an integer >= 1'],
      ['--seed', 'x', 'an integer >= 0'],
      ['--seed', '', 'an integer >= 0'],
    ]) {
      expectOneLine(await run('data', 'generate', 'in.jsonl', '--out', join(dir, 'never'), flag, value), 2, `${flag} must be ${says}`, `'${value}'`);
    }
    expectOneLine(
      await run('data', 'mix', '--source', 'a=x.jsonl', '--out', join(dir, 'never.jsonl'), '--temperature=-1'),
      2,
      '--temperature must be a number >= 0',
    );
    const config = join(dir, 'numeric.config.json');
    await writeFile(config, JSON.stringify({ 'max-tokens': 0 }));
    expectOneLine(await run('data', 'lint', 'in.jsonl', '--tokenizer', dir, '--config', config), 2, '--max-tokens must be an integer >= 1', "'0'");
  });

  it('the built binary: --help, a data subcommand --help and a bad flag through the process (exit codes, stderr)', async () => {
    const top = await vlit('--help');
    expect(top.code).toBe(0);
    for (const c of COMMANDS) expect(top.stdout).toContain(c.name);
    expect((await vlit('data', 'mix', '--help')).stdout).toContain('vlit data mix --source a=a.jsonl@3');
    expectOneLine(await vlit('eval', '--bogus'), 2, 'vlit eval:', '--bogus');
  });
});

describe('vlit data adapt / qc / stats / mix / convert on a generated COCO-style fixture', () => {
  it('adapt: images = adapted + refused; every record carries the dataset and one of the requested tasks', async () => {
    const out = join(dir, 'adapted.jsonl');
    const run = await vlit('data', 'adapt', coco.annotations, out, '--dataset', 'cli-adapt', '--seed', '3', '--tasks', 'counting=1,caption=1', '--json');
    expect(run.code, run.stderr).toBe(0);
    const summary = JSON.parse(run.stdout) as { images: number; adapted: number; refused: number; records: number; byTask: Record<string, number> };
    const annotations = await readJsonLines(coco.annotations);
    expect(summary.images).toBe(annotations.length);
    expect(summary.adapted + summary.refused).toBe(summary.images);
    const records = await readJsonLines(out);
    expect(records).toHaveLength(summary.records);
    expect(Object.values(summary.byTask).reduce((a, b) => a + b, 0)).toBe(records.length);
    expect(new Set(records.map((r) => r.task))).toEqual(new Set(Object.keys(summary.byTask)));
    for (const r of records) {
      expect(['counting', 'caption']).toContain(r.task);
      expect((r.source as { dataset: string }).dataset).toBe('cli-adapt');
    }
    // Missing input: one typed line naming the file, exit 1.
    const missing = join(dir, 'nope.jsonl');
    expectOneLine(await vlit('data', 'adapt', missing, join(dir, 'x.jsonl'), '--dataset', 'x'), 1, 'VLIT_NOT_FOUND', missing);
    expectOneLine(await vlit('data', 'adapt', coco.annotations, join(dir, 'x.jsonl')), 2, '--dataset');
  });

  it('qc then stats (the new names) agree with the fixture manifest', async () => {
    const kept = join(dir, 'kept.jsonl');
    const qc = await vlit('data', 'qc', coco.records, '--root', coco.root, '--annotations', coco.annotations, '--out', kept, '--json');
    expect(qc.code, qc.stderr).toBe(0);
    const manifest = JSON.parse(await readFile(coco.manifest, 'utf8')) as { records: number; clean: string[]; faults: unknown[] };
    expect(JSON.parse(qc.stdout).counts).toMatchObject({ read: manifest.records, kept: manifest.clean.length, rejected: manifest.faults.length });
    const stats = await vlit('data', 'stats', kept, '--json');
    expect(stats.code, stats.stderr).toBe(0);
    expect((JSON.parse(stats.stdout) as { records: number }[])[0].records).toBe(manifest.clean.length);
  }, 300_000);

  it('mix: 3:1 weights over 40 draws give 30 and 10, every line copied from its source', async () => {
    const a = join(dir, 'mix-a.jsonl');
    const b = join(dir, 'mix-b.jsonl');
    await writeFile(a, `${Array.from({ length: 20 }, (_, i) => JSON.stringify({ id: `a${i}` })).join('\n')}\n`);
    await writeFile(b, `${Array.from({ length: 5 }, (_, i) => JSON.stringify({ id: `b${i}` })).join('\n')}\n`);
    const out = join(dir, 'mix.jsonl');
    const run = await vlit('data', 'mix', '--source', `a=${a}@3`, '--source', `b=${b}@1`, '--total', '40', '--out', out, '--seed', '1', '--json');
    expect(run.code, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout) as { total: number; strategy: string; sources: { name: string; samples: number }[] };
    // By hand: p = 3/4 and 1/4 of 40.
    expect(result).toMatchObject({ total: 40, strategy: 'weighted' });
    expect(result.sources.map((s) => [s.name, s.samples])).toEqual([
      ['a', 30],
      ['b', 10],
    ]);
    const lines = await readJsonLines(out);
    expect(lines.filter((l) => String(l.id).startsWith('a'))).toHaveLength(30);
    // b has 5 records drawn 10 times: two whole passes, each record exactly twice.
    const bCounts = new Map<string, number>();
    for (const l of lines.filter((x) => String(x.id).startsWith('b'))) bCounts.set(String(l.id), (bCounts.get(String(l.id)) ?? 0) + 1);
    expect([...bCounts.values()]).toEqual([2, 2, 2, 2, 2]);
    expect(
      planMixture({
        sources: [
          { name: 'a', size: 20, weight: 3 },
          { name: 'b', size: 5, weight: 1 },
        ],
        total: 40,
      }).sources.map((s) => s.samples),
    ).toEqual([30, 10]);
    expectOneLine(await vlit('data', 'mix', '--source', 'nameonly', '--out', out), 2, 'NAME=FILE');
  });

  it('--config supplies flags (validated by zod); the command line wins; a bad key is one line naming it', async () => {
    const config = join(dir, 'convert.config.json');
    await writeFile(config, JSON.stringify({ from: 'vlit', to: 'sharegpt', json: true }));
    const out = join(dir, 'from-config.json');
    const run = await vlit('data', 'convert', coco.records, out, '--config', config, '--rejects', join(dir, 'cfg-rejects.jsonl'));
    expect(run.code, run.stderr).toBe(0);
    const stats = JSON.parse(run.stdout) as { from: string; to: string; read: number; written: number; rejected: number };
    expect(stats).toMatchObject({ from: 'vlit', to: 'sharegpt' });
    expect(stats.written + stats.rejected).toBe(stats.read);
    const override = await vlit(
      'data',
      'convert',
      coco.records,
      join(dir, 'from-config-llava.json'),
      '--config',
      config,
      '--to',
      'llava',
      '--rejects',
      join(dir, 'cfg-rejects-2.jsonl'),
    );
    expect(JSON.parse(override.stdout)).toMatchObject({ to: 'llava' });
    const badKey = join(dir, 'bad.config.json');
    await writeFile(badKey, JSON.stringify({ form: 'vlit' }));
    expectOneLine(await vlit('data', 'convert', 'a', 'b', '--config', badKey), 1, 'VLIT_VALIDATION', badKey, "'form'");
    const badType = join(dir, 'bad-type.config.json');
    await writeFile(badType, JSON.stringify({ json: 'yes' }));
    expectOneLine(await vlit('data', 'convert', 'a', 'b', '--config', badType), 1, 'VLIT_VALIDATION', 'json');
    expect(configSchema(COMMANDS.find((c) => c.name === 'data mix')!.spec.flags).parse({ source: 'a=x.jsonl', total: 4 })).toEqual({
      source: ['a=x.jsonl'],
      total: '4',
    });
  });
});

describe('vlit data convert --workers', () => {
  it('the output, rejects and counts are the same on worker threads as on the main thread; a negative count is a usage error', async () => {
    const outputs: string[] = [];
    for (const workers of ['0', '2']) {
      const out = join(dir, `workers-${workers}.json`);
      const rejects = join(dir, `workers-${workers}-rejects.jsonl`);
      const run = await vlit('data', 'convert', '--from', 'vlit', '--to', 'sharegpt', coco.records, out, '--rejects', rejects, '--workers', workers, '--json');
      expect(run.code, run.stderr).toBe(0);
      const { read, written, rejected } = JSON.parse(run.stdout) as { read: number; written: number; rejected: number };
      expect(written).toBeGreaterThan(0);
      outputs.push(JSON.stringify({ read, written, rejected }), await readFile(out, 'utf8'), await readFile(rejects, 'utf8'));
    }
    expect(outputs.slice(3)).toEqual(outputs.slice(0, 3));
    expectOneLine(await vlit('data', 'convert', '--from', 'vlit', '--to', 'llava', coco.records, join(dir, 'w.json'), '--workers', '-1'), 2, '--workers');
  });
});

describe('vlit data convert with standard streams', () => {
  it('- reads stdin and writes stdout: the records come back converted, the summary on stderr', async () => {
    const records = qaRecords('s', 2);
    const input = `${toJsonLines(records)}{"id":"bad","messages":3}\n`;
    const rejects = join(dir, 'stream-rejects.jsonl');
    const run = await spawnVlit(['data', 'convert', '--from', 'vlit', '--to', 'llava', '-', '-', '--rejects', rejects], { stdin: input });
    expect(run.code, run.stderr).toBe(0);
    const out = run.stdout
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as { id: string; image: string; conversations: { from: string; value: string }[] });
    // By hand: LLaVA's layout of the two good records.
    expect(out.map((r) => [r.id, r.image, r.conversations])).toEqual(
      records.map((r) => [
        r.id,
        'a.png',
        [
          { from: 'human', value: r.messages[0].content },
          { from: 'gpt', value: r.messages[1].content },
        ],
      ]),
    );
    expect(run.stderr).toContain('read 3 = written 2 + rejected 1');
    expect((await readJsonLines(rejects)).map((r) => JSON.stringify(r)).join()).toContain('bad');
    expectOneLine(await vlit('data', 'convert', '--from', 'vlit', '--to', 'llava', coco.records, '-', '--json'), 2, '--json');
  });
});

describe('vlit data generate against a real HTTP teacher on 127.0.0.1', () => {
  it('writes one conversation per image and unit; planned = done + written + rejected + failed', async () => {
    let requests = 0;
    const server: Server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        requests++;
        const parsed = JSON.parse(body) as { model: string };
        const content = 'User: How many objects are there?\nAssistant: There are two objects.\nUser: What colour is the first?\nAssistant: It is red.';
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            id: 'x',
            object: 'chat.completion',
            created: 0,
            model: parsed.model,
            choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
            usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
          }),
        );
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const out = join(dir, 'generated');
      const generate = ['data', 'generate', coco.annotations, '--out', out, '--endpoint', `http://127.0.0.1:${port}/v1`, '--model', 'teacher'];
      const run = await vlit(...generate, '--types', 'dialogue=1', '--no-cache', '--json');
      expect(run.code, run.stderr).toBe(0);
      const s = JSON.parse(run.stdout) as { planned: number; alreadyDone: number; written: number; rejected: number; failed: number };
      expect(s.alreadyDone + s.written + s.rejected + s.failed).toBe(s.planned);
      expect(s.failed).toBe(0);
      expect(requests).toBe(s.written + s.rejected);
      const records = await readJsonLines(join(out, 'records.jsonl'));
      expect(records).toHaveLength(s.written);
      expect(s.written).toBeGreaterThan(0);
      expect((records[0].messages as { role: string }[]).map((m) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant']);
      // Rerun resumes: nothing new is asked.
      const again = await vlit(...generate, '--types', 'dialogue=1', '--no-cache', '--json');
      expect(JSON.parse(again.stdout)).toMatchObject({ alreadyDone: s.written + s.rejected, written: 0 });
    } finally {
      server.close();
    }
  }, 300_000);
});

describe('vlit eval, serve and export with a tiny LLaVA folder', () => {
  it('eval --model: every benchmark question scored, accuracy = mean of the per-question results, reports written', async () => {
    const out = join(dir, 'eval');
    const run = await vlit('eval', benchmark, '--model', modelDir, '--images', worldDir, '--out', out, '--json');
    expect(run.code, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout) as { items: number; accuracy: number; byDimension: Record<string, number>; files: { html: string; json: string } };
    expect(result.items).toBe(benchmarkItems);
    expect(Object.keys(result.byDimension).sort()).toEqual(benchmarkDims);
    expect(Number.isInteger(Math.round(result.accuracy * result.items * 1e6) / 1e6)).toBe(true);
    expect(existsSync(result.files.html) && existsSync(result.files.json)).toBe(true);
    expectOneLine(await vlit('eval', benchmark, '--out', out), 2, '--model');
    const missing = join(dir, 'no-bench.json');
    expectOneLine(await vlit('eval', missing, '--model', modelDir, '--out', out), 1, missing);
  }, 300_000);

  it('serve refuses without a token; with --no-auth on port 0 it answers /v1/models and a chat completion, eval --endpoint runs against it, SIGTERM exits 0', async () => {
    expectOneLine(await vlit('serve', modelDir, '--port', '0'), 2, '--no-auth', 'VLIT_API_KEY');
    const child = spawn(process.execPath, [BUILT_CLI, 'serve', modelDir, '--token', 'cli-test-token', '--port', '0', '--json'], {
      env: { ...process.env, VLIT_API_KEY: '' },
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      const first = await new Promise<string>((resolve, reject) => {
        let buf = '';
        child.stdout.on('data', (c: Buffer) => {
          buf += c.toString();
          if (buf.includes('\n')) resolve(buf.split('\n')[0]);
        });
        child.on('exit', () => reject(new Error(`serve exited early: ${stderr}`)));
      });
      const info = JSON.parse(first) as { url: string; host: string; port: number; model: string; auth: boolean };
      expect(info).toMatchObject({ host: '127.0.0.1', auth: true });
      expect(info.url).toBe(`http://127.0.0.1:${info.port}/v1`);
      expect((await fetch(`${info.url}/models`)).status).toBe(401);
      const models = await fetch(`${info.url}/models`, { headers: { authorization: 'Bearer cli-test-token' } });
      expect(models.status).toBe(200);
      expect(JSON.stringify(await models.json())).toContain(info.model);
      const chat = await fetch(`${info.url}/chat/completions`, {
        method: 'POST',
        headers: { authorization: 'Bearer cli-test-token', 'content-type': 'application/json' },
        body: JSON.stringify({ model: info.model, messages: [{ role: 'user', content: 'the image shows' }], max_tokens: 4 }),
      });
      expect(chat.status).toBe(200);
      const reply = (await chat.json()) as { choices: { message: { role: string; content: string } }[]; usage: { completion_tokens: number } };
      expect(reply.choices[0].message.role).toBe('assistant');
      expect(reply.usage.completion_tokens).toBeLessThanOrEqual(4);
      const out = join(dir, 'eval-remote');
      const remote = await spawnVlit(
        ['eval', benchmark, '--endpoint', info.url, '--model-name', info.model, '--images', worldDir, '--limit', '2', '--out', out, '--json'],
        { env: { VLIT_API_KEY: 'cli-test-token' } },
      );
      expect(remote.code, remote.stderr).toBe(0);
      expect(JSON.parse(remote.stdout)).toMatchObject({ items: 2, method: 'generate' });
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  }, 300_000);

  it('export --to llama-factory: the data as ShareGPT, its dataset_info.json entry and the YAML naming the model', async () => {
    const recipe = llavaRecipe({
      pretrainData: [{ name: 'captions', path: 'captions.jsonl' }],
      instructionData: [{ name: 'kept', path: 'kept.jsonl' }],
      seed: 1,
    });
    const recipeFile = join(dir, 'recipe.json');
    await writeFile(recipeFile, JSON.stringify(recipe));
    const data = join(dir, 'export-in.jsonl');
    const records = qaRecords('r', 3);
    await writeFile(data, toJsonLines(records));
    const out = join(dir, 'lf');
    const run = await vlit(
      'export',
      '--to',
      'llama-factory',
      '--recipe',
      recipeFile,
      '--data',
      data,
      '--model',
      modelDir,
      '--out',
      out,
      '--stage',
      '1',
      '--json',
    );
    expect(run.code, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout) as { dataFile: string; datasetInfoFile: string; yamlFile: string; command: string; stats: { written: number } };
    expect(result.stats.written).toBe(3);
    const written = JSON.parse(await readFile(result.dataFile, 'utf8')) as { messages: { role: string; content: string }[]; images: string[] }[];
    expect(written.map((r) => [r.images, r.messages.map((m) => `${m.role}:${m.content}`)])).toEqual(
      records.map((r) => [r.images, r.messages.map((m) => `${m.role}:${m.content}`)]),
    );
    const info = JSON.parse(await readFile(result.datasetInfoFile, 'utf8')) as Record<string, { formatting: string }>;
    expect(Object.values(info)[0].formatting).toBe('sharegpt');
    expect(await readFile(result.yamlFile, 'utf8')).toContain(modelDir);
    expect(result.command).toContain('llamafactory-cli train');
    const badRecipe = join(dir, 'bad-recipe.json');
    await writeFile(badRecipe, JSON.stringify({ name: 'x', stages: 'none' }));
    expectOneLine(
      await vlit('export', '--to', 'ms-swift', '--recipe', badRecipe, '--data', data, '--model', 'm', '--out', out),
      1,
      'VLIT_VALIDATION',
      badRecipe,
    );
    expectOneLine(await vlit('export', '--to', 'axolotl', '--recipe', recipeFile, '--data', data, '--model', 'm', '--out', out), 2, '--to');
  }, 300_000);
});

describe('progress bars', () => {
  class Sink extends Writable {
    text = '';
    isTTY: boolean;
    columns = 100;
    constructor(tty: boolean) {
      super();
      this.isTTY = tty;
    }
    override _write(chunk: Buffer, _enc: string, done: () => void): void {
      this.text += chunk.toString();
      done();
    }
  }

  it('draw a bar per stage on a TTY stream and nothing on a pipe', () => {
    const tty = new Sink(true);
    const bars = createProgressBars({ stdout: () => undefined, stderr: () => undefined, progress: tty });
    expect(bars.drawing).toBe(true);
    bars.onProgress({ stage: 'quality-control', done: 5, total: 10 });
    bars.onProgress({ stage: 'quality-control', done: 10, total: 10 });
    bars.stop();
    expect(tty.text).toContain('quality-control');
    expect(tty.text).toContain('10/10');
    const pipe = new Sink(false);
    const quiet = createProgressBars({ stdout: () => undefined, stderr: () => undefined, progress: pipe });
    quiet.onProgress({ stage: 'quality-control', done: 5, total: 10 });
    quiet.stop();
    expect(quiet.drawing).toBe(false);
    expect(pipe.text).toBe('');
  });
});

describe('docs/cli.md', () => {
  it('its reference section is exactly what the command definitions render (node scripts/cli-reference.mjs rewrites it)', async () => {
    const page = await readFile(join(ROOT, 'docs', 'cli.md'), 'utf8');
    expect(page).toContain(REFERENCE_START);
    expect(page).toContain(REFERENCE_END);
    expect(replaceReferenceSection(page, renderCliReference(COMMANDS))).toBe(page);
    for (const c of COMMANDS) expect(page).toContain(`### vlit ${c.name}`);
  });
});
