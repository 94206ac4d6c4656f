/* The AV1 decoder of the WebAssembly build: dav1d's C library behind two calls. (Native builds
 * decode AV1 with rav1d, dav1d's Rust port, which does not build for wasm32-unknown-unknown.)
 * One thread, one frame: the data of one AVIF item goes in, its picture comes out, and the
 * caller reads the planes in place until it releases the picture. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>

#include "dav1d/dav1d.h"

/* What imgest_av1_decode returns. */
#define IMGEST_AV1_OK 0
#define IMGEST_AV1_NO_FRAME 1 /* the data ran out before a whole frame */
#define IMGEST_AV1_REFUSED 2  /* the decoder refused the data (error code in `error`) */

/* Read by the Rust side (core/src/avif/dav1d.rs mirrors it). */
typedef struct imgest_av1_picture {
  Dav1dPicture *pic; /* owned until imgest_av1_release */
  const uint8_t *planes[3];
  ptrdiff_t strides[2]; /* bytes per row: luma, chroma */
  uint32_t width, height;
  uint32_t bpc;        /* 8, 10 or 12 */
  uint32_t layout;     /* 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4 */
  uint32_t matrix;     /* the sequence header's matrix_coefficients code point */
  uint32_t full_range; /* the sequence header's color_range */
  int32_t error;       /* dav1d's (negative) error code, for IMGEST_AV1_REFUSED */
} imgest_av1_picture;

static int refused(imgest_av1_picture *out, int error) {
  out->error = error;
  return IMGEST_AV1_REFUSED;
}

int imgest_av1_decode(const uint8_t *bytes, size_t len, unsigned frame_size_limit,
                      imgest_av1_picture *out) {
  memset(out, 0, sizeof *out);
  Dav1dSettings s;
  dav1d_default_settings(&s);
  s.n_threads = 1;
  s.max_frame_delay = 1;
  s.frame_size_limit = frame_size_limit;
  s.all_layers = 0;
  Dav1dContext *c = NULL;
  int r = dav1d_open(&c, &s);
  if (r < 0) return refused(out, r);
  Dav1dData data = {0};
  uint8_t *buf = dav1d_data_create(&data, len);
  if (!buf) {
    dav1d_close(&c);
    return refused(out, DAV1D_ERR(ENOMEM));
  }
  memcpy(buf, bytes, len);
  Dav1dPicture *pic = calloc(1, sizeof *pic);
  int status = IMGEST_AV1_NO_FRAME;
  /* Each turn hands the decoder more data or takes its picture; the bound only guards against
   * a decoder that does neither. */
  for (int turn = 0; pic && turn < 10000; turn++) {
    if (data.sz > 0) {
      r = dav1d_send_data(c, &data);
      if (r < 0 && r != DAV1D_ERR(EAGAIN)) {
        status = refused(out, r);
        break;
      }
    }
    r = dav1d_get_picture(c, pic);
    if (r == 0) {
      status = IMGEST_AV1_OK;
      break;
    }
    if (r != DAV1D_ERR(EAGAIN)) {
      status = refused(out, r);
      break;
    }
    if (data.sz == 0) break;
  }
  if (!pic) status = refused(out, DAV1D_ERR(ENOMEM));
  dav1d_data_unref(&data);
  dav1d_close(&c);
  if (status != IMGEST_AV1_OK) {
    if (pic) free(pic);
    return status;
  }
  out->pic = pic;
  for (int i = 0; i < 3; i++) out->planes[i] = pic->data[i];
  out->strides[0] = pic->stride[0];
  out->strides[1] = pic->stride[1];
  out->width = (uint32_t)pic->p.w;
  out->height = (uint32_t)pic->p.h;
  out->bpc = (uint32_t)pic->p.bpc;
  out->layout = (uint32_t)pic->p.layout;
  out->matrix = pic->seq_hdr ? (uint32_t)pic->seq_hdr->mtrx : 2;
  out->full_range = pic->seq_hdr ? pic->seq_hdr->color_range : 0;
  return IMGEST_AV1_OK;
}

void imgest_av1_release(imgest_av1_picture *p) {
  if (p->pic) {
    dav1d_picture_unref(p->pic);
    free(p->pic);
    p->pic = NULL;
  }
}
