// Checks the AVIF files the npm build wrote (avif.test.mjs with IMGEST_NPM_AVIF_OUT=DIR) against
// the native CLI's decode of them (`imgest-cli --out REPORTS DIR`): each decodes, at the size and
// with the alpha the npm build reported, and its dominant colour is that of the same variant as
// WebP (the CLI's decode of <name>-webp.webp) within two of the histogram's 16-level bins.
//   node check-avif-decode.mjs DIR REPORTS
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const [dir, reports] = process.argv.slice(2);
const report = (name) => JSON.parse(readFileSync(join(reports, name, 'report.json'), 'utf8')).output;
let checked = 0;
for (const f of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
  const name = f.slice(0, -5);
  const want = JSON.parse(readFileSync(join(dir, f), 'utf8'));
  const avif = report(name);
  const webp = report(`${name}-webp`);
  const got = { width: avif.source.width, height: avif.source.height, has_alpha: avif.source.has_alpha };
  if (avif.source.format !== 'avif' || JSON.stringify(got) !== JSON.stringify(want)) {
    throw new Error(`${name}: the native decode gives ${JSON.stringify(got)}, the npm build reported ${JSON.stringify(want)}`);
  }
  const [a, w] = [avif.dominant_color.rgb, webp.dominant_color.rgb];
  if (a.some((v, i) => Math.abs(v - w[i]) > 32)) {
    throw new Error(`${name}: dominant colour ${a} as AVIF, ${w} as WebP`);
  }
  checked++;
}
if (checked === 0) throw new Error(`no AVIF facts in ${dir}`);
console.log(`npm AVIF output: ${checked} files decoded natively at their size, alpha and colour`);
