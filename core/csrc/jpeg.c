/* The JPEG decoder's C side: libjpeg(-turbo)'s decompressor behind five calls that never
 * unwind into Rust. libjpeg reports an error by calling `error_exit`, which must not return;
 * here it jumps back (longjmp) to the entry point that called into the library, which then
 * returns the libjpeg message code. WebAssembly has no setjmp/longjmp of its own: there the
 * compiler lowers them onto WebAssembly exceptions (clang `-mllvm -wasm-enable-sjlj`) and
 * `sjlj_wasm.c` supplies the few runtime functions that lowering calls. No Rust frame ever sits
 * between a setjmp and its longjmp (the data source is libjpeg's memory source, the allocator
 * returns normally), so nothing is unwound through Rust code. */

#include <stddef.h>
#include <stdio.h>

#define JPEG_INTERNALS /* for jpegint.h's `struct jpeg_color_deconverter` */
#include "jpeglib.h"
#include "jerror.h"

#ifdef __wasm__
/* Lowered by the compiler; the buffer holds the setjmp id the runtime writes into it. */
typedef unsigned long long imgest_jmp_buf[4];
int setjmp(imgest_jmp_buf env) __attribute__((returns_twice));
_Noreturn void longjmp(imgest_jmp_buf env, int val);
#else
#include <setjmp.h>
typedef jmp_buf imgest_jmp_buf;
#endif

extern const char *const jpeg_std_message_table[];

/* Returned when the caller's `stop` callback asked to stop (outside libjpeg's message codes). */
#define IMGEST_JPEG_STOPPED 100000

typedef struct imgest_jpeg {
  struct jpeg_decompress_struct cinfo;
  struct jpeg_error_mgr err;
  struct jpeg_progress_mgr progress;
  /* Asked at every progress report (each scan's iMCU row, each output row): nonzero stops the
   * decode. */
  int (*stop)(const void *ctx);
  const void *stop_ctx;
  imgest_jmp_buf jump;
  int created;
  int code; /* the libjpeg message code that ended the call, 0 if none */
} imgest_jpeg;

size_t imgest_jpeg_size(void) { return sizeof(imgest_jpeg); }

static void on_error(j_common_ptr cinfo) {
  imgest_jpeg *d = (imgest_jpeg *)cinfo;
  d->code = d->err.msg_code > 0 ? d->err.msg_code : -1;
  longjmp(d->jump, 1);
}

/* Warnings (level -1) are counted; a premature end of the data is fatal, as a truncated file
 * must not come out with a gray lower part. Trace messages (level >= 0) are ignored. */
static void on_message(j_common_ptr cinfo, int level) {
  imgest_jpeg *d = (imgest_jpeg *)cinfo;
  if (level < 0) {
    d->err.num_warnings++;
    if (d->err.msg_code == JWRN_JPEG_EOF) on_error(cinfo);
  }
}

static void on_progress(j_common_ptr cinfo) {
  imgest_jpeg *d = (imgest_jpeg *)cinfo;
  if (d->stop != NULL && d->stop(d->stop_ctx)) {
    d->code = IMGEST_JPEG_STOPPED;
    longjmp(d->jump, 1);
  }
}

static void no_output(j_common_ptr cinfo) { (void)cinfo; }

static void no_format(j_common_ptr cinfo, char *buffer) {
  (void)cinfo;
  buffer[0] = 0;
}

static void reset(j_common_ptr cinfo) {
  imgest_jpeg *d = (imgest_jpeg *)cinfo;
  d->err.num_warnings = 0;
  d->err.msg_code = 0;
}

/* Reads the headers of `data` (which must outlive the decoder). `max_memory` bounds what the
 * library's memory manager gives out for its large buffers (coefficients of progressive
 * images, row groups): past it the call fails with JERR_NO_BACKING_STORE. */
