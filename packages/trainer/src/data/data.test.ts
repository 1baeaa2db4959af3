import { createRng, isVlitError } from '@vlit/core';
import { buildWordLevelTokenizer, createBuiltinTemplate, encodeBatch } from '@vlit/templates';
import { describe, expect, it } from 'vitest';
import { collateBatch, createDataOrder, type DataPosition, type TrainingSample } from './index.js';

/** Samples of random length 4..200 with the second half labelled; the rejects are planted at known places. */
function samples(n: number): TrainingSample[] {
  const rng = createRng('data-fixture');
  return Array.from({ length: n }, (_, i) => {
    const len = rng.int(4, 201);
    const inputIds = Array.from({ length: len }, (_, t) => 10 + ((i + t) % 50));
    const labels = inputIds.map((id, t) => (t >= len / 2 ? id : -100));
    return { id: `s${i}`, inputIds, labels, imageSpans: [] };
  });
}

function withRejects(): TrainingSample[] {
  const list = samples(250);
  list[3] = { ...list[3], labels: list[3].labels.map(() => -100) };
  list[7] = { ...list[7], inputIds: Array(300).fill(1), labels: Array(300).fill(1) };
  list[11] = { ...list[11], labels: list[11].labels.slice(1) };
  return list;
}

function padding(batches: number[][], list: TrainingSample[]): number {
  let waste = 0;
  for (const b of batches) {
    const lens = b.map((i) => list[i].inputIds.length);
    waste += Math.max(...lens) * b.length - lens.reduce((a, x) => a + x, 0);
  }
  return waste;
}

describe('seeded, length-bucketed data order', () => {
  it('rejects all-masked, too-long and mismatched samples with reasons; counts add up', () => {
    const order = createDataOrder(withRejects(), { batchSize: 8, seed: 1, maxLength: 256 });
    expect(order.counts).toEqual({ read: 250, used: 247, rejected: 3 });
    expect(order.rejects.map((r) => [r.index, r.id, r.reason, r.field])).toEqual([
      [3, 's3', 'all-labels-masked', 'labels'],
      [7, 's7', 'too-long', 'inputIds'],
      [11, 's11', 'labels-length', 'labels'],
    ]);
    expect(order.counts.read).toBe(order.counts.used + order.counts.rejected);
  });

  it('each epoch uses every usable sample exactly once; epochs differ; the same seed repeats', () => {
    const list = withRejects();
    const a = createDataOrder(list, { batchSize: 8, seed: 'run', maxLength: 256 });
    const b = createDataOrder(list, { batchSize: 8, seed: 'run', maxLength: 256 });
    expect(a.batchesPerEpoch).toBe(31); // 247 = 30 * 8 + 7
    const epochs: number[][] = [[], []];
    for (let k = 0; k < 2 * a.batchesPerEpoch; k++) {
      const x = a.next();
      expect(b.next().indices).toEqual(x.indices);
      expect(x.epoch).toBe(k < 31 ? 0 : 1);
      epochs[x.epoch].push(...x.indices);
    }
    const usable = Array.from({ length: 250 }, (_, i) => i).filter((i) => ![3, 7, 11].includes(i));
    for (const e of epochs) expect([...e].sort((p, q) => p - q)).toEqual(usable);
    expect(epochs[0]).not.toEqual(epochs[1]);
    const other = createDataOrder(list, { batchSize: 8, seed: 'other', maxLength: 256 });
    expect(other.next().indices).not.toEqual(createDataOrder(list, { batchSize: 8, seed: 'run', maxLength: 256 }).next().indices);
  });

  it('length bucketing cuts padding to well under half of plain shuffling', () => {
    const list = samples(512);
    const take = (bucketing: 'length' | 'none') => {
      const o = createDataOrder(list, { batchSize: 8, seed: 5, bucketing });
      return Array.from({ length: o.batchesPerEpoch }, () => o.next().indices);
    };
    const bucketed = padding(take('length'), list);
    const plain = padding(take('none'), list);
    expect(bucketed).toBeLessThan(0.5 * plain);
  });

  it('a position saved mid-epoch (through JSON) restores the same order for the next two epochs', () => {
    const list = withRejects();
    const opts = { batchSize: 8, seed: 9, maxLength: 256 };
    for (const cut of [0, 13, 31, 44]) {
      const run = createDataOrder(list, opts);
      for (let k = 0; k < cut; k++) run.next();
      const saved = JSON.parse(JSON.stringify(run.position())) as DataPosition;
      const resumed = createDataOrder(list, opts, saved);
      for (let k = 0; k < 62; k++) {
        const x = run.next();
        const y = resumed.next();
        expect([y.epoch, y.index, y.indices]).toEqual([x.epoch, x.index, x.indices]);
      }
    }
  });

  it('a position from other data is a ConflictError on position.fingerprint', () => {
    const list = withRejects();
    const pos = createDataOrder(list, { batchSize: 8, seed: 9 }).position();
    try {
      createDataOrder(list.slice(1), { batchSize: 8, seed: 9 }, pos);
      expect.unreachable();
    } catch (err) {
      expect(isVlitError(err, 'VLIT_CONFLICT')).toBe(true);
      expect((err as { details: { field: string } }).details.field).toBe('position.fingerprint');
    }
  });

  it('dropLast leaves out the short batch', () => {
    const o = createDataOrder(samples(20), { batchSize: 8, seed: 1, dropLast: true });
    expect(o.batchesPerEpoch).toBe(2);
    expect([o.next().indices.length, o.next().indices.length, o.next().epoch]).toEqual([8, 8, 1]);
  });
});

