/* api_map: the server API's map methods (map_publish, map_remove,
 * map_read_state, map_read_stream, map_stats, map_clear), with the shapes
 * Centrifugo gives them. Writes are the backend's way to validate: a
 * conditional write (key_mode, version, expected_offset, idempotency_key)
 * that does not apply changes nothing and says why (suppressed,
 * suppress_reason). Every method needs a channel of a map namespace. */
#include <stdlib.h>
#include <string.h>
#include "core/clock.h"
#include "proto/api_int.h"
#include "proto/codes.h"
#include "proto/push.h"

/* The channel of a map namespace. */
static int map_channel(api_ctx *a, const char **ch, const ns_options **ns) {
    int rc;
    if ((rc = api_get_str(a, "channel", 1, ch)) || (rc = api_get_channel(a, *ch, ns))) return rc;
    if ((*ns)->subscription_type == NS_SUB_STREAM)
        return api_fail(a, ERR_BAD_REQUEST, "%s: not a map channel (its namespace's "
                        "subscription_type is stream)", "channel");
    return 0;
}


static void write_position(sbuf *sb, const engine_stream_top *top) {
    sb_puts(sb, "\"offset\":");
    sb_u64(sb, top->offset);
    sb_puts(sb, ",\"epoch\":");
    sb_json_str(sb, top->epoch, strlen(top->epoch));
}

/* ---- writes ---- */

static void written(void *ud, engine_result *r) {
    api_ctx *a = ud;
    int rc = 0;
    if (r->err) {
        rc = api_engine_fail(a, "map write", r->err);
    } else {
        sb_putc(a->res, '{');
        write_position(a->res, &r->top);
        if (r->suppressed) {
            const char *why = engine_suppress_name(r->suppressed);
            sb_puts(a->res, ",\"suppressed\":true,\"suppress_reason\":");
            sb_json_str(a->res, why, strlen(why));
        }
        sb_putc(a->res, '}');
    }
    engine_result_free(r);
    a->done(a, rc);
}

/* The conditions both writes share: idempotency_key, expected_offset,
 * expected_epoch. */
static int conditions(api_ctx *a, engine_map_write_req *req) {
    int64_t expected = 0;
    int rc;
    if ((rc = api_get_str(a, "idempotency_key", 0, &req->idempotency_key)) ||
        (rc = api_get_int(a, "expected_offset", &expected)) ||
        (rc = api_get_str(a, "expected_epoch", 0, &req->expected_epoch)))
        return rc;
    if (expected < 0) return api_fail(a, ERR_BAD_REQUEST, "%s: expected an offset (> 0)", "expected_offset");
    req->has_expected = json_object_get(a->p, "expected_offset") != NULL &&
                        !json_is_null(json_object_get(a->p, "expected_offset"));
    req->expected_offset = (uint64_t)expected;
    return 0;
}

static int key_field(api_ctx *a, engine_map_write_req *req) {
    int rc = api_get_str(a, "key", 1, &req->key);
    if (rc) return rc;
    if (!req->key[0]) return api_fail(a, ERR_BAD_REQUEST, "%s: must not be empty", "key");
    req->key_len = strlen(req->key);
    return 0;
}

static int write_now(api_ctx *a, engine_map_write_req *req) {
    void *call = api_engine_call(a, written);
    if (!call) return api_fail(a, ERR_INTERNAL, "%s", "out of memory");
    a->h->eng->ops->map_write(a->h->eng, req, hub_call_cb, call);
    return API_LATER;
}

int api_map_publish(api_ctx *a) {
    const char *ch, *mode = NULL;
    const ns_options *ns;
    int64_t version = 0;
    engine_map_write_req req = {0};
    int rc;
    if ((rc = map_channel(a, &ch, &ns)) || (rc = key_field(a, &req)) || (rc = conditions(a, &req)) ||
        (rc = api_get_int(a, "version", &version)) ||
        (rc = api_get_str(a, "version_epoch", 0, &req.version_epoch)) ||
        (rc = api_get_str(a, "key_mode", 0, &mode)) ||
        (rc = api_get_bool(a, "refresh_ttl_on_suppress", &req.refresh_ttl_on_suppress)))
        return rc;
    if (version < 0) return api_fail(a, ERR_BAD_REQUEST, "%s: expected a number >= 0", "version");
    if (mode && mode[0] && strcmp(mode, "if_new") && strcmp(mode, "if_exists"))
        return api_fail(a, ERR_BAD_REQUEST, "%s: expected \"if_new\" or \"if_exists\"", "key_mode");
    req.key_mode = !mode || !mode[0] ? ENGINE_KEY_ANY
                   : strcmp(mode, "if_new") == 0 ? ENGINE_KEY_IF_NEW : ENGINE_KEY_IF_EXISTS;
    req.version = (uint64_t)version;
    char *data;
    size_t len;
    if ((rc = api_data_field(a, &data, &len))) return rc;
    req.payload = push_payload(data, len, NULL, 0);
    free(data);
    if (!req.payload) return api_fail(a, ERR_INTERNAL, "%s", "out of memory");
    req.channel = ch;
    req.map = proto_map_opts(ns);
    req.now_ms = clock_now_ms();
    rc = write_now(a, &req);
    rcbuf_unref(req.payload);
    return rc;
}