int imgest_jpeg_begin(imgest_jpeg *d, const unsigned char *data, unsigned long len,
                      long max_memory) {
  d->err.error_exit = on_error;
  d->err.emit_message = on_message;
  d->err.output_message = no_output;
  d->err.format_message = no_format;
  d->err.reset_error_mgr = reset;
  d->err.trace_level = 0;
  d->err.num_warnings = 0;
  d->err.msg_code = 0;
  d->err.jpeg_message_table = jpeg_std_message_table;
  d->err.last_jpeg_message = (int)JMSG_LASTMSGCODE - 1;
  d->err.addon_message_table = NULL;
  d->cinfo.err = &d->err;
  d->code = 0;
  if (setjmp(d->jump)) return d->code;
  jpeg_create_decompress(&d->cinfo);
  d->created = 1;
  d->cinfo.mem->max_memory_to_use = max_memory;
  jpeg_mem_src(&d->cinfo, data, len);
  jpeg_read_header(&d->cinfo, TRUE);
  return 0;
}

/* What the frame header says: stored size, components, libjpeg's colour space guess, the Adobe
 * marker. */
void imgest_jpeg_info(const imgest_jpeg *d, unsigned *width, unsigned *height, int *components,
                      int *color_space, int *adobe) {
  *width = d->cinfo.image_width;
  *height = d->cinfo.image_height;
  *components = d->cinfo.num_components;
  *color_space = (int)d->cinfo.jpeg_color_space;
  *adobe = d->cinfo.saw_Adobe_marker ? 1 : 0;
}

#ifdef __wasm_simd128__
#include <wasm_simd128.h>

/* Helpers inlined, so that their vectors stay in registers (the module is built for size). */
#define SIMD_INLINE static inline __attribute__((always_inline))

/* Four lanes times a constant. */
SIMD_INLINE v128_t mulc(v128_t v, int c) { return wasm_i32x4_mul(v, wasm_i32x4_splat(c)); }

/* jdct.h's; the function whose place is taken below. */
void jpeg_idct_islow(j_decompress_ptr cinfo, jpeg_component_info *compptr, JCOEFPTR coef_block,
                     JSAMPARRAY output_buf, JDIMENSION output_col);

/* libjpeg's YCbCr -> RGB conversion (jdcolor.c: the fixed-point products of its tables,
 * SCALEBITS 16, then the range limit) in WebAssembly SIMD, 16 pixels at a time, put in place of
 * libjpeg's own `color_convert` step: libjpeg-turbo has no SIMD code for WebAssembly, and its
 * table-driven C loop was 10 % of an npm thumbnail of a 6 MP photo. The same integers as
 * libjpeg's C code and its x86 SIMD code, so the same bytes as the native build. */

/* `y + ((product + 2^15) >> 16)` on four lanes. */
SIMD_INLINE v128_t ycc_term(v128_t y, v128_t product) {
  v128_t rounded = wasm_i32x4_add(product, wasm_i32x4_splat(1 << 15));
  return wasm_i32x4_add(y, wasm_i32x4_shr(rounded, 16));
}

/* Lanes 4q..4q+3 of 16 bytes as 32-bit values. */
SIMD_INLINE void ycc_widen(v128_t v, v128_t out[4]) {
  v128_t lo = wasm_u16x8_extend_low_u8x16(v), hi = wasm_u16x8_extend_high_u8x16(v);
  out[0] = wasm_u32x4_extend_low_u16x8(lo);
  out[1] = wasm_u32x4_extend_high_u16x8(lo);
  out[2] = wasm_u32x4_extend_low_u16x8(hi);
  out[3] = wasm_u32x4_extend_high_u16x8(hi);
}

/* One channel of 16 pixels from four lanes of 32-bit values, clamped to 0..255. */
SIMD_INLINE v128_t ycc_pack(const v128_t v[4]) {
  return wasm_u8x16_narrow_i16x8(wasm_i16x8_narrow_i32x4(v[0], v[1]),
                                 wasm_i16x8_narrow_i32x4(v[2], v[3]));
}