describe('collateBatch', () => {
  it('pads right or left by hand, moving image spans with their tokens', () => {
    const a: TrainingSample = { id: 'a', inputIds: [5, 6, 7], labels: [-100, 6, 7], imageSpans: [{ imageIndex: 0, start: 0, end: 1 }] };
    const b: TrainingSample = { id: 'b', inputIds: [8], labels: [8], imageSpans: [] };
    const right = collateBatch([a, b], { padTokenId: 0, padToMultipleOf: 4 });
    expect(right.inputIds.dims).toEqual([2, 4]);
    expect(Array.from(right.inputIds.data, Number)).toEqual([5, 6, 7, 0, 8, 0, 0, 0]);
    expect(Array.from(right.labels.data, Number)).toEqual([-100, 6, 7, -100, 8, -100, -100, -100]);
    expect(Array.from(right.attentionMask.data, Number)).toEqual([1, 1, 1, 0, 1, 0, 0, 0]);
    expect([right.tokens, right.trainedTokens]).toEqual([4, 3]);
    const left = collateBatch([b, a], { padTokenId: 0, padSide: 'left' });
    expect(Array.from(left.inputIds.data, Number)).toEqual([0, 0, 8, 5, 6, 7]);
    expect(left.imageSpans).toEqual([[], [{ imageIndex: 0, start: 0, end: 1 }]]);
    const left2 = collateBatch([a, b], { padTokenId: 0, padSide: 'left', padToMultipleOf: 4 });
    expect(left2.imageSpans[0]).toEqual([{ imageIndex: 0, start: 1, end: 2 }]);
  });
});

describe('with @vlit/templates encoding', () => {
  it('takes encodeBatch output as is: an untrained conversation and an over-long one are rejects, the rest batch and collate', () => {
    const words = 'the a red blue bus dog cat is on in what where how many two'.split(' ');
    const tokenizer = buildWordLevelTokenizer({
      corpus: [`${words.join(' ')} . ? user assistant`],
      specialTokens: ['<|im_start|>', '<|im_end|>', '<|vision_start|>', '<|image_pad|>', '<|vision_end|>', '<|endoftext|>'],
    });
    const rng = createRng('enc');
    const sentence = (k: number) => `${Array.from({ length: k }, () => rng.choice(words)).join(' ')}.`;
    const records: unknown[] = Array.from({ length: 30 }, (_, i) => ({
      id: `r${i}`,
      images: [`img${i}.jpg`],
      messages: [
        { role: 'user', content: `<image>\n${sentence(rng.int(2, 10))}` },
        { role: 'assistant', content: sentence(rng.int(2, 20)) },
      ],
    }));
    records.push({
      id: 'untrained',
      messages: [
        { role: 'user', content: 'what is on the bus?' },
        { role: 'assistant', content: 'a dog.', train: false },
      ],
    });
    records.push({
      id: 'long',
      messages: [
        { role: 'user', content: 'what?' },
        { role: 'assistant', content: sentence(400) },
      ],
    });
    const { encoded, counts } = encodeBatch(records, { template: createBuiltinTemplate('chatml'), tokenizer, imageTokens: 4, allowEmptyLabels: true });
    expect(counts.rejected).toBe(0);
    const order = createDataOrder(encoded, { batchSize: 4, seed: 2, maxLength: 256 });
    expect(order.counts).toEqual({ read: 32, used: 30, rejected: 2 });
    expect(order.rejects.map((r) => [r.id, r.reason])).toEqual([
      ['untrained', 'all-labels-masked'],
      ['long', 'too-long'],
    ]);
    const batch = order.next();
    const pad = tokenizer.tokenToId('<|endoftext|>')!;
    const c = collateBatch(batch.samples, { padTokenId: pad });
    expect(c.trainedTokens).toBe(batch.trainedTokens);
    expect(c.tokens).toBe(batch.tokens);
    // Image spans point at the expanded image tokens in the padded rows.
    const imagePad = BigInt(tokenizer.tokenToId('<|image_pad|>')!);
    const T = c.inputIds.dims[1];
    c.imageSpans.forEach((spans, row) => {
      expect(spans).toHaveLength(1);
      for (let t = spans[0].start; t < spans[0].end; t++) expect(c.inputIds.data[row * T + t]).toBe(imagePad);
    });
  });
});
