import { describe, expect, it } from 'vitest';
import type { VlitRecord } from '@vlit/core';
import type { ImageAnnotations } from '../annotations.js';
import { checkConsistency, cocoVocabulary, COCO_CATEGORIES, detectLanguage, findHallucinations, findObjectMentions, pluralize, questionKind } from './index.js';

const ann: ImageAnnotations = {
  imageId: '1',
  file: 'a.png',
  width: 100,
  height: 100,
  regions: [],
  vqa: [],
  ocr: [],
  captions: ['Two dogs play near a car.'],
  objects: [
    { category: 'dog', bbox: [0, 0, 10, 10], attributes: ['brown'] },
    { category: 'dog', bbox: [20, 0, 10, 10], attributes: ['white'] },
    { category: 'car', bbox: [50, 50, 20, 10], attributes: ['red'] },
    { category: 'hot dog', bbox: [70, 70, 5, 5], attributes: [] },
  ],
};
const rec = (q: string, a: string): VlitRecord => ({
  id: 'r',
  images: ['a.png'],
  messages: [
    { role: 'user', content: `<image>\n${q}` },
    { role: 'assistant', content: a },
  ],
});
const reasons = (q: string, a: string): string[] => [...checkConsistency(rec(q, a), ann), ...findHallucinations(rec(q, a), ann)].map((i) => i.reason);

describe('vocabulary', () => {
  it('covers all 80 COCO categories with plurals and synonyms', () => {
    const v = cocoVocabulary();
    expect(COCO_CATEGORIES).toHaveLength(80);
    for (const c of COCO_CATEGORIES) {
      expect(v.lookup(c)?.category).toBe(c);
      expect(v.lookup(pluralize(c))?.category).toBe(c);
    }
    expect(pluralize('knife')).toBe('knives');
    expect(pluralize('bus')).toBe('buses');
    expect(pluralize('hot dog')).toBe('hot dogs');
    expect(pluralize('puppy')).toBe('puppies');
    expect(v.lookup('puppies')?.category).toBe('dog');
    expect(v.lookup('sofa')?.category).toBe('couch');
    expect(v.lookup('people')?.category).toBe('person');
    expect(v.lookup('mice')?.category).toBe('mouse');
  });

  it('finds mentions longest-first with negation, counts and colours', () => {
    const ms = findObjectMentions('Two brown puppies eat a hot dog; there is no cat. The orange car is not a bus.');
    expect(ms.map((m) => [m.category, m.negated, m.count ?? null, m.colour ?? null])).toEqual([
      ['dog', false, 2, 'brown'],
      ['hot dog', false, null, null],
      ['cat', true, null, null],
      ['car', false, null, 'orange'],
      ['bus', true, null, null],
    ]);
    expect(findObjectMentions('An orange on the table.').map((m) => m.category)).toEqual(['orange', 'dining table']);
  });
});

describe('answer–annotation checks', () => {
  it('question kinds', () => {
    expect(questionKind('How many dogs are there in the image?')).toBe('count');
    expect(questionKind('Count the cars in the picture.')).toBe('count');
    expect(questionKind('What color is the car?')).toBe('colour');
    expect(questionKind('Is there a cat in the image?')).toBe('existence');
    expect(questionKind('Answer yes or no: does the picture include a cat?')).toBe('existence');
    expect(questionKind('Look carefully: is a cat in the image?')).toBe('existence');
    expect(questionKind('Is the dog brown?')).toBe('other');
  });

  it('counts: right, wrong, synonyms and colour-restricted counts', () => {
    expect(reasons('How many dogs are there?', 'There are two dogs.')).toEqual([]);
    expect(reasons('How many puppies are there?', 'I count 3.')).toEqual(['count-mismatch']);
    expect(reasons('How many cars are shown?', 'One.')).toEqual([]);
    expect(reasons('How many brown dogs are there?', '1')).toEqual([]);
    expect(reasons('How many white dogs are there?', '2')).toEqual(['count-mismatch']);
    expect(reasons('Describe the scene.', 'Three dogs play near a car.')).toEqual(['count-mismatch']);
  });

  it('existence answers contradicting the objects list', () => {
    expect(reasons('Is there a cat in the image?', 'No, there is no cat.')).toEqual([]);
    expect(reasons('Is there a cat in the image?', 'Yes.')).toEqual(['existence-contradiction']);
    expect(reasons('Does the image contain a dog?', 'No.')).toEqual(['existence-contradiction']);
    expect(reasons('Can you see a vehicle?', 'No.')).toEqual([]); // not a known category: no judgement
  });

  it('colours', () => {
    expect(reasons('What color is the car?', 'It is red.')).toEqual([]);
    expect(reasons('What color is the car?', 'The car is blue.')).toEqual(['colour-mismatch']);
    expect(reasons('What colour are the dogs?', 'Brown and white.')).toEqual([]);
    expect(reasons('Describe the scene.', 'A green car is parked.')).toEqual(['colour-mismatch']);
  });

  it('hallucinated objects, through synonyms, plurals and multi-word names', () => {
    expect(reasons('Describe the image.', 'Two dogs and a red automobile; someone left a hot dog.')).toEqual([]);
    expect(reasons('Describe the image.', 'A dog sleeps on a sofa.')).toEqual(['hallucinated-object']);
    expect(reasons('Describe the image.', 'The dogs chase two kittens.')).toEqual(['hallucinated-object']);
    expect(reasons('Describe the image.', 'There are dogs but no cats or giraffes.')).toEqual([]);
    expect(reasons('Is there a giraffe?', 'No, a giraffe is not in the picture.')).toEqual([]);
    const h = findHallucinations(rec('Describe.', 'A teddy bear sits by the car.'), ann);
    expect(h.map((x) => x.details.category)).toEqual(['teddy bear']);
  });
});

describe('language detection', () => {
  it('tells scripts and Latin-script languages apart', () => {
    expect(detectLanguage('How many dogs are there in the image?').language).toBe('en');
    expect(detectLanguage('Wie viele Hunde sind auf dem Bild?').language).toBe('de');
    expect(detectLanguage('Combien de chiens y a-t-il dans cette image ?').language).toBe('fr');
    expect(detectLanguage('¿Cuántos perros hay en la imagen?').language).toBe('es');
    expect(detectLanguage('图片里有几只狗？').language).toBe('zh');
    expect(detectLanguage('画像の中に犬は何匹いますか？').language).toBe('ja');
    expect(detectLanguage('Сколько собак на картинке?').language).toBe('ru');
    expect(detectLanguage('12345').language).toBe('und');
  });
});
