import { describe, expect, it } from 'vitest';
import { imageAnnotationsSchema, type ImageAnnotationsInput } from '../annotations.js';
import { consistencyFilter, hallucinationFilter } from '../quality/filters/annotations.js';
import { runQualityControl } from '../quality/pipeline.js';
import { createAnnotationAdapter } from './adapt.js';

// Adaption answers only from the annotations, so quality control's independent consistency and
// hallucination checks (written separately, with their own synonym vocabulary) must keep every record.
const images: ImageAnnotationsInput[] = [
  {
    imageId: 'park',
    file: 'park.jpg',
    width: 640,
    height: 480,
    captions: ['Three dogs play on the grass near a bench.'],
    objects: [
      { category: 'dog', bbox: [10, 300, 50, 40], attributes: ['brown'] },
      { category: 'dog', bbox: [80, 310, 50, 40] },
      { category: 'dog', bbox: [150, 305, 50, 40] },
      { category: 'cat', bbox: [40, 100, 60, 60], attributes: ['black'] },
      { category: 'frisbee', bbox: [500, 110, 40, 30], attributes: ['red'] },
      { category: 'bench', bbox: [300, 400, 80, 40] },
    ],
    vqa: [{ question: 'How many dogs are there?', answers: ['3', '3', 'three'] }],
  },
  {
    imageId: 'kitchen',
    file: 'kitchen.jpg',
    width: 400,
    height: 300,
    captions: ['A kitchen with an oven and two cups on a dining table.'],
    objects: [
      { category: 'oven', bbox: [10, 150, 120, 140] },
      { category: 'cup', bbox: [200, 100, 20, 20], attributes: ['white'] },
      { category: 'cup', bbox: [240, 100, 20, 20] },
      { category: 'dining table', bbox: [150, 110, 220, 150] },
    ],
  },
];

describe('adaption agrees with quality control', () => {
  it('passes the consistency and hallucination filters on every record', async () => {
    const adapter = createAnnotationAdapter({
      dataset: 'toy',
      tasks: { caption: 1, vqa: 1, counting: 4, existence: 4, negative: 6, location: 4, region: 6, spatial: 4, dialogue: 3 },
    });
    const records = [];
    for (const seed of [1, 2, 3]) {
      const a = createAnnotationAdapter({ dataset: `toy${seed}`, seed, tasks: { counting: 4, existence: 4, negative: 6, spatial: 4, dialogue: 3 } });
      for (const image of images) records.push(...a.adapt(image).records);
    }
    for (const image of images) records.push(...adapter.adapt(image).records);
    const annotations = images.map((i) => imageAnnotationsSchema.parse(i));
    const result = await runQualityControl(records, [consistencyFilter(), hallucinationFilter()], { annotations });
    expect(result.rejects.map((r) => `${r.id}: ${r.reason} ${r.message}`)).toEqual([]);
    expect(result.counts.kept).toBe(records.length);
    expect(records.length).toBeGreaterThan(80);
    // The filters are live: the same records with a wrong count or a false "No." are caught.
    const count = records.find((r) => r.task === 'counting' && r.metadata?.category === 'dog')!;
    const present = records.find((r) => r.task === 'existence')!;
    const planted = [
      { ...count, id: 'wrong-count', messages: [count.messages[0], { role: 'assistant' as const, content: '5' }] },
      { ...present, id: 'false-no', messages: [present.messages[0], { role: 'assistant' as const, content: 'No.' }] },
    ];
    const caught = await runQualityControl(planted, [consistencyFilter(), hallucinationFilter()], { annotations });
    expect(caught.rejects.map((r) => r.id)).toEqual(['wrong-count', 'false-no']);
  });
});
