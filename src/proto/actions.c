/* actions: server API actions on connections, across nodes (see
 * actions.h). The message: {"k":kind,"u":user,"c":client,"ch":channel,
 * "code":N,"r":reason,"x":expired,"at":expire_at}, fields as needed. */
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "obs/log.h"
#include "proto/actions.h"
#include "proto/client.h"

char *proto_action_encode(const proto_action *a, size_t *len) {
    json_t *o = json_object();
    if (!o) return NULL;
    json_object_set_new(o, "k", json_integer(a->kind));
    json_object_set_new(o, "u", json_string(a->user ? a->user : ""));
    if (a->client && a->client[0]) json_object_set_new(o, "c", json_string(a->client));
    if (a->channel) json_object_set_new(o, "ch", json_string(a->channel));
    if (a->kind == ACT_DISCONNECT) {
        json_object_set_new(o, "code", json_integer(a->code));
        json_object_set_new(o, "r", json_string(a->reason ? a->reason : ""));
    }
    if (a->kind == ACT_REFRESH) {
        json_object_set_new(o, "x", json_boolean(a->expired));
        json_object_set_new(o, "at", json_integer(a->expire_at));
    }
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (s) *len = strlen(s);
    return s;
}

typedef struct act {                 /* a decoded action, shared by the workers */
    int kind, code, expired;
    int64_t expire_at;
    char *channel, *reason;
} act;

static void act_free(void *p) {
    act *x = p;
    free(x->channel);
    free(x->reason);
    free(x);
}

static void act_run(hub_client *cl, void *p) {
    act *x = p;
    switch (x->kind) {
    case ACT_SUB: proto_client_server_subscribe(cl, x->channel); break;
    case ACT_UNSUB: proto_client_server_unsubscribe(cl, x->channel); break;
    case ACT_DISCONNECT: proto_client_disconnect(cl, x->code, x->reason); break;
    case ACT_REFRESH: proto_client_refresh(cl, x->expired, x->expire_at); break;
    }
}

static char *dup_field(json_t *o, const char *k) {
    const char *v = json_string_value(json_object_get(o, k));
    return v ? strdup(v) : NULL;
}

void proto_action_control(hub *h, const char *msg, size_t len) {
    json_t *o = json_loadb(msg, len, 0, NULL);
    act *x = o ? calloc(1, sizeof(*x)) : NULL;
    const char *user = json_string_value(json_object_get(o, "u"));
    const char *client = json_string_value(json_object_get(o, "c"));
    if (!x || !user || !json_is_integer(json_object_get(o, "k"))) {
        log_warn("control: an unreadable message is dropped (%.*s)", (int)(len > 80 ? 80 : len), msg);
        free(x);
        json_decref(o);
        return;
    }
    x->kind = (int)json_integer_value(json_object_get(o, "k"));
    x->code = (int)json_integer_value(json_object_get(o, "code"));
    x->expired = json_is_true(json_object_get(o, "x"));
    x->expire_at = json_integer_value(json_object_get(o, "at"));
    x->channel = dup_field(o, "ch");
    x->reason = dup_field(o, "r");
    int ok = x->kind >= ACT_SUB && x->kind <= ACT_REFRESH &&
             ((x->kind != ACT_SUB && x->kind != ACT_UNSUB) || x->channel) &&
             (x->kind != ACT_DISCONNECT || x->reason);
    if (!ok) {
        log_warn("control: an action it cannot run is dropped (%.*s)", (int)(len > 80 ? 80 : len), msg);
        act_free(x);
    } else if (hub_for_user(h, user, client, act_run, x, act_free) != 0) {
        log_warn("control: out of memory, an action is dropped");
    }
    json_decref(o);
}
