// Compiled by `tsc` in .ci/run: the package's declarations describe what the API takes and gives.
import { init, process, processSync, ImgestError, toBlob, type Options, type ProcessResult } from 'imgest';

await init();
const options: Options = {
  variants: [{ name: 'thumb', max_width: 300, max_height: 300, format: 'webp', quality: 80 }],
  limits: { max_pixels: 20_000_000 },
  linear_light: true,
};
const result: ProcessResult = await process(new Uint8Array(), options);
const thumb = result.variants['thumb'];
const width: number = thumb.width;
const bytes: Uint8Array = thumb.bytes;
const hex: string | undefined = result.dominantColor?.hex;
const stored: number = result.source.storedWidth;
const gps: boolean = result.source.metadata.gps;
const blob: Blob = toBlob(thumb);
try {
  processSync(new ArrayBuffer(0));
} catch (e) {
  if (e instanceof ImgestError) {
    const code: 'not_an_image' | string = e.code;
    void code;
  }
}
// @ts-expect-error: unknown option keys are rejected by the types too
const bad: Options = { qualty: 3 };
// @ts-expect-error: formats are a closed set
const badFormat: Options = { variants: [{ name: 'x', format: 'gif' }] };
void [width, bytes, hex, stored, gps, blob, bad, badFormat];
