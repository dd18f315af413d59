/* procfs.c: the kernel's accounting of the server processes and of the
 * generator itself. CPU is utime+stime from /proc/PID/stat (all threads of
 * the process, in clock ticks, so 10 ms steps at the usual 100 Hz); memory
 * is VmRSS from /proc/PID/status, and the proportional set size of anonymous
 * and shared memory from /proc/PID/smaps_rollup (pages shared by several
 * processes, like Nchan's shared memory zone in every nginx worker, count
 * once in the sum, where VmRSS counts them in each process). A pid that is
 * gone counts as 0. */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include "loadgen.h"

static void one_cpu_ticks(int pid, uint64_t *user, uint64_t *sys) {
    char path[64], line[2048];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return;
    size_t n = fread(line, 1, sizeof(line) - 1, f);
    fclose(f);
    line[n] = 0;
    char *p = strrchr(line, ')');        /* the command name may hold spaces */
    unsigned long long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                     &ut, &st) != 2)
        return;
    *user += ut;
    *sys += st;
}

proc_cpu proc_cpu_read(const int *pids, int n) {
    uint64_t user = 0, sys = 0, hz = (uint64_t)sysconf(_SC_CLK_TCK);
    for (int i = 0; i < n; i++) one_cpu_ticks(pids[i], &user, &sys);
    return (proc_cpu){user * 1000000u / hz, sys * 1000000u / hz};
}

uint64_t proc_cpu_us(const int *pids, int n) {
    proc_cpu c = proc_cpu_read(pids, n);
    return c.user_us + c.sys_us;
}

static uint64_t one_field_kb(int pid, const char *file, const char *format) {
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/%s", pid, file);
    FILE *f = fopen(path, "r");
    unsigned long long kb = 0;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, format, &kb) == 1) break;
    if (f) fclose(f);
    return kb;
}

uint64_t proc_rss_kb(const int *pids, int n) {
    uint64_t kb = 0;
    for (int i = 0; i < n; i++) kb += one_field_kb(pids[i], "status", "VmRSS: %llu kB");
    return kb;
}

/* Pss_Anon + Pss_Shmem: heap and shared memory, without the file pages
 * (libraries) whose share moves with what else runs on the machine. */
static uint64_t one_pss_kb(int pid) {
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", pid);
    FILE *f = fopen(path, "r");
    unsigned long long kb, anon = 0, shmem = 0, all = 0;
    int split = 0;
    while (f && fgets(line, sizeof(line), f)) {
        if (sscanf(line, "Pss: %llu kB", &kb) == 1) all = kb;
        else if (sscanf(line, "Pss_Anon: %llu kB", &kb) == 1) { anon = kb; split = 1; }
        else if (sscanf(line, "Pss_Shmem: %llu kB", &kb) == 1) shmem = kb;
    }
    if (f) fclose(f);
    return split ? anon + shmem : all;
}

uint64_t proc_pss_kb(const int *pids, int n) {
    uint64_t kb = 0;
    for (int i = 0; i < n; i++) kb += one_pss_kb(pids[i]);
    return kb;
}

uint64_t self_cpu_us(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u +
           (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}
