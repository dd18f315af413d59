/* board_png: a board's bitfield as a PNG image (indexed colour, the
 * board's palette, 4 or 8 bits per pixel: the bitfield's rows are PNG rows
 * as they are). Encoded with libpng. */
#ifndef PLAZA_BOARD_PNG_H
#define PLAZA_BOARD_PNG_H

#include <stddef.h>
#include <stdint.h>
#include "core/sbuf.h"

/* Appends the PNG of px (height rows of ceil(width * bits / 8) bytes) to
 * out, with ncolors palette entries (0xRRGGBB). Returns 0, or -1 (out of
 * memory, or libpng refused). */
int board_png_encode(const uint8_t *px, uint32_t width, uint32_t height, int bits,
                     const uint32_t *palette, int ncolors, sbuf *out);

#endif
