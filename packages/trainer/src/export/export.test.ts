import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { isVlitError, type VlitRecord } from '@vlit/core';
import { dialectFromDatasetInfo, type RecordDialect } from '@vlit/data';
import { readDatasetInfoFile, readRecordsFile } from '@vlit/data/node';
import { afterAll, describe, expect, it } from 'vitest';
import { llavaRecipe } from '../recipe.js';
import { exportLlamaFactory, exportLlava, exportMsSwift, msSwiftDialect } from './index.js';

/** A one-image record whose turns alternate user and assistant, after an optional system prompt. */
function chat(id: string, image: string, turns: string[], system?: string): VlitRecord {
  const said = turns.map((content, i) => ({ role: i % 2 === 0 ? ('user' as const) : ('assistant' as const), content }));
  return { id, images: [image], messages: system === undefined ? said : [{ role: 'system', content: system }, ...said] };
}

const records: VlitRecord[] = [
  chat('coco-1', 'coco/000000000001.jpg', ['<image>\nWhat is on the table?', 'Two cups and a "red" plate.', 'How many cups?', 'Two.']),
  chat('coco-2', 'coco/000000000002.jpg', ['Describe the image.\n<image>', 'A dog runs on the beach; the sea is calm.'], 'You are a careful assistant.'),
  chat('neg-3', 'coco/000000000003.jpg', ['<image>\nIs there a giraffe?', 'No, there is no giraffe in the image.']),
];

const recipe = llavaRecipe({
  pretrainData: [{ name: 'lcs', path: 'lcs.json' }],
  instructionData: [{ name: 'mix', path: 'mix.json' }],
  lora: { r: 16, alpha: 32 },
});

async function readAll(file: string, dialect: RecordDialect | 'llava'): Promise<VlitRecord[]> {
  const out: VlitRecord[] = [];
  for await (const r of readRecordsFile(file, { dialect })) out.push(r);
  return out;
}

/** The fields a record carries, without the provenance a reader adds (source.dialect). */
const essence = (r: VlitRecord) => ({ id: r.id, images: r.images, messages: r.messages });

