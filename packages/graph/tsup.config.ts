import { vlitTsup } from '../../tsup.base';

// The ./node subpath's entry is src/node-io.ts (file I/O, not graph nodes); package.json maps ./node to dist/node-io.js.
export default vlitTsup({ entry: ['src/index.ts', 'src/node-io.ts'] });
