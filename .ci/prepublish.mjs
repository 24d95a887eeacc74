// `npm publish` runs this first (the prepublishOnly script): it refuses a package that names no
// repository. The field is not invented in package.json: whoever publishes sets the real URL, e.g.
//   npm pkg set repository.type=git repository.url=git+https://github.com/<owner>/<repo>.git
import { existsSync, readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const problems = [];
const url = typeof pkg.repository === 'string' ? pkg.repository : pkg.repository?.url;
if (typeof url !== 'string' || url.length === 0) problems.push('package.json has no repository URL');
if (!existsSync(new URL('../LICENSE', import.meta.url))) problems.push('there is no LICENSE file');
if (problems.length > 0) {
  console.error(`refusing to publish: ${problems.join('; ')}.`);
  process.exit(1);
}
