import { vlitTsup } from '../../tsup.base';

// The hashbang goes on the bin entry (dist/cli.js) only, not on the library entry (dist/index.js).
export default vlitTsup({ entry: ['src/index.ts'], bin: ['src/cli.ts'] });
