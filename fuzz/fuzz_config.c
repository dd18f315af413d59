/* fuzz_config: the JSON configuration loader and the text form of values
 * (env vars, --set flags) must reject anything malformed with an error
 * naming the key, never crash or leak. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    config c;
    char err[CONFIG_ERR_MAX];
    config_defaults(&c);
    if (config_load_json(&c, (const char *)data, size, err) != 0 && !err[0])
        abort();                       /* an error must say what is wrong */
    /* The same bytes as "key=value" for config_set. */
    char *text = malloc(size + 1);
    if (text) {
        memcpy(text, data, size);
        text[size] = '\0';
        char *eq = strchr(text, '=');
        if (eq) {
            *eq = '\0';
            if (config_set(&c, text, eq + 1, err) != 0 && !err[0]) abort();
        }
        free(text);
    }
    config_validate(&c, err);
    config_free(&c);
    return 0;
}
