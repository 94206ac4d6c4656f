// The encode floor of the WebAssembly runners, as two runners of the peer benchmark harness:
//
//   imgest-npm-floor  imgest's npm package encoding each variant's pixels alone: the pixels are
//                     handed over as an uncompressed PNG (stored deflate blocks, no row filter),
//                     so what is timed is libwebp plus a copy, not decoding or resizing
//   jsquash-floor     @jsquash/webp's encoder (libwebp's SIMD build) on the same pixels
//
// Every image's variant pixels (upright, sRGB, at the sizes imgest gives them) are made in
// init(), before any timing, with sharp. Copied next to the harness's node_modules and
// common.mjs by benches/peers/run.sh like imgest_npm.mjs.
import fs from 'node:fs';
import zlib from 'node:zlib';
import { createRequire } from 'node:module';
import { runPeer, parseArgs } from './common.mjs';
import { init as initImgest, processSync } from 'imgest';
import sharp from 'sharp';

globalThis.ImageData ??= class ImageData {
  constructor(data, width, height) { this.data = data; this.width = width; this.height = height; this.colorSpace = 'srgb'; }
};
const require = createRequire(import.meta.url);
const W = require.resolve('@jsquash/webp/package.json').replace(/package\.json$/, '');
const webpEnc = await import('@jsquash/webp/encode.js');
const { simd } = await import('wasm-feature-detect');

const args = parseArgs();
const peer = args.peer || 'imgest-npm-floor';
const INGEST = { placeholder: false, palette_size: 1 };
const THUMB = {
  variants: [{ name: 'medium', max_width: 800, max_height: 800 }],
  dominant_color: false,
  placeholder: false,
};
const ENCODE_ONLY = (name) => ({ variants: [{ name }], dominant_color: false, placeholder: false });

/** An uncompressed PNG (8-bit RGB or RGBA, filter 0 on every row, stored deflate blocks). */
function storedPng(data, width, height, channels) {
  const stride = width * channels;
  const rows = Buffer.alloc((stride + 1) * height);
  for (let y = 0; y < height; y++) data.copy(rows, y * (stride + 1) + 1, y * stride, (y + 1) * stride);
  const chunk = (type, body) => {
    const len = Buffer.alloc(4); len.writeUInt32BE(body.length);
    const tb = Buffer.concat([Buffer.from(type, 'latin1'), body]);
    const crc = Buffer.alloc(4); crc.writeUInt32BE(zlib.crc32(tb) >>> 0);
    return Buffer.concat([len, tb, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0); ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; ihdr[9] = channels === 4 ? 6 : 2;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(rows, { level: 0 })), chunk('IEND', Buffer.alloc(0)),
  ]);
}

// image size in bytes -> [{ name, png, imageData }] (the bench images all differ in size)
const ready = new Map();

async function init() {
  await initImgest();
  await webpEnc.init(await WebAssembly.compile(fs.readFileSync(
    (await simd()) ? `${W}codec/enc/webp_enc_simd.wasm` : `${W}codec/enc/webp_enc.wasm`)));
  for (const file of args.images) {
    const buf = fs.readFileSync(file);
    const out = processSync(buf, args.workload === 'thumb' ? THUMB : INGEST);
    const alpha = out.source.hasAlpha;
    const list = [];
    for (const name of out.variantNames) {
      const { width, height } = out.variants[name];
      const pixels = (channels) => {
        let p = sharp(buf).rotate().resize(width, height, { fit: 'fill' }).toColourspace('srgb');
        p = channels === 4 ? p.ensureAlpha() : p.removeAlpha();
        return p.raw().toBuffer();
      };
      const own = await pixels(alpha ? 4 : 3);
      const rgba = alpha ? own : await pixels(4);
      list.push({
        name,
        png: storedPng(own, width, height, alpha ? 4 : 3),
        imageData: new ImageData(new Uint8ClampedArray(rgba.buffer, rgba.byteOffset, rgba.length), width, height),
      });
    }
    ready.set(buf.length, list);
  }
}

async function encoder(buf) {
  const outputs = {};
  for (const v of ready.get(buf.length)) {
    outputs[v.name] = peer.startsWith('jsquash')
      ? new Uint8Array(await webpEnc.default(v.imageData, { quality: 85 }))
      : processSync(v.png, ENCODE_ONLY(v.name)).variants[v.name].bytes;
  }
  return { outputs };
}

await runPeer(peer, { init, ingest: encoder, thumb: encoder }, {
  lib_version: peer.startsWith('jsquash') ? '@jsquash/webp 1.5.0 encode (SIMD)' : 'imgest npm, WebP encode alone',
  threads: '1',
});
