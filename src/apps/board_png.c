/* board_png: PNG encoding of a board (see board_png.h). The fastest zlib
 * level: a board is encoded at most once per cache period, and the image
 * of an r/place-like canvas compresses well even so. */
#include <png.h>
#include <setjmp.h>
#include <zlib.h>
#include "apps/board_png.h"

static void write_cb(png_structp png, png_bytep data, size_t len) {
    sbuf *out = png_get_io_ptr(png);
    sb_append(out, data, len);
    if (out->oom) png_error(png, "out of memory");
}

static void flush_cb(png_structp png) { (void)png; }

static void warn_cb(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

int board_png_encode(const uint8_t *px, uint32_t width, uint32_t height, int bits,
                     const uint32_t *palette, int ncolors_in, sbuf *out) {
    const int ncolors = ncolors_in > 256 ? 256 : ncolors_in;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, warn_cb);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) { png_destroy_write_struct(&png, NULL); return -1; }
    size_t row = ((size_t)width * (size_t)bits + 7) / 8;
    png_color pal[256];
    for (int i = 0; i < ncolors; i++) {
        pal[i].red = (png_byte)(palette[i] >> 16);
        pal[i].green = (png_byte)(palette[i] >> 8);
        pal[i].blue = (png_byte)palette[i];
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return -1;
    }
    png_set_write_fn(png, out, write_cb, flush_cb);
    png_set_compression_level(png, Z_BEST_SPEED);
    png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_FILTER_NONE);
    png_set_IHDR(png, info, width, height, bits, PNG_COLOR_TYPE_PALETTE, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_PLTE(png, info, pal, ncolors);
    png_write_info(png, info);
    for (uint32_t y = 0; y < height; y++) png_write_row(png, px + (size_t)y * row);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return out->oom ? -1 : 0;
}
