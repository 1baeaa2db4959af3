import { vlitTsup } from '../../tsup.base';

export default vlitTsup({ entry: ['src/index.ts', 'src/node.ts', 'src/testing.ts'] });
