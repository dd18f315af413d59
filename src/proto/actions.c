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

void proto_action_clear(proto_action_msg *m) {
    free(m->user);
    free(m->client);
    free(m->channel);
    free(m->reason);
    memset(m, 0, sizeof(*m));
}

int proto_action_decode(const char *msg, size_t len, proto_action_msg *m) {
    memset(m, 0, sizeof(*m));
    json_t *o = json_loadb(msg, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *k = json_object_get(o, "k");
    const char *user = json_string_value(json_object_get(o, "u"));
    int rc = -1;
    if (!json_is_object(o) || !user || !json_is_integer(k)) goto out;
    json_int_t kind = json_integer_value(k);
    if (kind < ACT_SUB || kind > ACT_REFRESH) goto out;
    m->kind = (int)kind;
    json_int_t code = json_integer_value(json_object_get(o, "code"));
    m->code = code >= 0 && code <= 65535 ? (int)code : 0;
    m->expired = json_is_true(json_object_get(o, "x"));
    m->expire_at = json_integer_value(json_object_get(o, "at"));
    m->user = strdup(user);
    m->client = dup_field(o, "c");
    m->channel = dup_field(o, "ch");
    m->reason = dup_field(o, "r");
    if (!m->user || ((m->kind == ACT_SUB || m->kind == ACT_UNSUB) && !m->channel) ||
        (m->kind == ACT_DISCONNECT && !m->reason))
        goto out;
    rc = 0;
out:
    if (rc) proto_action_clear(m);
    json_decref(o);
    return rc;
}

void proto_action_control(hub *h, const char *msg, size_t len) {
    proto_action_msg m;
    if (proto_action_decode(msg, len, &m)) {
        log_warn("control: an unreadable action is dropped (%.*s)", (int)(len > 80 ? 80 : len), msg);
        return;
    }
    act *x = calloc(1, sizeof(*x));
    if (!x) {
        proto_action_clear(&m);
        log_warn("control: out of memory, an action is dropped");
        return;
    }
    x->kind = m.kind;
    x->code = m.code;
    x->expired = m.expired;
    x->expire_at = m.expire_at;
    x->channel = m.channel;
    x->reason = m.reason;
    m.channel = m.reason = NULL;
    if (hub_for_user(h, m.user, m.client, act_run, x, act_free) != 0)
        log_warn("control: out of memory, an action is dropped");
    proto_action_clear(&m);
}
