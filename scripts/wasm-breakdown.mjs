// Code size of a .wasm built with its name section, grouped by crate (Rust symbols) with C
// functions (libwebp, allocator shims) in one group. Used by scripts/wasm-size.sh.
//   node scripts/wasm-breakdown.mjs module.wasm [depth] [prefix]
import { readFileSync } from 'node:fs';

const buf = readFileSync(process.argv[2]);
const depth = +(process.argv[3] ?? 1);
const prefix = process.argv[4];
let p = 8;
const leb = () => {
  let r = 0, s = 0, b;
  do { b = buf[p++]; r |= (b & 0x7f) << s; s += 7; } while (b & 0x80);
  return r >>> 0;
};
let imports = 0;
const bodies = [];
const names = new Map();
let data = 0;
while (p < buf.length) {
  const id = buf[p++];
  const size = leb();
  const end = p + size;
  if (id === 2) { // imports: count the functions, which come first in the index space
    const n = leb();
    for (let i = 0; i < n; i++) {
      const module = leb(); p += module; // (`p += leb()` would read p before leb() moves it)
      const field = leb(); p += field;
      const kind = buf[p++];
      if (kind === 0) { leb(); imports++; } else if (kind === 1) { p++; const f = leb(); leb(); if (f & 1) leb(); } else if (kind === 2) { const f = leb(); leb(); if (f & 1) leb(); } else { p += 2; }
    }
  } else if (id === 10) {
    const n = leb();
    for (let i = 0; i < n; i++) { const s = leb(); bodies.push(s); p += s; }
  } else if (id === 11) {
    data += size;
  } else if (id === 0) {
    const nl = leb();
    const name = buf.subarray(p, p + nl).toString();
    p += nl;
    if (name === 'name') {
      while (p < end) {
        const sub = buf[p++];
        const ss = leb();
        const se = p + ss;
        if (sub === 1) {
          const n = leb();
          for (let i = 0; i < n; i++) { const idx = leb(); const l = leb(); names.set(idx, buf.subarray(p, p + l).toString()); p += l; }
        }
        p = se;
      }
    }
  }
  p = end;
}
if (!names.size) { console.error('no name section: build with strip = false'); process.exit(1); }

// Legacy Rust mangling: _ZN<len><segment>...E; `<T as Trait>` impls keep their first crate.
function path(n) {
  const m = n.match(/^_ZN(.*)E$/);
  if (!m) return null;
  const segs = [];
  let s = m[1];
  while (s.length) {
    const mm = s.match(/^(\d+)/);
    if (!mm) break;
    const l = +mm[1];
    segs.push(s.slice(mm[1].length, mm[1].length + l));
    s = s.slice(mm[1].length + l);
  }
  if (segs[0]?.startsWith('_$LT$')) {
    const x = n.match(/_\$LT\$([a-z_0-9]+)\.\.([a-z_0-9]+)/);
    return x ? [x[1], x[2]] : ['(impls)'];
  }
  return segs;
}
const groups = new Map();
bodies.forEach((size, i) => {
  const segs = path(names.get(i + imports) ?? '');
  const key = segs ? segs.slice(0, depth).join('::') : 'C (libwebp, shims)';
  if (prefix && !key.startsWith(prefix)) return;
  groups.set(key, (groups.get(key) ?? 0) + size);
});
const total = bodies.reduce((a, b) => a + b, 0);
console.log(`code ${(total / 1024).toFixed(0)} KiB, data ${(data / 1024).toFixed(0)} KiB`);
for (const [k, v] of [...groups].sort((a, b) => b[1] - a[1]).slice(0, 30)) {
  console.log(`${(v / 1024).toFixed(1).padStart(7)} KiB  ${k}`);
}
