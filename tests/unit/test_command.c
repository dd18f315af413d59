/* Unit tests for src/proto/command.c: every command as centrifuge-js 5.x
 * sends it, the pong and id rules, request field priority, null handling,
 * raw data re-encoding, and every decode error with its message. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/command.h"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

static void decode_ok(const char *line, proto_cmd *cmd) {
    char err[128] = "untouched";
    int rc = proto_cmd_decode(line, strlen(line), cmd, err, sizeof(err));
    if (rc != 0) fail_msg("decode of %s failed: %s", line, err);
}

/* Decoding must fail with an error message containing want. */
static void decode_err(const char *line, const char *want) {
    proto_cmd cmd;
    char err[128] = "";
    int rc = proto_cmd_decode(line, strlen(line), &cmd, err, sizeof(err));
    if (rc != -1) fail_msg("decode of %s succeeded, wanted error '%s'", line, want);
    if (!strstr(err, want)) fail_msg("decode of %s: error '%s', wanted '%s'", line, err, want);
    assert_null(cmd.root);              /* freed and zeroed on error */
    assert_null(cmd.data);
}

/* ------------------------------------------------------------------------ */
/* Every command as centrifuge-js sends it                                  */
/* ------------------------------------------------------------------------ */

static void test_connect_minimal(void **state) {
    (void)state;
    proto_cmd c;
    decode_ok("{\"id\":1,\"connect\":{\"name\":\"js\",\"version\":\"5.8.0\"}}", &c);
    assert_int_equal(c.type, CMD_CONNECT);
    assert_int_equal(c.id, 1);
    assert_string_equal(c.name, "js");
    assert_string_equal(c.version, "5.8.0");
    assert_null(c.token);
    assert_null(c.data);
    assert_null(c.subs);
    assert_null(c.channel);
    proto_cmd_free(&c);
}

static void test_connect_full(void **state) {
    (void)state;
    proto_cmd c;
    decode_ok("{\"id\":1,\"connect\":{\"token\":\"a.b.c\",\"data\":{\"x\": [1, 2]},"
              "\"name\":\"js\",\"headers\":{\"h\":\"v\"},"
              "\"subs\":{\"news\":{\"recover\":true,\"offset\":3,\"epoch\":\"e\"}}}}", &c);
    assert_int_equal(c.type, CMD_CONNECT);
    assert_string_equal(c.token, "a.b.c");
    assert_string_equal(c.data, "{\"x\":[1,2]}");
    assert_int_equal(c.data_len, strlen(c.data));
    assert_non_null(c.subs);
    assert_true(json_is_object(c.subs));
    json_t *news = json_object_get(c.subs, "news");
    assert_non_null(news);
    assert_int_equal(json_integer_value(json_object_get(news, "offset")), 3);
    proto_cmd_free(&c);
}

static void test_subscribe_full(void **state) {
    (void)state;
    proto_cmd c;
    decode_ok("{\"id\":2,\"subscribe\":{\"channel\":\"chat:1\",\"recover\":true,"
              "\"offset\":5,\"epoch\":\"abc\",\"flag\":1}}", &c);
    assert_int_equal(c.type, CMD_SUBSCRIBE);
    assert_int_equal(c.id, 2);
    assert_string_equal(c.channel, "chat:1");
    assert_true(c.recover);
    assert_int_equal(c.offset, 5);
    assert_string_equal(c.epoch, "abc");
    assert_int_equal(c.flag, 1);
    assert_false(c.positioned);
    assert_false(c.recoverable);
    assert_false(c.join_leave);
    assert_int_equal(c.sub_type, 0);
    proto_cmd_free(&c);
}

