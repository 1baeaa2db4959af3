// VQA accuracy on the normalisation's tricky cases. Every expected value is worked by hand from the
// official script's rules (GT-Vision-Lab/VQA vqaEval.py): the prediction goes through
// processPunctuation + processDigitArticle; human answers only through processPunctuation and only
// when they are not all the same; accuracy = mean over the 10 leave-one-out subsets of
// min(#matches in the subset / 3, 1).
import { describe, expect, it } from 'vitest';
import { normalizeVqaAnswer, scoreVqa, vqaAccuracy, vqaProcessPunctuation } from './vqa.js';

const ten = (a: string) => Array<string>(10).fill(a);
const mix = (...parts: Array<[string, number]>) => parts.flatMap(([a, n]) => Array<string>(n).fill(a));

describe('answer normalisation', () => {
  it.each([
    ['two', '2'],
    ['Two.', '2'],
    ['None', '0'],
    ['a dog', 'dog'],
    ['The Dog', 'dog'],
    ['dont', "don't"],
    ["Don't", "don't"],
    ['its', 'its'], // no "its" entry in the contractions map
    ["it's", "it's"], // the apostrophe is not in the punctuation list
    ['yes!', 'yes'], // "!" touches no space: replaced by a space, then split away
    ['yes, it is', 'yes it is'], // "," touches a space: deleted
    ['1,000', '1000'], // a digit,digit comma deletes every listed mark
    ['3.5.', '3.5'], // only periods not followed by a digit go
    ['t-shirt', 't shirt'],
    ['  red\tand\nwhite  ', 'red and white'],
  ])('%j -> %j', (raw, norm) => {
    expect(normalizeVqaAnswer(raw)).toBe(norm);
  });

  it('processPunctuation decides per mark on the original text', () => {
    // ";" touches a space in the original, so it is deleted everywhere; "/" does not, so it becomes a space.
    expect(vqaProcessPunctuation('a; b;c x/y')).toBe('a bc x y');
  });
});

describe('accuracy with leave-one-out subsets', () => {
  it.each<[string, string, string[], number]>([
    // 10 x "2": every subset of 9 has 9 matches -> min(9/3, 1) = 1
    ['"two" vs 2', 'two', ten('2'), 1],
    ['"Two." vs 2', 'Two.', ten('2'), 1],
    // human answers are not digit-mapped (the dataset is normalised already): "two" -> "2" != "two"
    ['"two" vs unnormalised two', 'two', ten('two'), 0],
    // 2 x "it's", 8 x "its"; prediction "it's" matches 2: the 2 subsets without one of them have 1 match
    // (1/3), the 8 others have 2 (2/3): (2*1/3 + 8*2/3) / 10 = 0.6
    ['"it\'s" vs its', "it's", mix(["it's", 2], ['its', 8]), 0.6],
    ['"its" vs its', 'its', mix(["it's", 2], ['its', 8]), 1],
    // "dont" -> "don't", 3 humans said "don't": (3 * 2/3 + 7 * 1) / 10 = 0.9 (not 1: leave-one-out)
    ['"dont" vs don\'t', 'dont', mix(["don't", 3], ['no', 7]), 0.9],
    ['"do not" vs don\'t', 'do not', mix(["don't", 3], ['no', 7]), 0],
    // articles go from the prediction only
    ['"a dog" vs dog', 'a dog', ten('dog'), 1],
    ['"a dog" vs a dog', 'a dog', ten('a dog'), 0],
    // trailing punctuation
    ['"yes!" vs yes', 'yes!', ten('yes'), 1],
    ['"Yes." vs yes', 'Yes.', ten('yes'), 1],
    ['"yes, it is" vs yes', 'yes, it is', ten('yes'), 0],
    // the humans disagree, so their answers are punctuation-processed too: "1,000" -> "1000" (4 of 10)
    ['"1,000" vs 1000', '1,000', mix(['1000', 3], ['1,000', 1], ['lots', 6]), 1],
    // identical human answers are left alone: "t-shirt" stays, the prediction becomes "t shirt"
    ['"t-shirt" vs t-shirt x10', 't-shirt', ten('t-shirt'), 0],
    ['"t-shirt" vs t-shirt x5 + shirt x5', 't-shirt', mix(['t-shirt', 5], ['shirt', 5]), 1],
    // one match: the subset without it has 0, the other 9 have 1 (1/3): 9 * 1/3 / 10 = 0.3
    ['one human agrees', 'red', mix(['red', 1], ['dark red', 9]), 0.3],
    ['"None" vs 0', 'None', ten('0'), 1],
  ])('%s', (_name, prediction, answers, expected) => {
    expect(vqaAccuracy(prediction, answers)).toBeCloseTo(expected, 12);
  });

  it('averages per question and per answer type', () => {
    const questions = [
      { id: 'q1', answers: ten('2'), answerType: 'number' },
      { id: 'q2', answers: mix(["don't", 3], ['no', 7]), answerType: 'other' },
      { id: 'q3', answers: ten('yes'), answerType: 'yes/no' },
      { id: 'q4', answers: mix(['red', 1], ['dark red', 9]), answerType: 'other' },
    ];
    const s = scoreVqa(questions, { q1: 'two', q2: 'dont', q3: 'No', q4: 'red' });
    expect(s.perQuestion).toEqual({ q1: 1, q2: expect.closeTo(0.9, 12), q3: 0, q4: expect.closeTo(0.3, 12) });
    expect(s.accuracy).toBeCloseTo((1 + 0.9 + 0 + 0.3) / 4, 12);
    expect(s.perAnswerType.number).toBe(1);
    expect(s.perAnswerType.other).toBeCloseTo(0.6, 12);
    expect(s.perAnswerType['yes/no']).toBe(0);
  });
});
