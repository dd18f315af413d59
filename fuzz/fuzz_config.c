/* fuzz_config: the JSON configuration loader, the text form of values
 * (--set flags) and the PLAZA_* environment loader must reject anything
 * malformed with an error naming the key, never crash or leak. */
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
    /* The same bytes as one PLAZA_* variable (unknown ones only warn). */
    char *entry = malloc(size + 7);
    if (entry) {
        memcpy(entry, "PLAZA_", 6);
        memcpy(entry + 6, data, size);
        entry[size + 6] = '\0';
        char *envp[] = {entry, NULL};
        config_warnings warn = {0};
        if (config_load_env(&c, envp, &warn, err) != 0 && !err[0]) abort();
        config_lint(&c, &warn);
        free(entry);
    }
    config_validate(&c, err);
    config_free(&c);
    return 0;
}
