/* fuzz_board_put: libFuzzer target for board_parse_put, the parser of a
 * pixel write's body (PUT /boards/<channel>/pixels) and of the board.put
 * RPC's params. Any violation of these invariants abort()s:
 *   - failure leaves a non-empty, NUL-terminated message that names what
 *     is wrong, and zeroed params;
 *   - success means the input was a JSON object with integer x, y and
 *     color, and a channel (if any) that is a string shorter than the
 *     buffer, NUL-terminated and equal to the input's. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "apps/board.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    board_put_params p;
    char err[160];
    memset(err, 0, sizeof(err));
    int rc = board_parse_put((const char *)data, size, &p, err, sizeof(err));
    if (rc) {
        if (err[0] == '\0' || strnlen(err, sizeof(err)) == sizeof(err)) abort();
        if (p.x || p.y || p.color || p.channel[0]) abort();
        return 0;
    }
    json_t *o = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (!o || !json_is_object(o)) abort();
    if (json_integer_value(json_object_get(o, "x")) != p.x ||
        json_integer_value(json_object_get(o, "y")) != p.y ||
        json_integer_value(json_object_get(o, "color")) != p.color) abort();
    json_t *ch = json_object_get(o, "channel");
    if (strnlen(p.channel, sizeof(p.channel)) == sizeof(p.channel)) abort();
    if (ch && (json_string_length(ch) != strlen(p.channel) ||
               memcmp(json_string_value(ch), p.channel, strlen(p.channel)) != 0)) abort();
    if (!ch && p.channel[0]) abort();
    json_decref(o);
    return 0;
}
