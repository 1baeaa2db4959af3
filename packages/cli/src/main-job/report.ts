/**
 * The main job's own report: a markdown summary and a self-contained HTML page, every accuracy printed
 * with the chance rate of the same questions beside it (1 / options, averaged over the questions).
 */
import { escapeHtml, SEED_DIMENSIONS } from '@vlit/eval';
import { renderQualityMarkdown } from '@vlit/data';
import type { SplitScore, TrainedMainJobResult } from './main-job.js';

/** One row of the results table: a dimension (or Overall) on both splits and with blank images. */
export interface DimensionRow {
  code: string;
  name: string;
  questions: number;
  chance: number;
  seen: number;
  unseen: number;
  blank: number;
}

/** Rows: Overall first, then every dimension the benchmark asks about, in SEED-Bench's order. */
export function dimensionTable(seen: SplitScore, unseen: SplitScore, blank: SplitScore): DimensionRow[] {
  const rows: DimensionRow[] = [
    { code: 'Overall', name: 'Overall', questions: seen.questions, chance: seen.chance, seen: seen.accuracy, unseen: unseen.accuracy, blank: blank.accuracy },
  ];
  for (const d of SEED_DIMENSIONS) {
    const s = seen.byDimension[d.code];
    if (!s) continue;
    rows.push({
      code: d.code,
      name: d.name,
      questions: s.questions,
      chance: s.chance,
      seen: s.accuracy,
      unseen: unseen.byDimension[d.code]?.accuracy ?? Number.NaN,
      blank: blank.byDimension[d.code]?.accuracy ?? Number.NaN,
    });
  }
  return rows;
}

const pct = (x: number): string => (Number.isFinite(x) ? (100 * x).toFixed(1) : '–');
const delta = (x: number, chance: number): string => (Number.isFinite(x) ? `${x >= chance ? '+' : ''}${(100 * (x - chance)).toFixed(1)}` : '–');

/** The results table as markdown: accuracy (points over chance) per split, chance beside each number. */
export function renderResultsMarkdown(rows: readonly DimensionRow[]): string {
  const lines = ['| dimension | questions | chance | seen phrasings | unseen phrasings | blank images (seen) |', '|---|---:|---:|---:|---:|---:|'];
  for (const r of rows) {
    lines.push(
      `| ${r.code === 'Overall' ? '**Overall**' : `${r.code} (${r.name})`} | ${r.questions} | ${pct(r.chance)} | ${pct(r.seen)} (${delta(r.seen, r.chance)}) | ${pct(r.unseen)} (${delta(r.unseen, r.chance)}) | ${pct(r.blank)} (${delta(r.blank, r.chance)}) |`,
    );
  }
  return lines.join('\n');
}