static void test_subscribe_all_fields(void **state) {
    (void)state;
    proto_cmd c;
    decode_ok("{\"id\":7,\"subscribe\":{\"channel\":\"c\",\"token\":\"t\","
              "\"data\":\"d\",\"positioned\":true,\"recoverable\":true,"
              "\"join_leave\":true,\"recover\":false,\"offset\":9007199254740992,"
              "\"flag\":6,\"type\":2,\"delta\":\"fossil\",\"tf\":{\"x\":1},"
              "\"limit\":5,\"phase\":1}}", &c);
    assert_string_equal(c.token, "t");
    assert_string_equal(c.data, "\"d\"");
    assert_true(c.positioned);
    assert_true(c.recoverable);
    assert_true(c.join_leave);
    assert_false(c.recover);
    assert_true(c.offset == 9007199254740992ULL);
    assert_int_equal(c.flag, 6);
    assert_int_equal(c.sub_type, 2);
    assert_int_equal(c.limit, 5);       /* maps: the page size */
    assert_int_equal(c.phase, 1);
    assert_string_equal(c.delta, "fossil");
    assert_non_null(c.tf);
    proto_cmd_free(&c);
}

/* Map writes: publish with type 1, key, removed (a removal needs no data). */
static void test_map_publish(void **state) {
    (void)state;
    proto_cmd c;
    decode_ok("{\"id\":9,\"publish\":{\"channel\":\"m:1\",\"type\":1,\"key\":\"k\","
              "\"data\":{\"v\":1}}}", &c);
    assert_int_equal(c.pub_type, 1);
    assert_string_equal(c.key, "k");
    assert_false(c.removed);
    assert_string_equal(c.data, "{\"v\":1}");
    proto_cmd_free(&c);
    decode_ok("{\"id\":10,\"publish\":{\"channel\":\"m:1\",\"type\":1,\"key\":\"k\","
              "\"removed\":true}}", &c);
    assert_true(c.removed);
    assert_null(c.data);
    proto_cmd_free(&c);
    decode_ok("{\"id\":11,\"subscribe\":{\"channel\":\"m:1\",\"type\":1,\"phase\":2,"
              "\"cursor\":\"k2\",\"offset\":40,\"epoch\":\"e1\"}}", &c);
    assert_string_equal(c.cursor, "k2");
    assert_int_equal(c.phase, 2);
    proto_cmd_free(&c);
    /* a removal that is not a map write still needs data; types are checked */
    decode_err("{\"id\":12,\"publish\":{\"channel\":\"c\",\"removed\":true}}",
               "publish.data: required");
    decode_err("{\"id\":13,\"publish\":{\"channel\":\"c\",\"type\":1,\"key\":5,"
               "\"data\":1}}", "publish.key: expected a string");
    decode_err("{\"id\":14,\"subscribe\":{\"channel\":\"c\",\"tf\":[1]}}",
               "subscribe.tf: expected an object");
    decode_err("{\"id\":15,\"subscribe\":{\"channel\":\"c\",\"cursor\":1}}",
               "subscribe.cursor: expected a string");
}

static void test_subscribe_big_numbers(void **state) {
    (void)state;
    proto_cmd c;
    decode_ok("{\"id\":4294967295,\"subscribe\":{\"channel\":\"c\","
              "\"offset\":9223372036854775807,\"flag\":-9223372036854775808}}", &c);
    assert_int_equal(c.id, UINT32_MAX);
    assert_true(c.offset == 9223372036854775807ULL);
    assert_true(c.flag == INT64_MIN);
    proto_cmd_free(&c);
}

static void test_unsubscribe(void **state) {
    (void)state;
    proto_cmd c;
    decode_ok("{\"id\":3,\"unsubscribe\":{\"channel\":\"chat:1\"}}", &c);
    assert_int_equal(c.type, CMD_UNSUBSCRIBE);
    assert_string_equal(c.channel, "chat:1");
    proto_cmd_free(&c);
}

static void test_publish_newline_data(void **state) {
    (void)state;
    proto_cmd c;
    decode_ok("{\"id\":3,\"publish\":{\"channel\":\"c\",\"data\":\n"
              "{\"text\":\"hi\\nthere\",\n \"n\": 1}}}", &c);
    assert_int_equal(c.type, CMD_PUBLISH);
    assert_string_equal(c.channel, "c");
    assert_string_equal(c.data, "{\"text\":\"hi\\nthere\",\"n\":1}");
    assert_null(memchr(c.data, '\n', c.data_len));
    assert_int_equal(c.data_len, strlen(c.data));
    proto_cmd_free(&c);
}