describe('exports for other frameworks', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'vlit-export-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('LLaMA-Factory: sharegpt multimodal data, the documented dataset_info.json entry, a training YAML; lossless through Vlit readers', async () => {
    const out = path.join(dir, 'lf');
    const result = await exportLlamaFactory(recipe, {
      stage: 'finetune',
      records,
      outDir: out,
      model: '/models/llava-1.5-7b-hf',
      datasetName: 'vlit_mix',
      worldSize: 8,
    });
    expect(result.stats).toEqual({ written: 3, rejected: 0, warnings: 0 });

    // Exactly the fields LLaMA-Factory's data/README documents for multimodal sharegpt data (its mllm_demo entry).
    const info = await readDatasetInfoFile(result.datasetInfoFile);
    const documented = {
      file_name: 'vlit_mix.json',
      formatting: 'sharegpt',
      columns: { messages: 'messages', images: 'images' },
      tags: { role_tag: 'role', content_tag: 'content', user_tag: 'user', assistant_tag: 'assistant' },
    };
    // One record has a system prompt: the entry names LLaMA-Factory's documented `system` column too, else LLaMA-Factory would drop it.
    expect(info.vlit_mix).toStrictEqual({ ...documented, columns: { ...documented.columns, system: 'system' } });
    const plain = await exportLlamaFactory(recipe, {
      stage: 'finetune',
      records: records.filter((r) => r.messages[0].role !== 'system'),
      outDir: out,
      model: 'm',
      datasetName: 'vlit_plain',
    });
    const both = await readDatasetInfoFile(plain.datasetInfoFile);
    expect(both.vlit_plain).toStrictEqual({ ...documented, file_name: 'vlit_plain.json' });
    expect(Object.keys(both).sort()).toEqual(['vlit_mix', 'vlit_plain']);
    // The file is LLaMA-Factory's layout, not a Vlit dialect wearing its name.
    const raw = JSON.parse(readFileSync(result.dataFile, 'utf8')) as { messages: { role: string; content: string }[]; images: string[] }[];
    expect(raw[0].messages[0]).toEqual({ role: 'user', content: '<image>\nWhat is on the table?' });
    expect(raw[0].images).toEqual(['coco/000000000001.jpg']);

    const back = await readAll(result.dataFile, dialectFromDatasetInfo(info.vlit_mix));
    expect(back.map(essence)).toEqual(records.map(essence));

    const yaml = readFileSync(result.yamlFile, 'utf8');
    for (const line of [
      'model_name_or_path: /models/llava-1.5-7b-hf',
      'stage: sft',
      'finetuning_type: lora',
      'freeze_vision_tower: true',
      'freeze_multi_modal_projector: false',
      'freeze_language_model: true',
      'lora_rank: 16',
      'lora_alpha: 32',
      'lora_target: q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj',
      'dataset: vlit_mix',
      `dataset_dir: ${out}`,
      'template: llava',
      'per_device_train_batch_size: 16',
      'gradient_accumulation_steps: 1',
      'learning_rate: 0.00002',
      'lr_scheduler_type: cosine',
      'warmup_ratio: 0.03',
      'max_grad_norm: 1',
    ]) {
      expect(yaml.split('\n')).toContain(line);
    }
    expect(result.command).toBe(`llamafactory-cli train ${result.yamlFile}`);
  });

  it('ms-swift: messages JSONL with images and the swift sft command; lossless through Vlit readers', async () => {
    const out = path.join(dir, 'swift');
    const result = await exportMsSwift(recipe, { stage: 0, records, outDir: out, model: '/models/llava-1.5-7b-hf' });
    expect(result.stats.written).toBe(3);
    const lines = readFileSync(result.dataFile, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[1]).toMatchObject({
      system: 'You are a careful assistant.',
      messages: [
        { role: 'user', content: 'Describe the image.\n<image>' },
        { role: 'assistant', content: 'A dog runs on the beach; the sea is calm.' },
      ],
      images: ['coco/000000000002.jpg'],
    });
    const back = await readAll(result.dataFile, msSwiftDialect());
    expect(back.map(essence)).toEqual(records.map(essence));
    // Stage 1 trains the projector only: full training with the ViT and the LLM frozen.
    const flag = (name: string) => result.argv[result.argv.indexOf(name) + 1];
    expect(result.argv.slice(0, 2)).toEqual(['swift', 'sft']);
    expect([flag('--train_type'), flag('--freeze_vit'), flag('--freeze_aligner'), flag('--freeze_llm')]).toEqual(['full', 'true', 'false', 'true']);
    expect([flag('--dataset'), flag('--per_device_train_batch_size'), flag('--gradient_accumulation_steps'), flag('--learning_rate')]).toEqual([
      result.dataFile,
      '16',
      '16',
      '0.001',
    ]);
    expect(readFileSync(result.scriptFile, 'utf8')).toContain('swift sft \\\n  --model /models/llava-1.5-7b-hf');
  });

  it('LLaVA: its JSON and train_mem.py arguments; lossless through Vlit readers', async () => {
    const out = path.join(dir, 'llava');
    const result = await exportLlava(recipe, { stage: 'pretrain', records, outDir: out, model: 'lmsys/vicuna-7b-v1.5', imageFolder: './playground/data' });
    const raw = JSON.parse(readFileSync(result.dataFile, 'utf8')) as Record<string, unknown>[];
    expect(raw[2]).toMatchObject({
      id: 'neg-3',
      image: 'coco/000000000003.jpg',
      conversations: [
        { from: 'human', value: '<image>\nIs there a giraffe?' },
        { from: 'gpt', value: 'No, there is no giraffe in the image.' },
      ],
    });
    const back = await readAll(result.dataFile, 'llava');
    expect(back.map(essence)).toEqual(records.map(essence));
    const flag = (name: string) => result.args[result.args.indexOf(name) + 1];
    expect([flag('--version'), flag('--tune_mm_mlp_adapter'), flag('--mm_projector_type'), flag('--learning_rate'), flag('--model_max_length')]).toEqual([
      'plain',
      'True',
      'mlp2x_gelu',
      '0.001',
      '2048',
    ]);
    expect(result.args).not.toContain('--lora_enable');
  });

  it("a stage that trains the vision tower: LLaMA-Factory and ms-swift unfreeze it; LLaVA's train_mem.py cannot, so the export is refused before writing", async () => {
    // LLaVA-NeXT's stage 2: the tower at its own lr (the recipe's stage 1 dropped, so stage 0 is that stage).
    const towerRecipe = llavaRecipe({
      pretrainData: [{ name: 'lcs', path: 'lcs.json' }],
      instructionData: [{ name: 'mix', path: 'mix.json' }],
      stage2: { lr: 1e-5, visionTowerLr: 2e-6 },
    });
    towerRecipe.stages.splice(0, 1);
    const factory = await exportLlamaFactory(towerRecipe, { records, outDir: path.join(dir, 'tower-factory'), model: 'llava-hf/llava-1.5-7b-hf' });
    expect(readFileSync(factory.yamlFile, 'utf8').split('\n')).toContain('freeze_vision_tower: false');
    const swift = await exportMsSwift(towerRecipe, { records, outDir: path.join(dir, 'tower-swift'), model: 'llava-hf/llava-1.5-7b-hf' });
    const swiftFlag = (name: string) => swift.argv[swift.argv.indexOf(name) + 1];
    expect([swiftFlag('--freeze_vit'), swiftFlag('--vit_lr'), swiftFlag('--learning_rate')]).toEqual(['false', '0.000002', '0.00001']);
    expect(swift.argv).not.toContain('--aligner_lr');
    const out = path.join(dir, 'tower-llava');
    const refused = await exportLlava(towerRecipe, { records, outDir: out, model: 'lmsys/vicuna-7b-v1.5', imageFolder: './playground/data' }).catch(
      (e: unknown) => e,
    );
    expect(isVlitError(refused, 'VLIT_UNSUPPORTED')).toBe(true);
    expect((refused as { details: { field: string } }).details.field).toBe('stages.0.trainables');
    expect(existsSync(out)).toBe(false);
  });
});
