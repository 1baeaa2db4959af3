import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { isVlitError } from '@vlit/core';
import { buildWordLevelTokenizer, createWordLevelTokenizer } from './word-level-tokenizer.js';
import { createHfTokenizer } from './hf-tokenizer.js';
import { loadWordLevelTokenizer, saveWordLevelTokenizer } from './node.js';
import { loadQwen3 } from './test-support.js';

describe('Qwen3 tokenizer from tokenizer.json', () => {
  it('encodes known ids and gives offsets that tile the text', async () => {
    const { tokenizer } = await loadQwen3();
    // Hand-checked against Qwen3's added tokens: <|im_start|> 151644, <|im_end|> 151645, "\n" is 198.
    const text = '<|im_start|>user\nHi there<|im_end|>\n';
    const enc = tokenizer.encode(text);
    expect(enc.ids[0]).toBe(151644);
    expect(enc.ids).toContain(151645);
    expect(enc.ids[enc.ids.length - 1]).toBe(198);
    expect(enc.offsets!.map(([s, e]) => text.slice(s, e))).toEqual(['<|im_start|>', 'user', '\n', 'Hi', ' there', '<|im_end|>', '\n']);
    expect(tokenizer.decode(enc.ids)).toBe(text);
    expect(tokenizer.specialTokens.eos).toBe('<|im_end|>');
  });

  it('offsets cover multi-byte characters split across tokens', async () => {
    const { tokenizer } = await loadQwen3();
    const text = 'héllo 世界 🚌!';
    const enc = tokenizer.encode(text);
    const offsets = enc.offsets!;
    expect(offsets[0][0]).toBe(0);
    expect(offsets[offsets.length - 1][1]).toBe(text.length);
    for (let i = 1; i < offsets.length; i++) expect(offsets[i][0]).toBeLessThanOrEqual(offsets[i - 1][1]);
  });

  it('a broken tokenizer.json is a FormatError naming the file', () => {
    let err: unknown;
    try {
      createHfTokenizer({ tokenizerJson: { nope: 1 }, source: 'broken/tokenizer.json' });
    } catch (e) {
      err = e;
    }
    expect(isVlitError(err, 'VLIT_FORMAT')).toBe(true);
    expect((err as { details: { file: string } }).details.file).toBe('broken/tokenizer.json');
  });
});

describe('word-level tokenizer', () => {
  const tok = buildWordLevelTokenizer({ corpus: ['the cat sat on the mat.\nthe dog'], specialTokens: ['<image>', '<|im_end|>'] });

  it('builds a vocabulary by frequency after the special tokens', () => {
    expect(tok.idToToken(0)).toBe('<unk>');
    expect(tok.idToToken(1)).toBe('<image>');
    expect(tok.idToToken(2)).toBe('<|im_end|>');
    expect(tok.idToToken(3)).toBe('the'); // 3 occurrences
    const enc = tok.encode('the <image>cat\nflew<|im_end|>');
    expect(enc.ids.map((i) => tok.idToToken(i))).toEqual(['the', '<image>', 'cat', '\n', '<unk>', '<|im_end|>']);
    expect(enc.offsets).toEqual([
      [0, 3],
      [4, 11],
      [11, 14],
      [14, 15],
      [15, 19],
      [19, 29],
    ]);
  });

  it('saves a standard tokenizer.json that @huggingface/tokenizers reads to the same ids', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'vlit-wl-')), 'tokenizer.json');
    await saveWordLevelTokenizer(tok, file);
    const again = await loadWordLevelTokenizer(file);
    const text = 'the cat sat on the mat.\n<image>the dog<|im_end|>';
    expect(again.encode(text).ids).toEqual(tok.encode(text).ids);
    const hf = new HfTokenizer(tok.toJson(), {});
    expect(hf.encode(text, { add_special_tokens: false }).ids).toEqual(tok.encode(text).ids);
    expect(() => createWordLevelTokenizer({ model: { type: 'BPE' } })).toThrow(/WordLevel/);
  });

  it('writes the tokenizer files of a checkpoint folder: tokenizer.json that tokenizers reads to the same ids, and its special tokens', () => {
    const withRoles = buildWordLevelTokenizer({
      corpus: ['the cat sat'],
      specialTokens: ['<s>', '</s>', '<pad>'],
      roles: { bos: '<s>', eos: '</s>', pad: '<pad>' },
    });
    const files = withRoles.hfTokenizerFiles({ modelMaxLength: 128 });
    const hf = new HfTokenizer(JSON.parse(files['tokenizer.json']), {});
    expect(hf.encode('the cat</s>', { add_special_tokens: false }).ids).toEqual(withRoles.encode('the cat</s>').ids);
    expect(JSON.parse(files['tokenizer_config.json'])).toEqual({
      bos_token: '<s>',
      eos_token: '</s>',
      pad_token: '<pad>',
      unk_token: '<unk>',
      model_max_length: 128,
      tokenizer_class: 'PreTrainedTokenizerFast',
    });
    // Roles the tokenizer lacks are left out, not written as null.
    expect(Object.keys(JSON.parse(tok.hfTokenizerFiles()['tokenizer_config.json']))).toEqual(['unk_token', 'tokenizer_class']);
  });
});

describe('a tokenizer.json without an unk_token', () => {
  it('refuses a word outside its vocabulary with a typed error naming the word and the file (tokenizers refuses it too)', () => {
    const tokenizerJson = {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: [],
      normalizer: null,
      pre_tokenizer: { type: 'Whitespace' },
      post_processor: null,
      decoder: null,
      model: { type: 'WordLevel', vocab: { hello: 0, world: 1 }, unk_token: null },
    };
    const t = createHfTokenizer({ tokenizerJson, source: 'tiny/tokenizer.json' });
    expect(t.encode('hello world').ids).toEqual([0, 1]);
    let caught: unknown;
    try {
      t.encode('hello there');
    } catch (err) {
      caught = err;
    }
    expect(isVlitError(caught, 'VLIT_FORMAT')).toBe(true);
    expect((caught as Error).message).toContain("'there'");
    expect((caught as { details: Record<string, unknown> }).details).toMatchObject({ file: 'tiny/tokenizer.json', field: 'model.unk_token', token: 'there' });
  });
});