static void test_publish_scalar_data(void **state) {
    (void)state;
    proto_cmd c;
    decode_ok("{\"id\":3,\"publish\":{\"channel\":\"c\",\"data\":null}}", &c);
    assert_string_equal(c.data, "null");
    assert_int_equal(c.data_len, 4);
    proto_cmd_free(&c);
    decode_ok("{\"id\":3,\"publish\":{\"channel\":\"c\",\"data\":\"a\\u000ab\\u00e9\"}}", &c);
    assert_string_equal(c.data, "\"a\\nb\xc3\xa9\"");
    proto_cmd_free(&c);
    decode_ok("{\"id\":3,\"publish\":{\"channel\":\"\",\"data\":-12}}", &c);
    assert_string_equal(c.channel, "");  /* passed through for the hub */
    assert_string_equal(c.data, "-12");
    proto_cmd_free(&c);
}

static void test_presence(void **state) {
    (void)state;
    proto_cmd c;
    decode_ok("{\"id\":5,\"presence\":{\"channel\":\"room\"}}", &c);
    assert_int_equal(c.type, CMD_PRESENCE);
    assert_string_equal(c.channel, "room");
    proto_cmd_free(&c);
    decode_ok("{\"id\":6,\"presence_stats\":{\"channel\":\"room\"}}", &c);
    assert_int_equal(c.type, CMD_PRESENCE_STATS);
    assert_int_equal(c.id, 6);
    assert_string_equal(c.channel, "room");
    proto_cmd_free(&c);
}

static void test_history_full(void **state) {
    (void)state;
    proto_cmd c;
    decode_ok("{\"id\":8,\"history\":{\"channel\":\"h\",\"limit\":-1,"
              "\"since\":{\"offset\":10,\"epoch\":\"xyz\"},\"reverse\":true}}", &c);
    assert_int_equal(c.type, CMD_HISTORY);
    assert_string_equal(c.channel, "h");
    assert_int_equal(c.limit, -1);
    assert_true(c.has_since);
    assert_int_equal(c.since_offset, 10);
    assert_string_equal(c.since_epoch, "xyz");
    assert_true(c.reverse);
    proto_cmd_free(&c);
}

static void test_history_minimal(void **state) {
    (void)state;
    proto_cmd c;
    decode_ok("{\"id\":8,\"history\":{\"channel\":\"h\"}}", &c);
    assert_int_equal(c.limit, 0);
    assert_false(c.has_since);
    assert_false(c.reverse);
    assert_null(c.since_epoch);
    proto_cmd_free(&c);
    decode_ok("{\"id\":8,\"history\":{\"channel\":\"h\",\"since\":{},\"limit\":10}}", &c);
    assert_true(c.has_since);
    assert_int_equal(c.since_offset, 0);
    assert_null(c.since_epoch);
    assert_int_equal(c.limit, 10);
    proto_cmd_free(&c);
}

static void test_ping(void **state) {
    (void)state;
    proto_cmd c;
    decode_ok("{\"id\":9,\"ping\":{}}", &c);
    assert_int_equal(c.type, CMD_PING);
    assert_int_equal(c.id, 9);
    proto_cmd_free(&c);
}

static void test_send(void **state) {
    (void)state;
    proto_cmd c;
    decode_ok("{\"send\":{\"data\":{\"a\":\"b\"}}}", &c);
    assert_int_equal(c.type, CMD_SEND);
    assert_int_equal(c.id, 0);
    assert_string_equal(c.data, "{\"a\":\"b\"}");
    proto_cmd_free(&c);
    decode_ok("{\"id\":12,\"send\":{}}", &c); /* an id on send is dropped */
    assert_int_equal(c.type, CMD_SEND);
    assert_int_equal(c.id, 0);
    assert_null(c.data);
    proto_cmd_free(&c);
}

static void test_rpc(void **state) {
    (void)state;
    proto_cmd c;
    decode_ok("{\"id\":10,\"rpc\":{\"method\":\"sum\",\"data\":[1, 2, {\"k\" : true}]}}", &c);
    assert_int_equal(c.type, CMD_RPC);
    assert_string_equal(c.method, "sum");
    assert_string_equal(c.data, "[1,2,{\"k\":true}]");
    proto_cmd_free(&c);
    decode_ok("{\"id\":10,\"rpc\":{\"data\":{}}}", &c);
    assert_non_null(c.method);
    assert_string_equal(c.method, "");
    assert_string_equal(c.data, "{}");
    proto_cmd_free(&c);
}

