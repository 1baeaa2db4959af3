// Streaming LLaVA JSON array -> canonical JSONL with @vlit/data (convertFile with the workers it uses
// by default on this machine, and again on one thread with workers: 0), against a baseline that reads
// the whole file, parses it with JSON.parse, maps each record with the same decodeRecord,
// JSON.stringify's it and writes it, on the same generated file in the same run. Each runs in its own
// child process so one's heap cannot colour another's peak RSS. With --repeat N the three alternate N
// times and medians are reported (the CPU may be shared: ratios come from the same run; CPU seconds,
// user + system, are shown beside wall seconds as they suffer less from other jobs).
//   node bench/data-stream.mjs [--records 1000000] [--repeat 1] [--keep]
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, createWriteStream, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i === -1 ? fallback : args[i + 1];
};

if (args[0] === '--child') {
  await child(args[1], args[2], args[3]);
  process.exit(0);
}

const records = Number(opt('--records', process.env.VLIT_BENCH_RECORDS ?? 1_000_000));
const dir = mkdtempSync(join(tmpdir(), 'vlit-bench-data-'));
const input = join(dir, 'llava.json');
try {
  const t0 = performance.now();
  await generate(input, records);
  const size = statSync(input).size;
  console.log(
    `generated ${records.toLocaleString('en')} LLaVA records, ${(size / 1e6).toFixed(1)} MB, in ${((performance.now() - t0) / 1000).toFixed(1)} s (${input})`,
  );

  const self = fileURLToPath(import.meta.url);
  const run = async (mode, extra = []) => {
    const out = join(dir, `${mode}.jsonl`);
    const r = spawnSync(process.execPath, [...extra, self, '--child', mode, input, out], { encoding: 'utf8', maxBuffer: 1 << 20 });
    if (r.status !== 0) {
      const lines = (r.stderr || r.stdout || '').split('\n');
      const why = lines.find((l) => /Error|heap|memory/i.test(l)) ?? `exit ${r.status ?? r.signal}`;
      return { mode, error: why.trim() };
    }
    const res = JSON.parse(r.stdout.trim().split('\n').pop());
    const hash = res.written ? await hashFile(out) : undefined;
    if (!args.includes('--keep')) rmSync(out, { force: true });
    return { ...res, hash };
  };
  const repeat = Math.max(1, Number(opt('--repeat', 1)));
  const runs = { stream: [], stream1: [], baseline: [] };
  for (let r = 0; r < repeat; r++) {
    runs.stream.push(await run('stream'));
    runs.stream1.push(await run('stream1'));
    runs.baseline.push(await run('baseline', ['--max-old-space-size=16384']));
  }
  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  const summarise = (list) => {
    const bad = list.find((r) => r.error);
    if (bad) return bad;
    return {
      ...list[0],
      ms: median(list.map((r) => r.ms)),
      cpuMs: median(list.map((r) => r.cpuMs)),
      maxRssKB: Math.max(...list.map((r) => r.maxRssKB)),
      hashes: list.map((r) => r.hash),
    };
  };
  const stream = summarise(runs.stream);
  const stream1 = summarise(runs.stream1);
  const baseline = summarise(runs.baseline);
  const hashes = [...(stream.hashes ?? []), ...(stream1.hashes ?? []), ...(baseline.hashes ?? [])];
  const hs = hashes[0];
  const rows = [];
  const names = {
    stream: `@vlit/data convertFile (streaming, ${stream.workers ?? '?'} worker(s) + main thread)`,
    stream1: '@vlit/data convertFile (streaming, workers: 0)',
    baseline: 'readFile + JSON.parse + decodeRecord + stringify (baseline)',
  };
  for (const r of [stream, stream1, baseline]) {
    if (r.error) {
      rows.push({ method: r.mode, 'records/s': '-', 'peak RSS MB': '-', note: `failed: ${r.error.slice(0, 120)}` });
      continue;
    }
    rows.push({
      method: names[r.mode],
      records: r.read,
      written: r.written,
      seconds: +(r.ms / 1000).toFixed(2),
      'CPU s': +(r.cpuMs / 1000).toFixed(2),
      'records/s': Math.round(r.read / (r.ms / 1000)),
      'records/CPU s': Math.round(r.read / (r.cpuMs / 1000)),
      'peak RSS MB': Math.round(r.maxRssKB / 1024),
    });
  }
  console.table(rows);
  if (!stream.error && !baseline.error) {
    console.log(
      `peak RSS: streaming ${Math.round(stream.maxRssKB / 1024)} MB vs baseline ${Math.round(baseline.maxRssKB / 1024)} MB (${(baseline.maxRssKB / stream.maxRssKB).toFixed(1)}x less)`,
    );
    console.log(
      `speed (median of ${repeat}): ${(baseline.ms / stream.ms).toFixed(2)}x the baseline's records/s (wall), ${(baseline.cpuMs / stream.cpuMs).toFixed(2)}x per CPU second`,
    );
    if (!stream1.error) {
      console.log(
        `on one thread (workers: 0): ${(baseline.ms / stream1.ms).toFixed(2)}x the baseline (wall); the workers make it ${(stream1.ms / stream.ms).toFixed(2)}x faster`,
      );
    }
    const same = hashes.every((h) => h === hs);
    console.log(`outputs identical (all ${hashes.length} runs): ${same} (sha256 ${String(hs).slice(0, 16)}...)`);
    if (!same) process.exitCode = 1;
  }
  if (stream1.error) process.exitCode = 1;
  if (!stream.error) {
    const ok = stream.maxRssKB / 1024 < 300;
    console.log(`streaming peak RSS under 300 MB: ${ok ? 'yes' : 'NO'}`);
    if (!ok) process.exitCode = 1;
  } else process.exitCode = 1;
} finally {
  if (!args.includes('--keep')) rmSync(dir, { recursive: true, force: true });
}

