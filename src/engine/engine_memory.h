/* engine_memory: the single-node engine (everything in this process's
 * memory). engine_memory_new() is declared in engine.h; this header adds
 * what only the memory engine can answer (for /metrics and tests). */
#ifndef PLAZA_ENGINE_MEMORY_H
#define PLAZA_ENGINE_MEMORY_H

#include <stddef.h>
#include "engine/engine.h"

typedef struct engine_memory_counts {
    size_t channels;        /* channels with a stream or presence */
    size_t streams;         /* channels with stream meta (offset + epoch) */
    size_t publications;    /* publications held in history rings */
    size_t presence;        /* presence entries (expired ones not yet pruned included) */
} engine_memory_counts;

/* Sums the counters over all shards (takes each shard lock in turn). e must
 * come from engine_memory_new. */
void engine_memory_counts_get(engine *e, engine_memory_counts *out);

#endif