/* 16 pixels: Y, Cb and Cr planes in, interleaved RGB (48 bytes) out. */
static void ycc_rgb_16(const JSAMPLE *py, const JSAMPLE *pcb, const JSAMPLE *pcr, JSAMPLE *out) {
  v128_t y[4], cb[4], cr[4], r[4], g[4], b[4];
  ycc_widen(wasm_v128_load(py), y);
  ycc_widen(wasm_v128_load(pcb), cb);
  ycc_widen(wasm_v128_load(pcr), cr);
  v128_t center = wasm_i32x4_splat(128);
  _Pragma("clang loop unroll(full)")
  for (int q = 0; q < 4; q++) {
    v128_t xb = wasm_i32x4_sub(cb[q], center), xr = wasm_i32x4_sub(cr[q], center);
    /* FIX(1.40200), -FIX(0.34414), -FIX(0.71414), FIX(1.77200) */
    r[q] = ycc_term(y[q], mulc(xr, 91881));
    g[q] = ycc_term(y[q], wasm_i32x4_add(mulc(xb, -22554), mulc(xr, -46802)));
    b[q] = ycc_term(y[q], mulc(xb, 116130));
  }
  v128_t rv = ycc_pack(r), gv = ycc_pack(g), bv = ycc_pack(b);
  /* R, G and B of pixel i at bytes 3i, 3i + 1, 3i + 2 (lanes marked 0 are filled by B next). */
  v128_t rg0 = wasm_i8x16_shuffle(rv, gv, 0, 16, 0, 1, 17, 0, 2, 18, 0, 3, 19, 0, 4, 20, 0, 5);
  v128_t rg1 = wasm_i8x16_shuffle(rv, gv, 21, 0, 6, 22, 0, 7, 23, 0, 8, 24, 0, 9, 25, 0, 10, 26);
  v128_t rg2 = wasm_i8x16_shuffle(rv, gv, 0, 11, 27, 0, 12, 28, 0, 13, 29, 0, 14, 30, 0, 15, 31, 0);
  wasm_v128_store(out, wasm_i8x16_shuffle(rg0, bv, 0, 1, 16, 3, 4, 17, 6, 7, 18, 9, 10, 19, 12,
                                          13, 20, 15));
  wasm_v128_store(out + 16, wasm_i8x16_shuffle(rg1, bv, 0, 21, 2, 3, 22, 5, 6, 23, 8, 9, 24, 11,
                                               12, 25, 14, 15));
  wasm_v128_store(out + 32, wasm_i8x16_shuffle(rg2, bv, 26, 1, 2, 27, 4, 5, 28, 7, 8, 29, 10, 11,
                                               30, 13, 14, 31));
}

/* libjpeg's accurate integer IDCT (jidctint.c's `jpeg_idct_islow`: the same products, sums and
 * shifts in 32-bit integers, and its range limit table's values, wrap-around included) on four
 * columns, then four rows, at once: libjpeg-turbo has no SIMD IDCT for WebAssembly, and the C
 * one was 15 % of an npm thumbnail of a 6 MP photo. Its shortcut for columns and rows whose AC
 * terms are all zero is not taken: it gives what the full computation gives, as long as the
 * dequantized coefficients' products fit in 32 bits (any valid JPEG; only corrupt coefficients
 * overflow, where libjpeg's C and x86 SIMD code differ from each other too). Same bytes as the
 * C code and as the x86 SIMD code that native builds run (npm parity tests). */
