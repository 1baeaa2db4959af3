/**
 * Worker thread of the parallel `convertFile` (`@vlit/data/node`): it is set up once with the
 * conversion's dialects and options, then decodes, checks and encodes the packed batches it is sent,
 * one at a time, in the order they come.
 * @packageDocumentation
 */
import { type MessagePort, parentPort } from 'node:worker_threads';
import { checkRecordImages } from './io/node.js';
import { convertPacked, workerState, type BatchBase, type BatchResult, type WorkerSetup, type WorkerState } from './io/parallel-protocol.js';
import type { PackedBatch } from './io/packed-batch.js';

type Message = { setup: WorkerSetup; answers: MessagePort } | { id: number; batch: PackedBatch; base: BatchBase };

const port = parentPort;
if (port) {
  let state: WorkerState | undefined;
  let check: ((record: Parameters<typeof checkRecordImages>[0]) => Promise<void>) | undefined;
  let queue: Promise<void> = Promise.resolve();
  // Answers go to the port the calling thread reads between batches (see ConvertPool.poll).
  let answers: MessagePort | undefined;
  port.on('message', (m: Message) => {
    if ('setup' in m) {
      answers = m.answers;
      state = workerState(m.setup);
      const root = m.setup.root;
      check = root ? (record) => checkRecordImages(record, root).then(() => undefined) : undefined;
      return;
    }
    queue = queue.then(async () => {
      try {
        if (!state || !answers) throw new Error('batch before setup');
        const result: BatchResult = await convertPacked(state, m.batch, m.base, check);
        answers.postMessage({ id: m.id, result }, [result.bytes.buffer as ArrayBuffer]);
      } catch (err) {
        (answers ?? port).postMessage({ id: m.id, error: String((err as Error)?.stack ?? err) });
      }
    });
  });
}
