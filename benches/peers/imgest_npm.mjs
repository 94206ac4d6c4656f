// imgest's npm package (WebAssembly, one thread) as a runner of the peer benchmark harness.
// Copied next to the harness's node_modules and common.mjs by benches/peers/run.sh, which also
// installs the packed package there. Same work as the other peers: ingest = 4 WebP q85 variants
// (thumbnail 150, medium 800, large 1600, original) + dominant colour; thumb = one 800-px WebP.
import { runPeer } from './common.mjs';
import { init, processSync, version } from 'imgest';

// The placeholder is not part of the harness's workload; the palette is the dominant colour's
// by-product (k-means), so asking for one colour keeps the work the same.
const INGEST = { placeholder: false, palette_size: 1 };
const THUMB = {
  variants: [{ name: 'medium', max_width: 800, max_height: 800 }],
  dominant_color: false,
  placeholder: false,
};

await init(); // version() needs the module

const bytes = (r) => Object.fromEntries(r.variantNames.map((n) => [n, r.variants[n].bytes]));

await runPeer('imgest-npm', {
  dominantMethod: 'Oklab k-means over the visible pixels of the oriented sRGB image (grid-sampled to 4096)',
  ingest(buf) {
    const r = processSync(buf, INGEST);
    return { outputs: bytes(r), dominant: r.dominantColor ? r.dominantColor.rgb : null };
  },
  thumb(buf) {
    return { outputs: bytes(processSync(buf, THUMB)) };
  },
}, { lib_version: `imgest ${version()}`, threads: '1 (wasm32 + SIMD)' });
