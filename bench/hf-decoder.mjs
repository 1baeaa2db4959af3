// A ~100M-parameter Llama-architecture checkpoint folder (random init by transformers, saved with
// save_pretrained): load time, peak RSS, prefill and decode tokens/s for Vlit (loadHfLanguageModel on
// onnxruntime-node) against transformers eager on CPU, with the same thread count, in this same run.
// Each measurement runs in a fresh child process, whose VmHWM (peak resident set) is read at the end.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const python = process.env.VLIT_PYTHON ?? resolve(here, '..', '.venv', 'bin', 'python');
// One thread each by default: on a shared 2-core machine two OpenMP threads per process oversubscribe and
// torch's decode collapses (measured 0.7 tok/s at 2 threads vs 6 at 1), which would flatter Vlit.
const THREADS = Number(process.env.BENCH_THREADS ?? 1);
const PREFILL = 128;
const DECODE = 64;

function vmHwmMiB() {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return Number(m[1]) / 1024;
}
function vmRssMiB() {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return Number(m[1]) / 1024;
}

function promptIds(vocab) {
  // Deterministic, spread over the vocabulary.
  return Array.from({ length: PREFILL }, (_, i) => (i * 7919 + 13) % vocab);
}

// ------------------------------------------------------------------------------------------------
// Children

