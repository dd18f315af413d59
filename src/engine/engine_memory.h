/* engine_memory: the single-node engine (everything in this process's
 * memory). engine_memory_new() is declared in engine.h; this header adds
 * what tests and the delayed test engine use: exact counts and a sweep on
 * demand. */
#ifndef PLAZA_ENGINE_MEMORY_H
#define PLAZA_ENGINE_MEMORY_H

#include <stddef.h>
#include <stdint.h>
#include "engine/engine.h"

typedef struct engine_memory_counts {
    size_t channels;        /* channels with a stream, presence or interest */
    size_t streams;         /* channels with stream meta (offset + epoch) */
    size_t publications;    /* publications held in history rings */
    size_t presence;        /* presence entries (expired ones not yet pruned included) */
} engine_memory_counts;

/* Sums the counters over all shards (takes each shard lock in turn). e must
 * come from engine_memory_new. */
void engine_memory_counts_get(engine *e, engine_memory_counts *out);

/* One sweep now: expires history and presence as of now_ms and frees what
 * channels no longer need (the sweeper thread does this every
 * engine.sweep_interval_ms; an engine made with a config whose interval is
 * 0, or with cfg NULL, has no thread and sweeps only when told). */
size_t engine_memory_sweep(engine *e, int64_t now_ms);   /* channels freed */

#endif