static void test_refresh(void **state) {
    (void)state;
    proto_cmd c;
    decode_ok("{\"id\":11,\"refresh\":{\"token\":\"jwt\"}}", &c);
    assert_int_equal(c.type, CMD_REFRESH);
    assert_string_equal(c.token, "jwt");
    proto_cmd_free(&c);
    decode_ok("{\"id\":12,\"sub_refresh\":{\"channel\":\"c\",\"token\":\"t2\",\"type\":1}}", &c);
    assert_int_equal(c.type, CMD_SUB_REFRESH);
    assert_string_equal(c.channel, "c");
    assert_string_equal(c.token, "t2");
    proto_cmd_free(&c);
}

/* ------------------------------------------------------------------------ */
/* Envelope rules                                                           */
/* ------------------------------------------------------------------------ */

static void test_pong(void **state) {
    (void)state;
    static const char *const pongs[] = {
        "{}", " {} \r", "{\"id\":0}", "{\"id\":null}", "{\"future\":{\"x\":1}}",
        "{\"connect\":null}",
    };
    for (size_t i = 0; i < sizeof(pongs) / sizeof(pongs[0]); i++) {
        proto_cmd c;
        decode_ok(pongs[i], &c);
        assert_int_equal(c.type, CMD_PONG);
        assert_int_equal(c.id, 0);
        assert_non_null(c.root);
        proto_cmd_free(&c);
    }
}

static void test_first_non_null_request_wins(void **state) {
    (void)state;
    proto_cmd c;
    decode_ok("{\"subscribe\":{\"channel\":\"s\"},\"id\":1,\"connect\":{\"name\":\"js\"}}", &c);
    assert_int_equal(c.type, CMD_CONNECT);
    assert_null(c.channel);
    proto_cmd_free(&c);
    decode_ok("{\"id\":1,\"connect\":null,\"subscribe\":{\"channel\":\"s\"}}", &c);
    assert_int_equal(c.type, CMD_SUBSCRIBE);
    assert_string_equal(c.channel, "s");
    proto_cmd_free(&c);
}

static void test_unknown_fields_ignored(void **state) {
    (void)state;
    proto_cmd c;
    decode_ok("{\"id\":2,\"x\":[1],\"subscribe\":{\"channel\":\"c\",\"new\":{\"a\":1},"
              "\"cursor\":\"q\"}}", &c);
    assert_int_equal(c.type, CMD_SUBSCRIBE);
    assert_string_equal(c.channel, "c");
    proto_cmd_free(&c);
}

static void test_null_fields_absent(void **state) {
    (void)state;
    proto_cmd c;
    decode_ok("{\"id\":2,\"subscribe\":{\"channel\":\"c\",\"token\":null,"
              "\"recover\":null,\"offset\":null,\"flag\":null}}", &c);
    assert_null(c.token);
    assert_false(c.recover);
    assert_int_equal(c.offset, 0);
    proto_cmd_free(&c);
    decode_ok("{\"id\":1,\"connect\":{\"subs\":null}}", &c);
    assert_null(c.subs);
    proto_cmd_free(&c);
    decode_ok("{\"id\":1,\"history\":{\"channel\":\"c\",\"since\":null}}", &c);
    assert_false(c.has_since);
    proto_cmd_free(&c);
}

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

static void test_err_not_json(void **state) {
    (void)state;
    decode_err("", "invalid JSON");
    decode_err("{", "invalid JSON");
    decode_err("hello", "invalid JSON");
    decode_err("{\"id\":1,}", "invalid JSON");
    decode_err("{} {}", "invalid JSON");
    decode_err("{}x", "invalid JSON");
    decode_err("\"str\"", "invalid JSON");
    decode_err("5", "invalid JSON");
    decode_err("{\"id\":1,\"id\":2}", "invalid JSON");          /* duplicate key */
    decode_err("{\"id\":1,\"publish\":{\"channel\":\"a\\u0000b\",\"data\":1}}",
               "invalid JSON");                                   /* NUL in string */
    decode_err("{\"id\":1,\"publish\":{\"channel\":\"\xff\",\"data\":1}}",
               "invalid JSON");                                   /* bad UTF-8 */
    decode_err("{\"id\":1,\"publish\":{\"channel\":\"c\",\"data\":"
               "100000000000000000000}}", "invalid JSON");        /* > int64 */
}