int api_map_remove(api_ctx *a) {
    const char *ch;
    const ns_options *ns;
    engine_map_write_req req = {.remove = 1};
    int rc;
    if ((rc = map_channel(a, &ch, &ns)) || (rc = key_field(a, &req)) || (rc = conditions(a, &req)))
        return rc;
    req.channel = ch;
    req.map = proto_map_opts(ns);
    req.now_ms = clock_now_ms();
    return write_now(a, &req);
}

/* ---- reads ---- */

static void state_read(void *ud, engine_result *r) {
    api_ctx *a = ud;
    int rc = 0;
    if (r->err == ENGINE_ERR_EPOCH) rc = api_fail(a, ERR_UNRECOVERABLE_POSITION, "%s", "epoch: not the channel's");
    else if (r->err) rc = api_engine_fail(a, "map_read_state", r->err);
    else {
        sb_puts(a->res, "{\"publications\":");
        push_write_publications(a->res, r->pubs, r->npubs);
        sb_putc(a->res, ',');
        write_position(a->res, &r->top);
        if (r->cursor) { sb_puts(a->res, ",\"cursor\":"); sb_json_str(a->res, r->cursor, strlen(r->cursor)); }
        sb_putc(a->res, '}');
    }
    engine_result_free(r);
    a->done(a, rc);
}

/* limit: absent = all; -1 = all; 0 = only the position; N = at most N. */
static int limit_field(api_ctx *a, int *limit) {
    int64_t v = -1;
    int rc = api_get_int(a, "limit", &v);
    if (rc) return rc;
    if (v < -1) return api_fail(a, ERR_BAD_REQUEST, "%s: expected -1 (all), 0 (only the position) "
                                "or a positive number", "limit");
    *limit = v > 1000000 ? 1000000 : (int)v;
    return 0;
}

int api_map_read_state(api_ctx *a) {
    const char *ch;
    const ns_options *ns;
    engine_map_state_req req = {0};
    int rc;
    if ((rc = map_channel(a, &ch, &ns)) || (rc = api_get_str(a, "cursor", 0, &req.cursor)) ||
        (rc = api_get_str(a, "key", 0, &req.key)) || (rc = api_get_str(a, "epoch", 0, &req.epoch)) ||
        (rc = limit_field(a, &req.limit)))
        return rc;
    req.channel = ch;
    req.now_ms = clock_now_ms();
    void *call = api_engine_call(a, state_read);
    if (!call) return api_fail(a, ERR_INTERNAL, "%s", "out of memory");
    a->h->eng->ops->map_state(a->h->eng, &req, hub_call_cb, call);
    return API_LATER;
}

int api_map_read_stream(api_ctx *a) {
    const char *ch;
    const ns_options *ns;
    engine_history_req req = {0};
    int rc;
    if ((rc = map_channel(a, &ch, &ns)) || (rc = limit_field(a, &req.limit)) ||
        (rc = api_get_bool(a, "reverse", &req.reverse)))
        return rc;
    if ((rc = api_history_since(a, &req))) return rc;
    req.channel = ch;
    req.now_ms = clock_now_ms();
    void *call = api_engine_call(a, api_history_answer);
    if (!call) return api_fail(a, ERR_INTERNAL, "%s", "out of memory");
    a->h->eng->ops->history(a->h->eng, &req, hub_call_cb, call);
    return API_LATER;
}

static void stats_read(void *ud, engine_result *r) {
    api_ctx *a = ud;
    int rc = r->err ? api_engine_fail(a, "map_stats", r->err) : 0;
    if (!rc) sb_printf(a->res, "{\"num_keys\":%llu}", (unsigned long long)r->num_keys);
    engine_result_free(r);
    a->done(a, rc);
}

int api_map_stats(api_ctx *a) {
    const char *ch;
    const ns_options *ns;
    int rc = map_channel(a, &ch, &ns);
    if (rc) return rc;
    void *call = api_engine_call(a, stats_read);
    if (!call) return api_fail(a, ERR_INTERNAL, "%s", "out of memory");
    a->h->eng->ops->map_stats(a->h->eng, ch, clock_now_ms(), hub_call_cb, call);
    return API_LATER;
}

static void cleared(void *ud, engine_result *r) {
    api_ctx *a = ud;
    int rc = r->err ? api_engine_fail(a, "map_clear", r->err) : 0;
    if (!rc) sb_puts(a->res, "{}");
    engine_result_free(r);
    a->done(a, rc);
}

int api_map_clear(api_ctx *a) {
    const char *ch;
    const ns_options *ns;
    int rc = map_channel(a, &ch, &ns);
    if (rc) return rc;
    void *call = api_engine_call(a, cleared);
    if (!call) return api_fail(a, ERR_INTERNAL, "%s", "out of memory");
    a->h->eng->ops->map_clear(a->h->eng, ch, hub_call_cb, call);
    return API_LATER;
}
