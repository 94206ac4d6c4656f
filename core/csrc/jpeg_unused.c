/* Size, WebAssembly only: the entry points of five libjpeg modules the decoder never runs, as
 * stubs that fail. libjpeg links them whatever the options, but calls them only for colour
 * quantization (`quantize_colors`, left FALSE by jpeg.c), merged upsampling (only without
 * `do_fancy_upsampling`, which jpeg.c sets TRUE) and the fast-integer and floating-point IDCTs
 * (jpeg.c asks for JDCT_ISLOW). Linked before libjpeg's own archive, these definitions keep
 * jquant1.o, jquant2.o, jdmerge.o, jidctfst.o and jidctflt.o out of the module (~21 KB of
 * code, 8.8 KB gzipped). */

#include <stddef.h>
#include <stdio.h>

#include "jpeglib.h"
#include "jerror.h"

void jinit_1pass_quantizer(j_decompress_ptr cinfo) { ERREXIT(cinfo, JERR_NOT_COMPILED); }

void jinit_2pass_quantizer(j_decompress_ptr cinfo) { ERREXIT(cinfo, JERR_NOT_COMPILED); }

void jinit_merged_upsampler(j_decompress_ptr cinfo) { ERREXIT(cinfo, JERR_NOT_COMPILED); }

void jpeg_idct_ifast(j_decompress_ptr cinfo, jpeg_component_info *compptr, JCOEFPTR coef_block,
                     JSAMPARRAY output_buf, JDIMENSION output_col) {
  (void)compptr, (void)coef_block, (void)output_buf, (void)output_col;
  ERREXIT(cinfo, JERR_NOT_COMPILED);
}

void jpeg_idct_float(j_decompress_ptr cinfo, jpeg_component_info *compptr, JCOEFPTR coef_block,
                     JSAMPARRAY output_buf, JDIMENSION output_col) {
  (void)compptr, (void)coef_block, (void)output_buf, (void)output_col;
  ERREXIT(cinfo, JERR_NOT_COMPILED);
}