async function hashFile(file) {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk);
  return h.digest('hex');
}

async function child(mode, input, output) {
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  let read = 0;
  let written = 0;
  let workers;
  if (mode === 'stream' || mode === 'stream1') {
    const { convertFile, defaultConvertWorkers } = await import('@vlit/data/node');
    // what convertFile uses by default on this machine for a file this large, named so the table can say it
    workers = mode === 'stream' ? defaultConvertWorkers() : 0;
    const stats = await convertFile({ input, output, from: 'llava', to: 'vlit', rejects: `${output}.rejects`, workers });
    read = stats.read;
    written = stats.written;
  } else {
    const { decodeRecord, llavaDialect } = await import('@vlit/data');
    const all = JSON.parse(readFileSync(input, 'utf8'));
    // the whole output would pass V8's 512 MiB string limit: write it in batches
    const fd = openSync(output, 'w');
    let buf = '';
    for (let i = 0; i < all.length; i++) {
      buf += `${JSON.stringify(decodeRecord(llavaDialect, all[i], { file: input, index: i }))}\n`;
      read++;
      written++;
      if (buf.length > 1 << 20) {
        writeSync(fd, buf);
        buf = '';
      }
    }
    writeSync(fd, buf);
    closeSync(fd);
  }
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  process.stdout.write(
    `${JSON.stringify({ mode, workers, read, written, ms, cpuMs: (cpu.user + cpu.system) / 1000, maxRssKB: process.resourceUsage().maxRSS })}\n`,
  );
}

async function generate(file, n) {
  const { createRng } = await import('@vlit/core');
  const rng = createRng('bench-data-stream');
  const words =
    'the a dog cat person bicycle red blue green small large near left right behind table street sky water tree car bus sign two three several standing sitting holding looking wearing next to on under of in with and is are what where how many color'.split(
      ' ',
    );
  const sentence = (k) => {
    const out = [];
    for (let i = 0; i < k; i++) out.push(rng.choice(words));
    return out.join(' ');
  };
  const out = createWriteStream(file);
  const write = (s) => (out.write(s) ? undefined : new Promise((r) => out.once('drain', r)));
  let buf = '[';
  for (let i = 0; i < n; i++) {
    const kind = i % 10;
    const images =
      kind === 0
        ? []
        : kind === 1
          ? [`coco/train2017/${String(i).padStart(12, '0')}.jpg`, `coco/train2017/${String(i + 1).padStart(12, '0')}.jpg`]
          : [`coco/train2017/${String(i).padStart(12, '0')}.jpg`];
    const turns = 1 + rng.int(0, 3);
    const conversations = [];
    for (let t = 0; t < turns; t++) {
      const q = `${sentence(6 + rng.int(0, 6))}?`;
      conversations.push({ from: 'human', value: t === 0 && images.length ? `${'<image>\n'.repeat(images.length)}${q}` : q });
      conversations.push({ from: 'gpt', value: `${sentence(12 + rng.int(0, 20))}.` });
    }
    const rec = { id: String(i).padStart(12, '0') };
    if (images.length === 1) rec.image = images[0];
    else if (images.length > 1) rec.image = images;
    rec.conversations = conversations;
    buf += (i ? ',' : '') + JSON.stringify(rec);
    if (buf.length > 1 << 20) {
      await write(buf);
      buf = '';
    }
  }
  buf += ']';
  await write(buf);
  await new Promise((resolve, reject) => out.end((err) => (err ? reject(err) : resolve())));
}
