import { init, process, toBlob, ImgestError } from 'imgest';

const status = document.getElementById('status');
const results = document.getElementById('results');
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'dataset') Object.assign(node.dataset, v);
    else node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
}

async function handle(file) {
  const t0 = performance.now();
  const section = el('section', { class: 'image', dataset: { name: file.name } });
  results.append(section);
  try {
    const result = await process(file);
    const ms = performance.now() - t0;
    const s = result.source;
    const removed = Object.entries(s.metadata).filter(([, v]) => v).map(([k]) => k);
    const uploaded = result.variantNames.reduce((n, name) => n + result.variants[name].bytes.length, 0);
    const dominant = result.dominantColor?.hex ?? '';
    section.dataset.width = s.width;
    section.dataset.height = s.height;
    section.dataset.orientation = s.orientation;
    section.dataset.dominant = dominant;
    section.dataset.removed = removed.join(',');
    section.append(
      el('h2', {}, file.name),
      el('p', {},
        `${s.format.toUpperCase()} ${s.width}×${s.height}`,
        s.orientation !== 1 ? ` (turned upright from EXIF orientation ${s.orientation})` : '',
        ` · dominant colour `, el('span', { class: 'swatch', style: `background:${dominant}` }), ` ${dominant}`,
        ` · metadata removed: ${removed.length ? removed.join(', ') : 'none'}`,
        s.iccDescription ? ` · colour converted from “${s.iccDescription}”` : '',
        ` · ${ms.toFixed(0)} ms`),
      el('p', { class: 'sizes' }, `Before: ${kb(file.size)} original upload · after: ${kb(result.variants.original.bytes.length)} full-size WebP, ${kb(uploaded)} for all variants`),
    );
    const row = el('div', { class: 'variants' });
    for (const name of result.variantNames) {
      const v = result.variants[name];
      const img = el('img', { alt: name, src: URL.createObjectURL(toBlob(v)), dataset: { variant: name, width: v.width, height: v.height, bytes: v.bytes.length } });
      row.append(el('figure', {}, img, el('figcaption', {}, `${name}: ${v.width}×${v.height}, ${kb(v.bytes.length)}`)));
    }
    section.append(row);
    section.dataset.state = 'done';
  } catch (e) {
    const code = e instanceof ImgestError ? e.code : 'internal';
    section.dataset.state = 'error';
    section.dataset.code = code;
    section.append(el('h2', {}, file.name), el('p', { class: 'error' }, `Rejected [${code}]: ${e.message}`));
  }
}

async function handleAll(files) {
  for (const file of files) await handle(file);
  status.textContent = `Processed ${files.length} file(s).`;
}

await init();
status.textContent = 'Ready.';
document.body.dataset.ready = 'true';
document.getElementById('files').addEventListener('change', (e) => handleAll([...e.target.files]));
const drop = document.getElementById('drop');
drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => { e.preventDefault(); drop.classList.remove('over'); handleAll([...e.dataTransfer.files]); });