static void test_err_not_object(void **state) {
    (void)state;
    decode_err("[]", "not a JSON object");
    decode_err("[{\"id\":1,\"ping\":{}}]", "not a JSON object");
}

static void test_err_embedded_nul_length(void **state) {
    (void)state;
    proto_cmd c;
    char err[64];
    /* The length counts, not the NUL: "{}\0{}" is trailing garbage. */
    assert_int_equal(proto_cmd_decode("{}\0{}", 5, &c, err, sizeof(err)), -1);
    /* And a prefix of a longer buffer decodes on its own. */
    assert_int_equal(proto_cmd_decode("{}garbage", 2, &c, err, sizeof(err)), 0);
    assert_int_equal(c.type, CMD_PONG);
    proto_cmd_free(&c);
}

static void test_err_id(void **state) {
    (void)state;
    decode_err("{\"id\":-1,\"ping\":{}}", "id: out of range");
    decode_err("{\"id\":1.5,\"ping\":{}}", "id: expected an integer");
    decode_err("{\"id\":1.0,\"ping\":{}}", "id: expected an integer");
    decode_err("{\"id\":\"1\",\"ping\":{}}", "id: expected an integer");
    decode_err("{\"id\":true,\"ping\":{}}", "id: expected an integer");
    decode_err("{\"id\":4294967296,\"ping\":{}}", "id: out of range");
    decode_err("{\"id\":-5}", "id: out of range");
    decode_err("{\"id\":\"x\",\"send\":{}}", "id: expected an integer");
}

static void test_err_id_required(void **state) {
    (void)state;
    decode_err("{\"subscribe\":{\"channel\":\"c\"}}", "subscribe: id required");
    decode_err("{\"id\":0,\"connect\":{}}", "connect: id required");
    decode_err("{\"ping\":{}}", "ping: id required");
}

static void test_err_no_request(void **state) {
    (void)state;
    decode_err("{\"id\":5}", "no request");
    decode_err("{\"id\":5,\"ping\":null}", "no request");
    decode_err("{\"id\":5,\"foo\":{}}", "unknown command");
    decode_err("{\"id\":5,\"Connect\":{}}", "unknown command");
}

static void test_err_request_not_object(void **state) {
    (void)state;
    decode_err("{\"id\":1,\"connect\":\"x\"}", "connect: expected an object");
    decode_err("{\"id\":1,\"subscribe\":[]}", "subscribe: expected an object");
    decode_err("{\"send\":1}", "send: expected an object");
    decode_err("{\"id\":1,\"ping\":true}", "ping: expected an object");
}

static void test_err_field_types(void **state) {
    (void)state;
    decode_err("{\"id\":2,\"subscribe\":{\"channel\":5}}", "subscribe.channel: expected a string");
    decode_err("{\"id\":2,\"subscribe\":{\"channel\":\"c\",\"recover\":\"yes\"}}",
               "subscribe.recover: expected a boolean");
    decode_err("{\"id\":2,\"subscribe\":{\"channel\":\"c\",\"recover\":1}}",
               "subscribe.recover: expected a boolean");
    decode_err("{\"id\":2,\"subscribe\":{\"channel\":\"c\",\"offset\":\"5\"}}",
               "subscribe.offset: expected an integer");
    decode_err("{\"id\":2,\"subscribe\":{\"channel\":\"c\",\"offset\":-1}}",
               "subscribe.offset: out of range");
    decode_err("{\"id\":2,\"subscribe\":{\"channel\":\"c\",\"offset\":1.5}}",
               "subscribe.offset: expected an integer");
    decode_err("{\"id\":2,\"subscribe\":{\"channel\":\"c\",\"epoch\":1}}",
               "subscribe.epoch: expected a string");
    decode_err("{\"id\":2,\"subscribe\":{\"channel\":\"c\",\"flag\":2.0}}",
               "subscribe.flag: expected an integer");
    decode_err("{\"id\":2,\"subscribe\":{\"channel\":\"c\",\"type\":2147483648}}",
               "subscribe.type: out of range");
    decode_err("{\"id\":2,\"subscribe\":{\"channel\":\"c\",\"token\":false}}",
               "subscribe.token: expected a string");
    decode_err("{\"id\":1,\"connect\":{\"name\":7}}", "connect.name: expected a string");
    decode_err("{\"id\":1,\"connect\":{\"version\":[]}}", "connect.version: expected a string");
    decode_err("{\"id\":1,\"connect\":{\"subs\":[]}}", "connect.subs: expected an object");
    decode_err("{\"id\":1,\"rpc\":{\"method\":{}}}", "rpc.method: expected a string");
    decode_err("{\"id\":1,\"refresh\":{\"token\":1}}", "refresh.token: expected a string");
}

