import { vlitTsup } from '../../tsup.base';

export default vlitTsup({ entry: ['src/node.ts', 'src/web.ts'] });
