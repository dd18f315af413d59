/* recovery: the decision whether a resubscribing client missed nothing
 * (protocol.md A8). Given the client's position and what the history read
 * returned, the client is recovered only when the publications since its
 * offset are complete: no gap at the start (history trimmed) and nothing
 * cut at the end (limit), in the same epoch. */
#ifndef PLAZA_RECOVERY_H
#define PLAZA_RECOVERY_H

#include <stddef.h>
#include <stdint.h>
#include "engine/engine.h"

/* 1 if recovered. pubs are the history since req_offset in ascending
 * order (n of them), top the stream position at the time of the read. */
int recovery_decide(uint64_t req_offset, const char *req_epoch,
                    const engine_stream_top *top, const engine_pub *pubs,
                    size_t n);

#endif
