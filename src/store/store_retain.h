/* store_retain: retention of the durable log. Runs on the store's thread
 * between commits, a small batch per step, and deletes the records that
 * were already useless for replay at the cutoff (now - retain window), so
 * the data can be restored exactly as of any moment from the cutoff on
 * (store_retain.c says how it decides). Internal to src/store/. */
#ifndef PLAZA_STORE_RETAIN_H
#define PLAZA_STORE_RETAIN_H

#include <stdint.h>
#include <sqlite3.h>
#include "store/store.h"

typedef struct store_retainer store_retainer;

store_retainer *store_retainer_new(store_history_fn history, void *ud, int64_t retain_ms, int batch);
void store_retainer_free(store_retainer *r);

/* One step: reads up to a batch of records with `scan` (seq, time_ms, kind,
 * channel, offset, epoch, key; seq >= ?1 ORDER BY seq LIMIT ?2), deletes the useless ones found so far with `del` (seq =
 * ?1) in one transaction, adds them to *deleted. Returns how many records
 * it read, 0 once a pass is complete (the next step starts a new one). */
int store_retain_step(store_retainer *r, sqlite3 *db, sqlite3_stmt *scan, sqlite3_stmt *del,
                      int64_t now_ms, uint64_t *deleted);

#endif
