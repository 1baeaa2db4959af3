// Answer extraction on real-looking free-text replies. Expected answers and steps are what a person
// reading the reply would decide; "none" means a person could not tell either.
import { describe, expect, it } from 'vitest';
import { extractChoice, type ExtractionMethod } from './extract.js';

const opts4 = ['a red car', 'a blue bicycle', 'a green bus', 'a yellow truck'];
const count = ['one', 'two', 'three', 'four'];
const where = ['on the left', 'on the right', 'in the middle', 'at the top'];
const yesno = ['Yes', 'No'];

const table: Array<[string, readonly string[], number | null, ExtractionMethod]> = [
  ['B', opts4, 1, 'letter'],
  ['b', opts4, 1, 'letter'],
  ['(C)', opts4, 2, 'letter'],
  ['D.', opts4, 3, 'letter'],
  ['**A**', opts4, 0, 'letter'],
  [' C\n', opts4, 2, 'letter'],
  ['[B]', opts4, 1, 'letter'],
  ['B. a blue bicycle', opts4, 1, 'letter-prefix'],
  ['(C) a green bus', opts4, 2, 'letter-prefix'],
  ['D) a yellow truck is parked by the road.', opts4, 3, 'letter-prefix'],
  ['A: the car is red.', opts4, 0, 'letter-prefix'],
  ['C - three', count, 2, 'letter-prefix'],
  ['The answer is B.', opts4, 1, 'letter-phrase'],
  ['The correct answer is (D).', opts4, 3, 'letter-phrase'],
  ['Answer: C', opts4, 2, 'letter-phrase'],
  ['answer: a', opts4, null, 'none'],
  ['I would choose option A because the vehicle is red.', opts4, 0, 'letter-phrase'],
  ['Based on the image, the best option is C, a green bus.', opts4, 2, 'letter-phrase'],
  ['My answer is D', count, 3, 'letter-phrase'],
  ['Option B', where, 1, 'letter-phrase'],
  ['I think B is correct since the man stands on the right.', where, 1, 'letter-phrase'],
  ['Looking carefully, I select (A).', where, 0, 'letter-phrase'],
  ['The answer is A cat sitting on a mat.', opts4, null, 'none'],
  ['a blue bicycle', opts4, 1, 'option-text'],
  ['A blue bicycle.', opts4, 1, 'option-text'],
  ['There is a green bus in the picture.', opts4, 2, 'option-text'],
  ['I can see a yellow truck parked near the building.', opts4, 3, 'option-text'],
  ['three', count, 2, 'option-text'],
  ['There are three people in the image.', count, 2, 'option-text'],
  ['The object is located on the left side of the image.', where, 0, 'option-text'],
  ['It is in the middle of the photo.', where, 2, 'option-text'],
  ['Yes', yesno, 0, 'option-text'],
  ['No, there is no dog.', yesno, 1, 'option-text'],
  ['A red car or a blue bicycle, hard to say.', opts4, null, 'none'],
  ['Probably two or three.', count, null, 'none'],
  ['I think it is C', count, 2, 'letter-mention'],
  ['Considering the shadows, C.', where, 2, 'letter-mention'],
  ['Hmm... D?', count, 3, 'letter-mention'],
  ['It could be A or B.', opts4, null, 'none'],
  ['E', opts4, null, 'none'],
  ['The answer is E.', opts4, null, 'none'],
  ["I'm sorry, I cannot determine that from the image.", opts4, null, 'none'],
  ['', opts4, null, 'none'],
  ['A large crowd is gathered near the station.', where, null, 'none'],
  ['I see a man holding an umbrella.', opts4, null, 'none'],
  ['the answer is: (b) a blue bicycle', opts4, 1, 'option-text'],
  ['Answer: (B) a blue bicycle', opts4, 1, 'letter-phrase'],
  ['Final answer: D', where, 3, 'letter-phrase'],
];

describe('extractChoice', () => {
  it('has at least 40 cases', () => expect(table.length).toBeGreaterThanOrEqual(40));

  it.each(table)('%j', (reply, options, index, method) => {
    expect(extractChoice(reply, options)).toEqual({ index, method });
  });
});
