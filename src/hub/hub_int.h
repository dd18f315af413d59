/* hub_int: what the files of the hub share (hub.c: registry,
 * subscriptions, cross-worker actions, lifecycle; fanout.c: engine answers
 * and events to subscribers; interest.c: this node's channel interest
 * towards the engine). Not for other layers. */
#ifndef PLAZA_HUB_INT_H
#define PLAZA_HUB_INT_H

#include "hub/hub.h"

/* This worker's subscribers of one channel. */
typedef struct hub_chan {
    hub_sub **subs;
    uint32_t n, cap;
} hub_chan;

/* A shared event for subscribers of one channel: the encoded message and
 * the publication offset (0 for join/leave or channels without history),
 * with one inbox node per worker. */
typedef struct hub_event_node {
    task t;
    struct hub_event *ev;
} hub_event_node;

typedef struct hub_event {
    atomic_uint refs;
    uint8_t kind;                  /* HUB_EV_PUB, HUB_EV_JOIN, HUB_EV_LEAVE */
    uint64_t offset;
    void *msg;                     /* the sink's encoded message */
    hub *h;
    char *channel;                 /* inline, after the nodes */
    hub_event_node nodes[];        /* one per worker */
} hub_event;

enum { HUB_EV_PUB = 1, HUB_EV_JOIN, HUB_EV_LEAVE };

/* fanout.c */
void hub_count_error(hub *h, const engine_result *res);
void hub_event_unref(hub_event *ev);
/* Delivers one event to one live subscriber, in offset order, never
 * twice; a positioned subscriber that would skip an offset resyncs. */
void hub_sub_deliver(hub_sub *s, hub_event *ev);
/* The worker's overflow task (hub_local.overflow_task). */
void hub_overflow_run(task *t);

/* interest.c (all but flush under h->lock) */
int hub_interest_add(hub *h, const char *channel);      /* HUB_ADD_* */
void hub_interest_drop(hub *h, const char *channel);
/* Makes the interest calls decided so far, in order (not under the lock). */
void hub_interest_flush(hub *h);
/* After the loops: frees the interest records and calls not made. */
void hub_interest_free(hub *h);

#endif
