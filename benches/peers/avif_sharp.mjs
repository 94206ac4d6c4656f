// sharp's side of benches/peers/avif.py: the thumb workload (decode, orient, fit in 800x800, never
// enlarge) encoded as each requested format, timed in this process. Reads a JSON job on stdin:
// {"images": [paths], "configs": [{"name", "format", "options"}], "runs": N, "out": dir}; writes
// each output to out/<config>/<stem>.<format> and prints one JSON line per (config, image) with
// the median milliseconds.
import sharp from 'sharp';
import { readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { basename, extname, join } from 'node:path';

sharp.cache(false);
const job = JSON.parse(readFileSync(0, 'utf8'));
const thumb = (buf, c) => sharp(buf).rotate()
  .resize(800, 800, { fit: 'inside', withoutEnlargement: true })[c.format](c.options).toBuffer();
for (const c of job.configs) {
  mkdirSync(join(job.out, c.name), { recursive: true });
  for (const path of job.images) {
    const buf = readFileSync(path);
    let out = await thumb(buf, c); // warm-up, and the output kept
    const times = [];
    for (let i = 0; i < job.runs; i++) {
      const t = performance.now();
      out = await thumb(buf, c);
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    const stem = basename(path, extname(path));
    writeFileSync(join(job.out, c.name, `${stem}.${c.format}`), out);
    console.log(JSON.stringify({ config: c.name, image: basename(path), ms: times[times.length >> 1], bytes: out.length }));
  }
}