static void test_err_history_fields(void **state) {
    (void)state;
    decode_err("{\"id\":8,\"history\":{\"channel\":\"h\",\"limit\":\"10\"}}",
               "history.limit: expected an integer");
    decode_err("{\"id\":8,\"history\":{\"channel\":\"h\",\"limit\":1.5}}",
               "history.limit: expected an integer");
    decode_err("{\"id\":8,\"history\":{\"channel\":\"h\",\"limit\":2147483648}}",
               "history.limit: out of range");
    decode_err("{\"id\":8,\"history\":{\"channel\":\"h\",\"limit\":-2147483649}}",
               "history.limit: out of range");
    decode_err("{\"id\":8,\"history\":{\"channel\":\"h\",\"since\":5}}",
               "history.since: expected an object");
    decode_err("{\"id\":8,\"history\":{\"channel\":\"h\",\"since\":[]}}",
               "history.since: expected an object");
    decode_err("{\"id\":8,\"history\":{\"channel\":\"h\",\"since\":{\"offset\":-1}}}",
               "history.since.offset: out of range");
    decode_err("{\"id\":8,\"history\":{\"channel\":\"h\",\"since\":{\"epoch\":2}}}",
               "history.since.epoch: expected a string");
    decode_err("{\"id\":8,\"history\":{\"channel\":\"h\",\"reverse\":\"true\"}}",
               "history.reverse: expected a boolean");
}

static void test_err_missing_channel(void **state) {
    (void)state;
    static const char *const names[] = {
        "subscribe", "unsubscribe", "publish", "presence", "presence_stats",
        "history", "sub_refresh",
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char line[128], want[64];
        snprintf(line, sizeof(line),
                 "{\"id\":1,\"%s\":{\"data\":1,\"token\":\"t\"}}", names[i]);
        snprintf(want, sizeof(want), "%s.channel: required", names[i]);
        decode_err(line, want);
        snprintf(line, sizeof(line),
                 "{\"id\":1,\"%s\":{\"channel\":null,\"data\":1,\"token\":\"t\"}}", names[i]);
        decode_err(line, want);
    }
}

static void test_err_missing_other(void **state) {
    (void)state;
    decode_err("{\"id\":3,\"publish\":{\"channel\":\"c\"}}", "publish.data: required");
    decode_err("{\"id\":11,\"refresh\":{}}", "refresh.token: required");
    decode_err("{\"id\":11,\"refresh\":{\"token\":null}}", "refresh.token: required");
    decode_err("{\"id\":12,\"sub_refresh\":{\"channel\":\"c\"}}", "sub_refresh.token: required");
}

static void test_err_buffer(void **state) {
    (void)state;
    proto_cmd c;
    char small[8];
    const char *line = "{\"id\":5}";
    assert_int_equal(proto_cmd_decode(line, strlen(line), &c, small, sizeof(small)), -1);
    assert_string_equal(small, "no requ");                /* truncated, terminated */
    assert_int_equal(proto_cmd_decode(line, strlen(line), &c, NULL, 0), -1);
    char ok[16] = "stale";
    assert_int_equal(proto_cmd_decode("{}", 2, &c, ok, sizeof(ok)), 0);
    assert_string_equal(ok, "");
    proto_cmd_free(&c);
}

/* ------------------------------------------------------------------------ */
/* Helpers of the API                                                       */
/* ------------------------------------------------------------------------ */