/* The 1-D stage on four lanes: in[k] is input k (k = 0..7), out[k] output k before descaling. */
SIMD_INLINE void idct_1d(const v128_t in[8], v128_t out[8]) {
  v128_t z1 = mulc(wasm_i32x4_add(in[2], in[6]), 4433);         /* FIX_0_541196100 */
  v128_t tmp2 = wasm_i32x4_add(z1, mulc(in[6], -15137));       /* -FIX_1_847759065 */
  v128_t tmp3 = wasm_i32x4_add(z1, mulc(in[2], 6270));         /* FIX_0_765366865 */
  v128_t tmp0 = wasm_i32x4_shl(wasm_i32x4_add(in[0], in[4]), 13);
  v128_t tmp1 = wasm_i32x4_shl(wasm_i32x4_sub(in[0], in[4]), 13);
  v128_t tmp10 = wasm_i32x4_add(tmp0, tmp3), tmp13 = wasm_i32x4_sub(tmp0, tmp3);
  v128_t tmp11 = wasm_i32x4_add(tmp1, tmp2), tmp12 = wasm_i32x4_sub(tmp1, tmp2);
  v128_t t0 = in[7], t1 = in[5], t2 = in[3], t3 = in[1];
  v128_t a1 = wasm_i32x4_add(t0, t3), a2 = wasm_i32x4_add(t1, t2);
  v128_t a3 = wasm_i32x4_add(t0, t2), a4 = wasm_i32x4_add(t1, t3);
  v128_t z5 = mulc(wasm_i32x4_add(a3, a4), 9633);                /* FIX_1_175875602 */
  t0 = mulc(t0, 2446);                                           /* FIX_0_298631336 */
  t1 = mulc(t1, 16819);                                          /* FIX_2_053119869 */
  t2 = mulc(t2, 25172);                                          /* FIX_3_072711026 */
  t3 = mulc(t3, 12299);                                          /* FIX_1_501321110 */
  a1 = mulc(a1, -7373);                                          /* -FIX_0_899976223 */
  a2 = mulc(a2, -20995);                                         /* -FIX_2_562915447 */
  a3 = wasm_i32x4_add(mulc(a3, -16069), z5);                     /* -FIX_1_961570560 */
  a4 = wasm_i32x4_add(mulc(a4, -3196), z5);                      /* -FIX_0_390180644 */
  t0 = wasm_i32x4_add(t0, wasm_i32x4_add(a1, a3));
  t1 = wasm_i32x4_add(t1, wasm_i32x4_add(a2, a4));
  t2 = wasm_i32x4_add(t2, wasm_i32x4_add(a2, a3));
  t3 = wasm_i32x4_add(t3, wasm_i32x4_add(a1, a4));
  out[0] = wasm_i32x4_add(tmp10, t3);
  out[7] = wasm_i32x4_sub(tmp10, t3);
  out[1] = wasm_i32x4_add(tmp11, t2);
  out[6] = wasm_i32x4_sub(tmp11, t2);
  out[2] = wasm_i32x4_add(tmp12, t1);
  out[5] = wasm_i32x4_sub(tmp12, t1);
  out[3] = wasm_i32x4_add(tmp13, t0);
  out[4] = wasm_i32x4_sub(tmp13, t0);
}

/* Transposes four vectors of four lanes in place. */
SIMD_INLINE void transpose4(v128_t *a, v128_t *b, v128_t *c, v128_t *d) {
  v128_t t0 = wasm_i32x4_shuffle(*a, *b, 0, 4, 1, 5), t1 = wasm_i32x4_shuffle(*a, *b, 2, 6, 3, 7);
  v128_t t2 = wasm_i32x4_shuffle(*c, *d, 0, 4, 1, 5), t3 = wasm_i32x4_shuffle(*c, *d, 2, 6, 3, 7);
  *a = wasm_i32x4_shuffle(t0, t2, 0, 1, 4, 5);
  *b = wasm_i32x4_shuffle(t0, t2, 2, 3, 6, 7);
  *c = wasm_i32x4_shuffle(t1, t3, 0, 1, 4, 5);
  *d = wasm_i32x4_shuffle(t1, t3, 2, 3, 6, 7);
}

