/* cmd_store: plaza backup / restore / store check|repair (see cmd_store.h).
 * Arguments are flags with a value (--to DIR, --from DIR, --at TIME);
 * --store and --config were used by main.c already and are skipped. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "cmd_store.h"
#include "store/store_admin.h"

const char CMD_STORE_USAGE[] =
    "       plaza backup --to DIR [--store DIR | --config FILE]\n"
    "       plaza restore --to DIR [--from DIR] [--at TIME]   (TIME: unix ms or 2026-12-04T21:05:00Z)\n"
    "       plaza store check|repair [--store DIR | --config FILE]\n";

/* The value of flag name among argv[first..], or NULL; -1 in *bad on an
 * unknown flag or a flag without a value. */
static const char *flag(int argc, char **argv, int first, const char *name, int *bad) {
    static const char *const known[] = {"--to", "--from", "--at", "--store", "--config"};
    const char *v = NULL;
    for (int i = first; i < argc; i += 2) {
        int ok = 0;
        for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++) ok |= !strcmp(argv[i], known[k]);
        if (!ok || i + 1 >= argc) {
            fprintf(stderr, "plaza: %s: %s\n", argv[i], ok ? "needs a value" : "unknown option");
            *bad = 1;
            return NULL;
        }
        if (!strcmp(argv[i], name)) v = argv[i + 1];
    }
    return v;
}

static int report(int rc, const char *err) {
    if (rc < 0) fprintf(stderr, "plaza: %s\n", err);
    return rc < 0 ? 1 : rc;
}

int cmd_backup(int argc, char **argv, const char *store_dir) {
    int bad = 0;
    const char *to = flag(argc, argv, 2, "--to", &bad);
    if (bad) return 2;
    if (!to) { fprintf(stderr, "plaza backup: --to DIR is required (a new folder)\n"); return 2; }
    char err[4400];
    return report(store_backup(store_dir, to, stdout, err, sizeof(err)), err);
}

int cmd_restore(int argc, char **argv, const char *store_dir) {
    int bad = 0;
    const char *to = flag(argc, argv, 2, "--to", &bad);
    const char *from = flag(argc, argv, 2, "--from", &bad);
    const char *at = flag(argc, argv, 2, "--at", &bad);
    if (bad) return 2;
    if (!to) { fprintf(stderr, "plaza restore: --to DIR is required (a new folder)\n"); return 2; }
    int64_t at_ms = INT64_MAX;
    if (at && store_parse_time(at, &at_ms)) {
        fprintf(stderr, "plaza restore: --at \"%s\": give unix milliseconds or a UTC time like "
                "2026-12-04T21:05:00Z\n", at);
        return 2;
    }
    char err[4400];
    return report(store_restore(from ? from : store_dir, to, at_ms, stdout, err, sizeof(err)), err);
}

int cmd_store(int argc, char **argv, const char *store_dir) {
    if (argc < 3 || (strcmp(argv[2], "check") && strcmp(argv[2], "repair"))) {
        fprintf(stderr, "usage:\n%s", CMD_STORE_USAGE);
        return 2;
    }
    int bad = 0;
    flag(argc, argv, 3, "--store", &bad);
    if (bad) return 2;
    char err[4400];
    if (!strcmp(argv[2], "check")) return report(store_check(store_dir, stdout, err, sizeof(err)), err);
    return report(store_repair(store_dir, stdout, err, sizeof(err)), err);
}
