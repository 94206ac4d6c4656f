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