static void idct_islow_simd(j_decompress_ptr cinfo, jpeg_component_info *compptr,
                            JCOEFPTR coef_block, JSAMPARRAY output_buf, JDIMENSION output_col) {
  (void)cinfo;
  const MULTIPLIER *quant = (const MULTIPLIER *)compptr->dct_table;
  /* Pass 1, columns (lane = column; half h has columns 4h..4h+3): ws[h][row]. */
  v128_t ws[2][8];
  for (int h = 0; h < 2; h++) {
    v128_t in[8];
    _Pragma("clang loop unroll(full)")
    for (int k = 0; k < 8; k++) {
      v128_t c = wasm_v128_load(coef_block + 8 * k);
      c = h ? wasm_i32x4_extend_high_i16x8(c) : wasm_i32x4_extend_low_i16x8(c);
      in[k] = wasm_i32x4_mul(c, wasm_v128_load(quant + 8 * k + 4 * h));
    }
    idct_1d(in, ws[h]);
    _Pragma("clang loop unroll(full)")
    for (int k = 0; k < 8; k++)  /* DESCALE(x, CONST_BITS - PASS1_BITS) */
      ws[h][k] = wasm_i32x4_shr(wasm_i32x4_add(ws[h][k], wasm_i32x4_splat(1 << 10)), 11);
  }
  /* Pass 2, rows (lane = row; group g has rows 4g..4g+3). */
  for (int g = 0; g < 2; g++) {
    v128_t in[8], out[8];
    _Pragma("clang loop unroll(full)")
    for (int h = 0; h < 2; h++) {
      _Pragma("clang loop unroll(full)")
      for (int k = 0; k < 4; k++) in[4 * h + k] = ws[h][4 * g + k];
      transpose4(&in[4 * h], &in[4 * h + 1], &in[4 * h + 2], &in[4 * h + 3]);
    }
    idct_1d(in, out);
    _Pragma("clang loop unroll(full)")
    for (int k = 0; k < 8; k++) {
      /* DESCALE(x, CONST_BITS + PASS1_BITS + 3), then the range limit: its table gives
       * clamp(((v + 512) & 1023) - 384, 0, 255) (the clamp is the narrowing below). */
      v128_t v = wasm_i32x4_shr(wasm_i32x4_add(out[k], wasm_i32x4_splat(1 << 17)), 18);
      v = wasm_v128_and(wasm_i32x4_add(v, wasm_i32x4_splat(512)), wasm_i32x4_splat(1023));
      out[k] = wasm_i32x4_sub(v, wasm_i32x4_splat(384));
    }
    transpose4(&out[0], &out[1], &out[2], &out[3]);
    transpose4(&out[4], &out[5], &out[6], &out[7]);
    _Pragma("clang loop unroll(full)")
    for (int r = 0; r < 4; r += 2) {
      v128_t px = wasm_u8x16_narrow_i16x8(wasm_i16x8_narrow_i32x4(out[r], out[4 + r]),
                                          wasm_i16x8_narrow_i32x4(out[r + 1], out[5 + r]));
      wasm_v128_store64_lane(output_buf[4 * g + r] + output_col, px, 0);
      wasm_v128_store64_lane(output_buf[4 * g + r + 1] + output_col, px, 1);
    }
  }
}

/* libjpeg's `color_convert` signature: `num_rows` rows of the three planes from `input_row`
 * on, to the output rows (3 bytes a pixel). */
static void ycc_rgb_convert_simd(j_decompress_ptr cinfo, JSAMPIMAGE input_buf,
                                 JDIMENSION input_row, JSAMPARRAY output_buf, int num_rows) {
  JDIMENSION width = cinfo->output_width;
  while (--num_rows >= 0) {
    const JSAMPLE *y = input_buf[0][input_row], *cb = input_buf[1][input_row],
                  *cr = input_buf[2][input_row];
    input_row++;
    JSAMPLE *out = *output_buf++;
    JDIMENSION i = 0;
    for (; i + 16 <= width; i += 16) ycc_rgb_16(y + i, cb + i, cr + i, out + 3 * (size_t)i);
    if (i < width) {
      /* The last pixels through a padded block of their own. */
      JSAMPLE ty[16] = {0}, tcb[16] = {0}, tcr[16] = {0}, trgb[48];
      size_t n = width - i;
      __builtin_memcpy(ty, y + i, n);
      __builtin_memcpy(tcb, cb + i, n);
      __builtin_memcpy(tcr, cr + i, n);
      ycc_rgb_16(ty, tcb, tcr, trgb);
      __builtin_memcpy(out + 3 * (size_t)i, trgb, 3 * n);
    }
  }
}
#endif

