// POPE question building and scoring, checked against hand-derived expectations.
import { describe, expect, it } from 'vitest';
import { buildPopeQuestions, coOccurrence, objectFrequencies, parsePopeAnswer, popeScores, type PopeImage } from './pope.js';

const images: PopeImage[] = [
  { image: 'i1.jpg', objects: ['person', 'dog', 'car', 'bench'] },
  { image: 'i2.jpg', objects: ['person', 'car', 'bus'] },
  { image: 'i3.jpg', objects: ['dog', 'frisbee', 'person'] },
  { image: 'i4.jpg', objects: ['cat', 'couch', 'tv'] },
];
const pairs = (qs: ReturnType<typeof buildPopeQuestions>, image: string) => qs.filter((q) => q.image === image).map((q) => `${q.label}:${q.object}`);

describe('POPE question generation', () => {
  it('counts frequencies and co-occurrences (ties keep first-seen order)', () => {
    expect([...objectFrequencies(images)]).toEqual([
      ['person', 3],
      ['dog', 2],
      ['car', 2],
      ['bench', 1],
      ['bus', 1],
      ['frisbee', 1],
      ['cat', 1],
      ['couch', 1],
      ['tv', 1],
    ]);
    const co = coOccurrence(images);
    expect(co.get('person')).toEqual(['dog', 'car', 'bench', 'bus', 'frisbee']);
    expect(co.get('car')).toEqual(['person', 'dog', 'bench', 'bus']);
    expect(co.get('bus')).toEqual(['person', 'car']);
  });

  it('popular: negatives are the most frequent objects absent from the image and not yet asked', () => {
    // popularity: person 3, dog 2, car 2, then bench, bus, frisbee, cat, couch, tv
    const qs = buildPopeQuestions(images, { strategy: 'popular' });
    expect(qs).toHaveLength(24);
    expect(pairs(qs, 'i1.jpg')).toEqual(['yes:person', 'no:bus', 'yes:dog', 'no:frisbee', 'yes:car', 'no:cat']);
    expect(pairs(qs, 'i2.jpg')).toEqual(['yes:person', 'no:dog', 'yes:car', 'no:bench', 'yes:bus', 'no:frisbee']);
    expect(pairs(qs, 'i3.jpg')).toEqual(['yes:dog', 'no:car', 'yes:frisbee', 'no:bench', 'yes:person', 'no:bus']);
    expect(pairs(qs, 'i4.jpg')).toEqual(['yes:cat', 'no:person', 'yes:couch', 'no:dog', 'yes:tv', 'no:car']);
    expect(qs[0]).toEqual({ id: '1', image: 'i1.jpg', object: 'person', question: 'Is there a person in the image?', label: 'yes' });
  });

  it('adversarial: negatives co-occur with the positive; a random absent object when none is left', () => {
    const qs = buildPopeQuestions(images, { strategy: 'adversarial', seed: 1 });
    const i1 = pairs(qs, 'i1.jpg');
    // person -> co: dog, car, bench in the image -> bus; dog -> co: person asked, car/bench in image -> frisbee
    expect(i1.slice(0, 4)).toEqual(['yes:person', 'no:bus', 'yes:dog', 'no:frisbee']);
    // car -> co: person, dog, bench, bus all used -> random among cat, couch, tv
    expect(['no:cat', 'no:couch', 'no:tv']).toContain(i1[5]);
    expect(pairs(qs, 'i2.jpg').slice(0, 4)).toEqual(['yes:person', 'no:dog', 'yes:car', 'no:bench']);
    expect(pairs(qs, 'i3.jpg').slice(0, 2)).toEqual(['yes:dog', 'no:car']);
    expect(qs.find((q) => q.object === 'apple')).toBeUndefined();
  });

  it('random: seeded, absent from the image, never repeated within an image; "an" before vowels', () => {
    const a = buildPopeQuestions(images, { strategy: 'random', seed: 7 });
    expect(buildPopeQuestions(images, { strategy: 'random', seed: 7 })).toEqual(a);
    for (const img of images) {
      const negs = a.filter((q) => q.image === img.image && q.label === 'no').map((q) => q.object);
      expect(new Set(negs).size).toBe(3);
      for (const n of negs) expect(img.objects).not.toContain(n);
    }
    const withApple = buildPopeQuestions(
      [
        { image: 'x', objects: ['apple', 'orange', 'egg'] },
        { image: 'y', objects: ['kite', 'tie', 'cup'] },
      ],
      { strategy: 'popular' },
    );
    expect(withApple[0].question).toBe('Is there an apple in the image?');
    expect(withApple[1].question).toBe('Is there a kite in the image?');
  });
});

describe('POPE scoring', () => {
  it.each([
    ['Yes, there is a dog.', 'yes'],
    ['No.', 'no'],
    ['There is no dog in the image.', 'no'],
    ['not sure', 'no'],
    ['Yes. No other animals are visible.', 'yes'], // only the first sentence counts
    ['no, it is a cat', 'no'],
    ['NO', 'yes'], // the reference matches only "No", "no" and "not"
    ['Nope', 'yes'],
  ] as const)('%j reads as %s', (text, label) => {
    expect(parsePopeAnswer(text)).toBe(label);
  });

  it('accuracy, precision, recall, F1 and yes-ratio (hand-worked)', () => {
    // tp 2, fn 1, fp 1, tn 4
    const s = popeScores(['yes', 'yes', 'yes', 'no', 'no', 'no', 'no', 'no'], ['yes', 'yes', 'no', 'yes', 'no', 'no', 'no', 'no']);
    expect([s.tp, s.fn, s.fp, s.tn]).toEqual([2, 1, 1, 4]);
    expect(s.accuracy).toBe(0.75);
    expect(s.precision).toBeCloseTo(2 / 3, 12);
    expect(s.recall).toBeCloseTo(2 / 3, 12);
    expect(s.f1).toBeCloseTo(2 / 3, 12);
    expect(s.yesRatio).toBe(3 / 8);
  });
});