static void test_free_is_idempotent(void **state) {
    (void)state;
    proto_cmd c;
    decode_ok("{\"id\":3,\"publish\":{\"channel\":\"c\",\"data\":{}}}", &c);
    proto_cmd_free(&c);
    assert_null(c.root);
    assert_null(c.data);
    proto_cmd_free(&c);
    proto_cmd_free(NULL);
}

static void test_cmd_name(void **state) {
    (void)state;
    assert_string_equal(proto_cmd_name(CMD_PONG), "pong");
    assert_string_equal(proto_cmd_name(CMD_CONNECT), "connect");
    assert_string_equal(proto_cmd_name(CMD_PRESENCE_STATS), "presence_stats");
    assert_string_equal(proto_cmd_name(CMD_SUB_REFRESH), "sub_refresh");
    assert_string_equal(proto_cmd_name(CMD_COUNT), "unknown");
    assert_string_equal(proto_cmd_name((cmd_type)-1), "unknown");
    /* Every request name decodes to its own type. */
    for (int t = CMD_CONNECT; t < CMD_COUNT; t++) {
        char line[160];
        proto_cmd c;
        snprintf(line, sizeof(line), "{\"id\":1,\"%s\":{\"channel\":\"c\","
                 "\"token\":\"t\",\"data\":0}}", proto_cmd_name((cmd_type)t));
        decode_ok(line, &c);
        assert_int_equal(c.type, t);
        proto_cmd_free(&c);
    }
}

static void test_json_compact(void **state) {
    (void)state;
    size_t len = 99;
    assert_null(proto_json_compact(NULL, &len));
    json_t *v = json_pack("{s:[i,s,b,n],s:f}", "a", 1, "x\ny", 1, "b", 0.5);
    char *s = proto_json_compact(v, &len);
    assert_string_equal(s, "{\"a\":[1,\"x\\ny\",true,null],\"b\":0.5}");
    assert_int_equal(len, strlen(s));
    free(s);
    json_decref(v);
    v = json_string("");
    s = proto_json_compact(v, NULL);
    assert_string_equal(s, "\"\"");
    free(s);
    json_decref(v);
    /* Large values grow the buffer. */
    v = json_array();
    for (int i = 0; i < 1000; i++) json_array_append_new(v, json_string("0123456789"));
    s = proto_json_compact(v, &len);
    assert_int_equal(len, 2 + 1000 * 13 - 1);  /* "0123456789", */
    assert_int_equal(strlen(s), len);
    free(s);
    json_decref(v);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect_minimal),
        cmocka_unit_test(test_connect_full),
        cmocka_unit_test(test_subscribe_full),
        cmocka_unit_test(test_subscribe_all_fields),
        cmocka_unit_test(test_map_publish),
        cmocka_unit_test(test_subscribe_big_numbers),
        cmocka_unit_test(test_unsubscribe),
        cmocka_unit_test(test_publish_newline_data),
        cmocka_unit_test(test_publish_scalar_data),
        cmocka_unit_test(test_presence),
        cmocka_unit_test(test_history_full),
        cmocka_unit_test(test_history_minimal),
        cmocka_unit_test(test_ping),
        cmocka_unit_test(test_send),
        cmocka_unit_test(test_rpc),
        cmocka_unit_test(test_refresh),
        cmocka_unit_test(test_pong),
        cmocka_unit_test(test_first_non_null_request_wins),
        cmocka_unit_test(test_unknown_fields_ignored),
        cmocka_unit_test(test_null_fields_absent),
        cmocka_unit_test(test_err_not_json),
        cmocka_unit_test(test_err_not_object),
        cmocka_unit_test(test_err_embedded_nul_length),
        cmocka_unit_test(test_err_id),
        cmocka_unit_test(test_err_id_required),
        cmocka_unit_test(test_err_no_request),
        cmocka_unit_test(test_err_request_not_object),
        cmocka_unit_test(test_err_field_types),
        cmocka_unit_test(test_err_history_fields),
        cmocka_unit_test(test_err_missing_channel),
        cmocka_unit_test(test_err_missing_other),
        cmocka_unit_test(test_err_buffer),
        cmocka_unit_test(test_free_is_idempotent),
        cmocka_unit_test(test_cmd_name),
        cmocka_unit_test(test_json_compact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
