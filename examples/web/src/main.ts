// Vlit in the browser: load a LLaVA folder, ask about an image with streamed tokens, train the connector.
// Everything runs in the page on @vlit/runtime/web (onnxruntime-web + the browser's image APIs).
import type { RawImage, VisionLanguageModel } from '@vlit/core';
import { createWebRuntime } from '@vlit/runtime/web';
import { fetchModelFiles, loadLlavaFromFiles, pickedModelFiles, type LoadedModel } from './load-model.js';
import { trainConnector } from './train.js';

// onnxruntime-web's wasm threads start workers from this same bundle (its own module URL); they must not
// touch the page, so the app starts only where there is a document.
if (typeof document !== 'undefined') start();

/** Wire up the page. */
function start(): void {
  const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
  const status = $<HTMLParagraphElement>('status');
  const answer = $<HTMLParagraphElement>('answer');
  const ask = $<HTMLButtonElement>('ask');
  const train = $<HTMLButtonElement>('train');

  // `?threads=N` sets onnxruntime-web's wasm threads (default: its own choice; threads need COOP/COEP headers).
  const params = new URLSearchParams(location.search);
  const threads = Number(params.get('threads')) || undefined;
  const runtime = createWebRuntime(threads ? { wasm: { numThreads: threads } } : {});
  let model: LoadedModel | undefined;
  let vlm: VisionLanguageModel | undefined;
  let image: RawImage | undefined;

  function setStatus(text: string, state: string): void {
    status.textContent = text;
    document.body.dataset.state = state;
  }

  function fail(err: unknown): void {
    setStatus(`Error: ${err instanceof Error ? err.message : String(err)}`, 'error');
  }

  async function load(files: Map<string, Uint8Array>, name: string): Promise<void> {
    setStatus(`Loading ${name}…`, 'loading');
    model = await loadLlavaFromFiles(files, runtime, name);
    vlm = model.vlm;
    ask.disabled = false;
    train.disabled = false;
    setStatus(`Loaded ${name} (${model.spec.modelType}, vocabulary ${model.tokenizer.vocabSize}).`, 'loaded');
  }

  // 1. The model: ?model=URL, or a picked folder.
  const fromUrl = params.get('model');
  if (fromUrl)
    fetchModelFiles(fromUrl)
      .then((files) => load(files, fromUrl))
      .catch(fail);
  $<HTMLInputElement>('folder').addEventListener('change', (e) => {
    const list = (e.target as HTMLInputElement).files;
    if (list?.length)
      pickedModelFiles(list)
        .then((files) => load(files, list[0].webkitRelativePath.split('/')[0] || 'folder'))
        .catch(fail);
  });

  // 2. The image: file picker or drag-and-drop, decoded by the runtime's browser codec.
  async function takeImage(file: File): Promise<void> {
    const bytes = new Uint8Array(await file.arrayBuffer());
    image = await runtime.images.decode(bytes, { source: file.name, channels: 3 });
    const preview = $<HTMLImageElement>('preview');
    preview.src = URL.createObjectURL(file);
    preview.hidden = false;
    document.body.dataset.image = `${image.width}x${image.height}`;
  }
  $<HTMLInputElement>('image').addEventListener('change', (e) => {
    const file = (e.target as HTMLInputElement).files?.[0];
    if (file) takeImage(file).catch(fail);
  });
  const drop = $<HTMLDivElement>('drop');
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const file = e.dataTransfer?.files[0];
    if (file) takeImage(file).catch(fail);
  });

  // 3. Ask: the answer appears token by token (greedy decoding).
  ask.addEventListener('click', async () => {
    if (!vlm) return;
    const question = $<HTMLInputElement>('question').value;
    answer.textContent = '';
    answer.dataset.updates = '0';
    answer.dataset.done = 'false';
    ask.disabled = true;
    try {
      const content = image ? [{ type: 'image' as const }, { type: 'text' as const, text: question }] : question;
      const result = await vlm.generate(
        { messages: [{ role: 'user', content }], images: image ? [image] : [] },
        {
          temperature: 0,
          maxNewTokens: 16,
          onToken: (piece) => {
            answer.textContent += piece;
            answer.dataset.updates = String(Number(answer.dataset.updates) + 1);
          },
        },
      );
      answer.textContent = result.text;
      answer.dataset.done = 'true';
    } catch (err) {
      fail(err);
    } finally {
      ask.disabled = false;
    }
  });

  // 4. Train the connector, drawing the loss as it goes.
  function drawLoss(losses: number[]): void {
    const chart = $<HTMLElement>('chart');
    const max = Math.max(...losses);
    const min = Math.min(...losses);
    const x = (i: number): number => (losses.length < 2 ? 0 : (i / (losses.length - 1)) * 390 + 5);
    const y = (v: number): number => 150 - ((v - min) / (max - min || 1)) * 140;
    const points = losses.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    chart.innerHTML = `<polyline fill="none" stroke="#36c" stroke-width="2" points="${points}"/>`;
    $<HTMLParagraphElement>('loss').textContent = `step ${losses.length}: loss ${losses[losses.length - 1].toFixed(4)} (first ${losses[0].toFixed(4)})`;
    document.body.dataset.losses = JSON.stringify(losses);
  }
  train.addEventListener('click', async () => {
    if (!model) return;
    const steps = Number($<HTMLInputElement>('steps').value) || 30;
    const losses: number[] = [];
    train.disabled = true;
    ask.disabled = true;
    setStatus(`Training the connector for ${steps} steps…`, 'training');
    try {
      const weights = await trainConnector(model, runtime.backend, steps, (_step, loss) => {
        losses.push(loss);
        drawLoss(losses);
      });
      model.projector.weights = weights;
      vlm = model.withProjector(weights);
      setStatus(`Trained the connector for ${steps} steps: loss ${losses[0].toFixed(4)} → ${losses[losses.length - 1].toFixed(4)}.`, 'trained');
    } catch (err) {
      fail(err);
    } finally {
      train.disabled = false;
      ask.disabled = false;
    }
  });
}