/* Starts decompression at 1/`scale_denom` (1, 2, 4 or 8) with the given source and output
 * colour spaces (J_COLOR_SPACE values), and says the output size. `stop` (may be NULL) is asked
 * at every progress report of this and the following reads, with `stop_ctx`; it must return
 * normally (the jump back is made here, in C). A progressive image's scans are all read here. */
int imgest_jpeg_start(imgest_jpeg *d, unsigned scale_denom, int jpeg_color_space,
                      int out_color_space, int (*stop)(const void *), const void *stop_ctx,
                      unsigned *width, unsigned *height, int *components) {
  if (setjmp(d->jump)) return d->code;
  if (stop != NULL) {
    d->stop = stop;
    d->stop_ctx = stop_ctx;
    d->progress.progress_monitor = on_progress;
    d->cinfo.progress = &d->progress;
  }
  d->cinfo.jpeg_color_space = (J_COLOR_SPACE)jpeg_color_space;
  d->cinfo.out_color_space = (J_COLOR_SPACE)out_color_space;
  d->cinfo.scale_num = 1;
  d->cinfo.scale_denom = scale_denom;
  d->cinfo.dct_method = JDCT_ISLOW;
  d->cinfo.do_fancy_upsampling = TRUE;
  d->cinfo.buffered_image = FALSE;
  jpeg_start_decompress(&d->cinfo);
#ifdef __wasm_simd128__
  /* libjpeg chose its table-driven conversion for exactly this case (jdcolor.c). */
  if (d->cinfo.jpeg_color_space == JCS_YCbCr && d->cinfo.out_color_space == JCS_RGB &&
      d->cinfo.cconvert != NULL)
    d->cinfo.cconvert->color_convert = ycc_rgb_convert_simd;
  /* The IDCT libjpeg chose per component for this output pass (jddctmgr.c). */
  if (sizeof(MULTIPLIER) == sizeof(int) && d->cinfo.idct != NULL) {
    for (int ci = 0; ci < d->cinfo.num_components && ci < MAX_COMPONENTS; ci++)
      if (d->cinfo.idct->inverse_DCT[ci] == jpeg_idct_islow)
        d->cinfo.idct->inverse_DCT[ci] = idct_islow_simd;
  }
#endif
  *width = d->cinfo.output_width;
  *height = d->cinfo.output_height;
  *components = d->cinfo.output_components;
  return 0;
}

/* Decodes up to `rows` rows into `out` (`stride` bytes apart) and says how many it wrote. */
int imgest_jpeg_read(imgest_jpeg *d, unsigned char *out, size_t stride, unsigned rows,
                     unsigned *done) {
  *done = 0;
  if (setjmp(d->jump)) return d->code;
  while (*done < rows && d->cinfo.output_scanline < d->cinfo.output_height) {
    JSAMPROW row = out + (size_t)(*done) * stride;
    JDIMENSION n = jpeg_read_scanlines(&d->cinfo, &row, 1);
    if (n == 0) {
      /* The memory source never suspends: no row means the data ended. */
      d->code = JWRN_JPEG_EOF;
      return d->code;
    }
    *done += n;
  }
  return 0;
}

#ifndef __wasm__
/* Native builds only (the WebAssembly module decodes on one thread): a decode split in two. */

/* Whether the image's data comes in more than one scan (progressive, or sequential with
 * components in separate scans; all of it is then read by `imgest_jpeg_start`), and how many
 * output rows one iMCU row gives. Valid after `imgest_jpeg_start`. */