async function vlitChild(dir, mode) {
  const { createTensor } = await import('@vlit/core');
  const { loadHfLanguageModel } = await import('@vlit/models/node');
  const { argmax } = await import('@vlit/models');
  const { createNodeRuntime } = await import('@vlit/runtime/node');
  const runtime = createNodeRuntime({ session: { intraOpThreads: THREADS, interOpThreads: 1 } });
  const rssBefore = vmRssMiB();
  const t0 = performance.now();
  const model = await loadHfLanguageModel(dir, { runtime });
  const loadMs = performance.now() - t0;
  const out = { loadMs, rssBeforeMiB: rssBefore, rssAfterMiB: vmRssMiB() };
  if (mode === 'speed') {
    const ids = promptIds(model.vocabSize);
    const input = createTensor('int64', [1, ids.length], ids.map(BigInt));
    // One warm-up pass, as transformers gets one too.
    (await model.forward({ inputIds: input })).cache?.dispose();
    const t1 = performance.now();
    let step = await model.forward({ inputIds: input });
    out.prefillMs = performance.now() - t1;
    const vocab = model.vocabSize;
    let next = argmax(step.logits.data.subarray((ids.length - 1) * vocab, ids.length * vocab));
    const t2 = performance.now();
    for (let i = 0; i < DECODE; i++) {
      const s = await model.forward({ inputIds: createTensor('int64', [1, 1], [BigInt(next)]), cache: step.cache });
      step.cache?.dispose();
      step = s;
      next = argmax(step.logits.data.subarray(0, vocab));
    }
    out.decodeMs = performance.now() - t2;
    step.cache?.dispose();
  }
  await model.dispose();
  out.peakMiB = vmHwmMiB();
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

const PY_CHILD = String.raw`
import json, re, sys, time
def status(key):
    return int(re.search(key + r":\s+(\d+) kB", open("/proc/self/status").read()).group(1)) / 1024
import torch
from transformers import AutoModelForCausalLM
torch.set_num_threads(int(sys.argv[3]))
folder, mode = sys.argv[1], sys.argv[2]
prefill, decode = int(sys.argv[4]), int(sys.argv[5])
out = {"rssBeforeMiB": status("VmRSS")}
t0 = time.perf_counter()
model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval()
out["loadMs"] = (time.perf_counter() - t0) * 1000
out["rssAfterMiB"] = status("VmRSS")
if mode == "speed":
    vocab = model.config.vocab_size
    ids = torch.tensor([[(i * 7919 + 13) % vocab for i in range(prefill)]])
    with torch.inference_mode():
        model(input_ids=ids, use_cache=True)
        t1 = time.perf_counter()
        step = model(input_ids=ids, use_cache=True)
        out["prefillMs"] = (time.perf_counter() - t1) * 1000
        nxt = step.logits[0, -1].argmax()
        past = step.past_key_values
        t2 = time.perf_counter()
        for _ in range(decode):
            step = model(input_ids=nxt.view(1, 1), past_key_values=past, use_cache=True)
            past = step.past_key_values
            nxt = step.logits[0, -1].argmax()
        out["decodeMs"] = (time.perf_counter() - t2) * 1000
out["peakMiB"] = status("VmHWM")
print(json.dumps(out))
`;

// ------------------------------------------------------------------------------------------------
// Parent

const GEN = String.raw`
import sys, torch
from transformers import LlamaConfig, LlamaForCausalLM
torch.manual_seed(0)
config = LlamaConfig(vocab_size=32000, hidden_size=768, intermediate_size=2048, num_hidden_layers=8,
                     num_attention_heads=12, num_key_value_heads=4, max_position_embeddings=2048,
                     tie_word_embeddings=False)
model = LlamaForCausalLM(config)
model.save_pretrained(sys.argv[1])
print(sum(p.numel() for p in model.parameters()))
`;

function run(cmd, args, env = {}) {
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    timeout: 1_800_000,
    env: { ...process.env, OMP_NUM_THREADS: String(THREADS), ...env },
  });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stderr}`);
  return r.stdout;
}

function lastJson(stdout) {
  const line = stdout
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .pop();
  return JSON.parse(line);
}

async function main() {
  const work = mkdtempSync(join(tmpdir(), 'vlit-bench-hf-'));
  try {
    const dir = join(work, 'llama-100m');
    const gen = join(work, 'gen.py');
    writeFileSync(gen, GEN);
    const params = Number(run(python, [gen, dir]).trim().split('\n').pop());
    const weightBytes = readdirSync(dir)
      .filter((f) => f.endsWith('.safetensors'))
      .reduce((s, f) => s + statSync(join(dir, f)).size, 0);
    const weightsMiB = weightBytes / 2 ** 20;
    const pyChild = join(work, 'child.py');
    writeFileSync(pyChild, PY_CHILD);
    const vlit = (mode) => lastJson(run(process.execPath, [fileURLToPath(import.meta.url), '--child', dir, mode]));
    const hf = (mode) => lastJson(run(python, [pyChild, dir, mode, String(THREADS), String(PREFILL), String(DECODE)]));

    // Load-only children measure load time and peak RSS without the generation buffers.
    const vLoad = vlit('load');
    const tLoad = hf('load');
    const vSpeed = vlit('speed');
    const tSpeed = hf('speed');

    const tokS = (n, ms) => (n / ms) * 1000;
    console.log(`Llama-architecture checkpoint: ${(params / 1e6).toFixed(1)}M parameters, ${weightsMiB.toFixed(0)} MiB of F32 safetensors;`);
    console.log(
      `load average at start ${(await import('node:os')).loadavg()[0].toFixed(1)}; ${THREADS} thread(s) each; prefill ${PREFILL} tokens, decode ${DECODE} tokens greedy with the KV cache; each figure from its own child process.`,
    );
    console.table([
      {
        engine: 'Vlit (onnxruntime-node)',
        'load s': +(vLoad.loadMs / 1000).toFixed(2),
        'peak RSS MiB': Math.round(vLoad.peakMiB),
        'peak - start MiB': Math.round(vLoad.peakMiB - vLoad.rssBeforeMiB),
        'held after load MiB': Math.round(vLoad.rssAfterMiB - vLoad.rssBeforeMiB),
        'prefill tok/s': +tokS(PREFILL, vSpeed.prefillMs).toFixed(1),
        'decode tok/s': +tokS(DECODE, vSpeed.decodeMs).toFixed(1),
        'peak RSS with generation MiB': Math.round(vSpeed.peakMiB - vSpeed.rssBeforeMiB),
      },
      {
        engine: 'transformers eager (torch CPU)',
        'load s': +(tLoad.loadMs / 1000).toFixed(2),
        'peak RSS MiB': Math.round(tLoad.peakMiB),
        'peak - start MiB': Math.round(tLoad.peakMiB - tLoad.rssBeforeMiB),
        'held after load MiB': Math.round(tLoad.rssAfterMiB - tLoad.rssBeforeMiB),
        'prefill tok/s': +tokS(PREFILL, tSpeed.prefillMs).toFixed(1),
        'decode tok/s': +tokS(DECODE, tSpeed.decodeMs).toFixed(1),
        'peak RSS with generation MiB': Math.round(tSpeed.peakMiB - tSpeed.rssBeforeMiB),
      },
    ]);
    console.log('Ratios (Vlit / transformers; for times < 1 is faster, for tokens/s > 1 is faster):');
    console.table({
      'load time': +(vLoad.loadMs / tLoad.loadMs).toFixed(2),
      // transformers maps safetensors lazily, so its load touches almost nothing; compare peaks with generation too.
      'peak RSS growth during load': +((vLoad.peakMiB - vLoad.rssBeforeMiB) / (tLoad.peakMiB - tLoad.rssBeforeMiB)).toFixed(2),
      'peak RSS growth, load + generation': +((vSpeed.peakMiB - vSpeed.rssBeforeMiB) / (tSpeed.peakMiB - tSpeed.rssBeforeMiB)).toFixed(2),
      'prefill tokens/s': +(tokS(PREFILL, vSpeed.prefillMs) / tokS(PREFILL, tSpeed.prefillMs)).toFixed(2),
      'decode tokens/s': +(tokS(DECODE, vSpeed.decodeMs) / tokS(DECODE, tSpeed.decodeMs)).toFixed(2),
    });
    console.log('Against the weights themselves (aim: Vlit peak growth under 1.5x):');
    console.table({
      'Vlit peak growth / weights': +((vLoad.peakMiB - vLoad.rssBeforeMiB) / weightsMiB).toFixed(2),
      'Vlit held after load / weights': +((vLoad.rssAfterMiB - vLoad.rssBeforeMiB) / weightsMiB).toFixed(2),
      'transformers peak growth / weights': +((tLoad.peakMiB - tLoad.rssBeforeMiB) / weightsMiB).toFixed(2),
      'Vlit peak growth with generation / weights': +((vSpeed.peakMiB - vSpeed.rssBeforeMiB) / weightsMiB).toFixed(2),
      'transformers peak growth with generation / weights': +((tSpeed.peakMiB - tSpeed.rssBeforeMiB) / weightsMiB).toFixed(2),
    });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--child') await vlitChild(process.argv[3], process.argv[4]);
else await main();