function facts(result: TrainedMainJobResult): Array<[string, string]> {
  const t = result.training;
  return [
    ['run', `${result.quick ? '--quick' : 'full'}, seed ${result.seed}, ${result.seconds.total.toFixed(0)} s`],
    [
      'world',
      `${result.world.trainScenes} training scenes, ${result.world.heldoutScenes} held-out scenes (${result.settings.imageSize}px), ${result.world.benchmarkQuestions} benchmark questions per split`,
    ],
    [
      'annotation adaption',
      `${result.adaption.records} records (${Object.entries(result.adaption.byTask)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}); ${result.adaption.droppedHeldoutPhrasings} dropped for a held-out phrasing; ${result.adaption.refused} images refused`,
    ],
    [
      'planted faults',
      `${result.faults.planted} planted, ${result.faults.caught} caught by quality control (${Object.entries(result.faults.byKind)
        .map(([k, v]) => `${k} ${v.caught}/${v.planted}`)
        .join(', ')})`,
    ],
    [
      'quality control',
      `read ${result.qualityControl.read} = kept ${result.qualityControl.kept} + rejected ${result.qualityControl.rejected} (${Object.entries(
        result.qualityControl.byReason,
      )
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')})`,
    ],
    [
      'model',
      `${result.model.encoder} (${result.model.parameters.encoder} parameters, frozen) + MLP projector (${result.model.parameters.projector}) + Llama-style decoder, hidden ${result.settings.hidden}, ${result.settings.layers} layers (${result.model.parameters.languageModel}); word-level vocabulary ${result.model.vocabSize}; ${result.model.visualTokens} visual tokens per image`,
    ],
    ['encoder', result.model.encoderNote],
    ...(t.stage0
      ? [
          [
            'stage 0 (tower pretraining, shape labels)',
            `${t.stage0.steps} steps over ${t.stage0.scenes} rendered scenes; loss ${t.stage0.firstLoss.toFixed(3)} → ${t.stage0.lastLoss.toFixed(3)}; shape accuracy at ${t.stage0.heldoutPatches} patches of held-out scenes ${pct(t.stage0.heldoutShapeAccuracy)} (chance ${pct(t.stage0.chance)})`,
          ] as [string, string],
        ]
      : []),
    [
      'stage 1 (projector, captions, llava-plain)',
      `${t.stage1.steps} steps over ${t.stage1.samples} samples (${t.stage1.rejected} rejected); loss ${t.stage1.firstLoss.toFixed(3)} → ${t.stage1.lastLoss.toFixed(3)}`,
    ],
    [
      'stage 2 (projector + language model, instructions, conversation template)',
      `${t.stage2.steps} steps over ${t.stage2.samples} samples (${t.stage2.rejected} rejected); loss ${t.stage2.firstLoss.toFixed(3)} → ${t.stage2.lastLoss.toFixed(3)}`,
    ],
    [
      'checkpoint folder',
      `${result.files.model}: reloaded with loadVisionLanguageModel, same choice on ${result.reload.sameChoice}/${result.reload.questions} questions, largest log-likelihood difference ${result.reload.maxScoreDiff.toExponential(2)}`,
    ],
    [
      'time per step (s)',
      Object.entries(result.seconds)
        .map(([k, v]) => `${k} ${v.toFixed(1)}`)
        .join(', '),
    ],
  ];
}

/** The markdown summary (summary.md). */
export function renderMainJobMarkdown(result: TrainedMainJobResult): string {
  return [
    '# Vlit main job: a trained model on the synthetic world',
    '',
    ...facts(result).map(([k, v]) => `- **${k}**: ${v}`),
    '',
    '## Held-out benchmark (accuracy %, points over chance in brackets)',
    '',
    'Options are ranked by the likelihood the model gives their text (SEED-Bench). "Unseen phrasings" asks the same',
    'questions with phrasings no training record uses; "blank images" replaces every image with flat grey.',
    '',
    renderResultsMarkdown(result.evaluation.table),
    '',
    '## Data quality',
    '',
    renderQualityMarkdown(result.dataQuality),
    '',
  ].join('\n');
}

/** The HTML report (report.html): self-contained, no scripts. */
export function renderMainJobHtml(result: TrainedMainJobResult): string {
  const rows = result.evaluation.table
    .map((r) => {
      const cell = (x: number): string => `<td>${pct(x)} <small>(${delta(x, r.chance)})</small></td>`;
      return `<tr><th>${escapeHtml(r.code === 'Overall' ? 'Overall' : `${r.code} ${r.name}`)}</th><td>${r.questions}</td><td>${pct(r.chance)}</td>${cell(r.seen)}${cell(r.unseen)}${cell(r.blank)}</tr>`;
    })
    .join('\n');
  const list = facts(result)
    .map(([k, v]) => `<li><b>${escapeHtml(k)}</b>: ${escapeHtml(v)}</li>`)
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Vlit main job</title>
<style>body{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:right}th{text-align:left}small{color:#555}pre{background:#f6f6f6;padding:1rem;overflow:auto}</style>
</head><body>
<h1>Vlit main job: a trained model on the synthetic world</h1>
<ul>
${list}
</ul>
<h2>Held-out benchmark</h2>
<p>Accuracy in %, points over chance in brackets; chance is 1 / options averaged over the same questions. Unseen phrasings: the same questions asked with phrasings no training record uses. Blank images: every image replaced by flat grey.</p>
<table>
<thead><tr><th>dimension</th><th>questions</th><th>chance</th><th>seen phrasings</th><th>unseen phrasings</th><th>blank images (seen)</th></tr></thead>
<tbody>
${rows}
</tbody></table>
<p>Per-question outputs, manifests and charts: <a href="eval-report/report.html">eval-report/report.html</a>.</p>
<h2>Data quality</h2>
<pre>${escapeHtml(renderQualityMarkdown(result.dataQuality))}</pre>
</body></html>
`;
}