int imgest_jpeg_layout(imgest_jpeg *d, int *multi_scan, unsigned *rows_per_imcu) {
  if (setjmp(d->jump)) return d->code;
  *multi_scan = jpeg_has_multiple_scans(&d->cinfo) ? 1 : 0;
#if JPEG_LIB_VERSION >= 70
  *rows_per_imcu = (unsigned)(d->cinfo.max_v_samp_factor * d->cinfo.min_DCT_v_scaled_size);
#else
  *rows_per_imcu = (unsigned)(d->cinfo.max_v_samp_factor * d->cinfo.min_DCT_scaled_size);
#endif
  return 0;
}

/* The restart markers of a single-scan image, for a split that starts its second decoder at
 * one (valid after `imgest_jpeg_start`): the restart interval in MCUs (0: none), the MCUs in
 * one iMCU row, and the source rows one iMCU row covers. */
int imgest_jpeg_restarts(imgest_jpeg *d, unsigned *interval, unsigned *mcus_per_imcu,
                         unsigned *imcu_source_rows) {
  if (setjmp(d->jump)) return d->code;
  *interval = d->cinfo.restart_interval;
  /* A scan of one component has one block per MCU: an iMCU row is v_samp_factor rows of them. */
  unsigned rows = d->cinfo.comps_in_scan == 1 ? (unsigned)d->cinfo.cur_comp_info[0]->v_samp_factor
                                              : 1u;
  *mcus_per_imcu = (unsigned)d->cinfo.MCUs_per_row * rows;
  *imcu_source_rows = (unsigned)d->cinfo.max_v_samp_factor * DCTSIZE;
  return 0;
}

/* The warnings the library has emitted so far (corrupt data it decoded past). */
long imgest_jpeg_warnings(const imgest_jpeg *d) { return d->err.num_warnings; }

/* Passes over the next `rows` output rows without producing them (libjpeg-turbo's
 * `jpeg_skip_scanlines`: a baseline image's skipped iMCU rows are entropy-decoded only; their
 * IDCT, upsampling and colour conversion are left out). The rows read after it are the same
 * bytes a decode of every row gives there. */
int imgest_jpeg_skip(imgest_jpeg *d, unsigned rows) {
  if (setjmp(d->jump)) return d->code;
  if (jpeg_skip_scanlines(&d->cinfo, rows) != rows) {
    d->code = JWRN_JPEG_EOF;
    return d->code;
  }
  return 0;
}
#endif

/* The message of the code a call returned: the library's template and its parameters. */
const char *imgest_jpeg_message(const imgest_jpeg *d, int code, const int **params) {
  *params = d->err.msg_parm.i;
  if (code <= 0 || code >= (int)JMSG_LASTMSGCODE) return "unknown libjpeg error";
  return jpeg_std_message_table[code];
}

/* Frees everything the library allocated. Safe after any failure. */
void imgest_jpeg_end(imgest_jpeg *d) {
  d->stop = NULL;
  d->cinfo.progress = NULL;
  if (d->created) {
    if (setjmp(d->jump)) return;
    jpeg_destroy_decompress(&d->cinfo);
    d->created = 0;
  }
}

/* What kind of failure a message code is: 1 = the file uses a JPEG feature this build lacks,
 * 2 = the memory budget, 3 = the data ends early, 4 = the caller's `stop` said so, 0 = anything
 * else (corrupt data). */
int imgest_jpeg_kind(int code) {
  switch (code) {
    case IMGEST_JPEG_STOPPED:
      return 4;
    case JERR_ARITH_NOTIMPL:
    case JERR_NOT_COMPILED:
    case JERR_SOF_UNSUPPORTED:
    case JERR_BAD_PRECISION:
    case JERR_CONVERSION_NOTIMPL:
    case JERR_CCIR601_NOTIMPL:
    case JERR_COMPONENT_COUNT:
      return 1;
    case JERR_OUT_OF_MEMORY:
    case JERR_NO_BACKING_STORE:
    case JERR_WIDTH_OVERFLOW:
    case JERR_IMAGE_TOO_BIG:
      return 2;
    case JWRN_JPEG_EOF:
      return 3;
    default:
      return 0;
  }
}
