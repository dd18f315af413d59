/* dict: a string-keyed hash map with void * values, used for channels,
 * clients, users and presence everywhere in Plaza.
 *
 * Chained hashing over a power-of-two bucket array. Each entry is a single
 * allocation holding the link, the value, a 32-bit hash and a copy of the key
 * (NUL-terminated): 24 bytes plus the key, plus 8 bytes of bucket per entry
 * at full load. The table doubles on insert when the load reaches 1; it
 * shrinks on insert when the load is under 1/8, and is freed when the last
 * key is deleted (deletes never resize otherwise, see iteration). Hashing
 * is SipHash-1-3 with a per-process random key, so client-chosen names
 * (channels, client ids) cannot be crafted to collide.
 *
 * Keys are COPIED: the caller's key may be freed after any call. The copy
 * lives as long as the entry; the key pointer returned by iteration stays
 * valid until the entry is deleted. Values are the caller's: the dict never
 * frees them, except through the destructor passed to dict_free.
 *
 * Iteration (dict_iter_init / dict_next) allows deleting the CURRENT entry
 * (dict_del of the key just returned). It does not allow inserting new keys
 * or deleting other entries until the loop is over (an insert may resize the
 * table). Values may be changed freely. An iterator needs no cleanup: it may
 * be abandoned at any point.
 *
 * Not thread safe: callers lock. */
#ifndef PLAZA_DICT_H
#define PLAZA_DICT_H

#include <stddef.h>
#include <stdint.h>

typedef struct dict dict;
typedef struct dict_entry dict_entry;

typedef struct dict_iter {
    const dict *d;
    size_t bucket;                 /* next bucket to scan */
    dict_entry *next;              /* next entry to return, or NULL */
} dict_iter;

/* An empty dict (no bucket array until the first insert); NULL if out of
 * memory. */
dict *dict_new(void);

/* Frees the dict and its keys; calls val_free(value) for every entry when
 * val_free is not NULL. NULL d is a no-op. */
void dict_free(dict *d, void (*val_free)(void *val));

size_t dict_size(const dict *d);

/* The value stored for key, or NULL when absent. */
void *dict_get(const dict *d, const char *key);
void *dict_getn(const dict *d, const char *key, size_t len);

/* The address of key's value, or NULL when absent (tells a stored NULL or
 * 0 from a missing key). Valid until the key is deleted. */
void **dict_find(const dict *d, const char *key, size_t len);

/* Sets key to val. Returns 1 when the key was added, 0 when an existing
 * value was overwritten (the old value is not freed: get it first if it
 * must be), -1 when out of memory (nothing changed). */
int dict_set(dict *d, const char *key, void *val);
int dict_setn(dict *d, const char *key, size_t len, void *val);

/* Find-or-insert: the address of key's value, inserting the key with a NULL
 * value when absent (*added = 1, else 0; added may be NULL). NULL when out of
 * memory. Entries never move: the address stays valid until the key is
 * deleted. */
void **dict_slot(dict *d, const char *key, size_t len, int *added);

/* Removes key. Returns 1 and stores the old value in *val (when val is not
 * NULL) if the key was present, 0 otherwise. */
int dict_del(dict *d, const char *key, void **val);
int dict_deln(dict *d, const char *key, size_t len, void **val);

/* Iteration in no particular order:
 *
 *     dict_iter it;
 *     const char *key; void *val;
 *     dict_iter_init(&it, d);
 *     while (dict_next(&it, &key, &val)) { ... }
 *
 * dict_next returns 0 when done; key or val may be NULL when not needed. */
void dict_iter_init(dict_iter *it, const dict *d);
int dict_next(dict_iter *it, const char **key, void **val);

/* The keyed hash of the dict (SipHash-1-3, per-process random key); other
 * modules may use it to shard by key consistently. */
uint64_t dict_hash(const void *key, size_t len);

#endif
