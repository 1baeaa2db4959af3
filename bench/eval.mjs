// @vlit/eval metric throughput: CIDEr-D over 5,000 images x 5 references and VQA accuracy over
// 100,000 predictions (10 human answers each, 1,000,000 answers). The baseline, measured in this
// same run on the same data, is Python: the repo's independent CIDEr-D reference
// (packages/eval/fixtures/coco_caption_reference.py) and the official VQAv2 normalisation written
// out below, both under /usr/bin/python3. Results are also compared, as a sanity check.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRng } from '@vlit/core';
import { ciderDCoco, scoreVqa, tokenizeCaption } from '@vlit/eval';

const here = dirname(fileURLToPath(import.meta.url));
const refScript = join(here, '../packages/eval/fixtures');
const rng = createRng('bench-eval');
const words =
  'a an the man woman dog cat bus red blue two three sitting riding standing on in near next to of with large small wooden street park table kitchen beach people group young old brown white black'.split(
    ' ',
  );
const sentence = (n) => Array.from({ length: n }, () => rng.choice(words)).join(' ');

// Captions: already in COCO token form, so both sides time CIDEr-D itself.
const pairs = Array.from({ length: 5000 }, () => ({
  candidate: tokenizeCaption(sentence(rng.int(6, 14))),
  references: Array.from({ length: 5 }, () => tokenizeCaption(sentence(rng.int(7, 16)))),
}));
const answerPool = ['2', 'two', 'yes', 'no', 'red', "it's", 'its', 'a dog', 'dog', 'black and white', '1,000', 't-shirt', 'none', 'Yes.', 'dont'];
const questions = Array.from({ length: 100_000 }, (_, i) => ({
  id: String(i),
  answers: Array.from({ length: 10 }, () => rng.choice(answerPool.slice(0, 9))),
  answerType: i % 3 ? 'other' : 'number',
}));
const predictions = new Map(questions.map((q) => [q.id, rng.choice(answerPool)]));

function timeIt(fn, runs = 3) {
  let best = Infinity;
  let out;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    out = fn();
    best = Math.min(best, performance.now() - t0);
  }
  return { ms: best, out };
}

const cider = timeIt(() => ciderDCoco(pairs));
const vqa = timeIt(() => scoreVqa(questions, predictions));
console.log(
  `CIDEr-D  5,000 images x 5 refs: ${cider.ms.toFixed(0)} ms  (${((5000 / cider.ms) * 1000).toFixed(0)} images/s)  score ${cider.out.score.toFixed(6)}`,
);
console.log(
  `VQA acc  100,000 predictions x 10 answers: ${vqa.ms.toFixed(0)} ms  (${(((1_000_000 / vqa.ms) * 1000) / 1e6).toFixed(2)} M answers/s)  accuracy ${vqa.out.accuracy.toFixed(6)}`,
);

const PY_VQA = String.raw`
import json, re, sys, time
contractions = {"dont": "don't", "cant": "can't", "isnt": "isn't", "whats": "what's", "thats": "that's"}
manualMap = {'none': '0', 'zero': '0', 'one': '1', 'two': '2', 'three': '3', 'four': '4', 'five': '5', 'six': '6', 'seven': '7', 'eight': '8', 'nine': '9', 'ten': '10'}
articles = ['a', 'an', 'the']
periodStrip = re.compile(r"(?!<=\d)(\.)(?!\d)")
commaStrip = re.compile(r"(\d)(,)(\d)")
punct = [';', r"/", '[', ']', '"', '{', '}', '(', ')', '=', '+', '\\', '_', '-', '>', '<', '@', '\u0060', ',', '?', '!']
def processPunctuation(inText):
    outText = inText
    for p in punct:
        if (p + ' ' in inText or ' ' + p in inText) or (re.search(commaStrip, inText) != None):
            outText = outText.replace(p, '')
        else:
            outText = outText.replace(p, ' ')
    return periodStrip.sub("", outText, re.UNICODE)
def processDigitArticle(inText):
    out = []
    for word in inText.lower().split():
        word = manualMap.setdefault(word, word)
        if word not in articles:
            out.append(word)
    return ' '.join(contractions.get(w, w) for w in out)
data = json.load(open(sys.argv[1]))
best = 1e9
for _ in range(3):
    t0 = time.perf_counter()
    accs = []
    for q in data:
        res = processDigitArticle(processPunctuation(q['pred'].replace('\n', ' ').replace('\t', ' ').strip()))
        gts = q['answers']
        if len(set(gts)) > 1:
            gts = [processPunctuation(g) for g in gts]
        gtAcc = []
        for i in range(len(gts)):
            others = gts[:i] + gts[i + 1:]
            gtAcc.append(min(1, float(sum(1 for o in others if o == res)) / 3))
        accs.append(sum(gtAcc) / len(gtAcc))
    best = min(best, time.perf_counter() - t0)
print(json.dumps({"ms": best * 1000, "accuracy": sum(accs) / len(accs)}))
`;

const PY_CIDER = String.raw`
import json, sys, time
sys.path.insert(0, sys.argv[2])
import coco_caption_reference as ref
pairs = json.load(open(sys.argv[1]))
t0 = time.perf_counter()
score, _ = ref.cider_d([p['candidate'] for p in pairs], [p['references'] for p in pairs])
print(json.dumps({"ms": (time.perf_counter() - t0) * 1000, "score": score}))
`;

if (existsSync('/usr/bin/python3')) {
  const dir = mkdtempSync(join(tmpdir(), 'vlit-bench-eval-'));
  try {
    writeFileSync(join(dir, 'pairs.json'), JSON.stringify(pairs));
    writeFileSync(join(dir, 'vqa.json'), JSON.stringify(questions.map((q) => ({ answers: q.answers, pred: predictions.get(q.id) }))));
    const pc = JSON.parse(execFileSync('/usr/bin/python3', ['-c', PY_CIDER, join(dir, 'pairs.json'), refScript], { encoding: 'utf8', maxBuffer: 1 << 26 }));
    const pv = JSON.parse(execFileSync('/usr/bin/python3', ['-c', PY_VQA, join(dir, 'vqa.json')], { encoding: 'utf8', maxBuffer: 1 << 26 }));
    console.log(
      `Python baseline: CIDEr-D ${pc.ms.toFixed(0)} ms (score ${pc.score.toFixed(6)}), VQA ${pv.ms.toFixed(0)} ms (accuracy ${pv.accuracy.toFixed(6)})`,
    );
    console.log(`speed-up vs Python: CIDEr-D x${(pc.ms / cider.ms).toFixed(2)}, VQA x${(pv.ms / vqa.ms).toFixed(2)}`);
    const agree = Math.abs(pc.score - cider.out.score) < 1e-9 && Math.abs(pv.accuracy - vqa.out.accuracy) < 1e-12;
    console.log(`results agree with the baseline: ${agree ? 'yes' : 'NO'}`);
    if (!agree) process.exitCode = 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
} else {
  console.log('no /usr/bin/python3: Python baseline skipped');
}
