// The version of pushline: the one in package.json, which the package, the image (it ships the
// same package.json) and `pushline --version` all report. Read from the package root, one level
// up from both src/ and dist/.
import { readFileSync } from 'node:fs';

export const PACKAGE_VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
