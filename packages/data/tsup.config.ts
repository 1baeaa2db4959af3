import { vlitTsup } from '../../tsup.base';

// convert-worker.ts is the worker thread of the parallel convertFile, loaded by path from beside the bundle.
export default vlitTsup({ entry: ['src/index.ts', 'src/node.ts', 'src/convert-worker.ts'] });
