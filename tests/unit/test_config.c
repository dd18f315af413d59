/* Unit tests for core/config: defaults, the JSON and environment loaders,
 * config_set, precedence, error messages and warnings, the key listings,
 * and the channel options and namespaces (config_ns.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/config.h"

#define NKEYS 117

/* Fixture: a config at its defaults, freed after each test. */
static int setup(void **state) {
    config *c = malloc(sizeof(*c));
    if (!c) return -1;
    config_defaults(c);
    *state = c;
    return 0;
}

static int teardown(void **state) {
    config_free(*state);
    free(*state);
    return 0;
}

static int load(config *c, const char *json, char *err) {
    return config_load_json(c, json, strlen(json), err);
}

/* Asserts that loading json fails with an error containing want. */
static void assert_json_error(config *c, const char *json, const char *want) {
    char err[CONFIG_ERR_MAX] = "";
    assert_int_equal(load(c, json, err), -1);
    if (!strstr(err, want)) fail_msg("error \"%s\" lacks \"%s\"", err, want);
}

static void assert_set_error(config *c, const char *key, const char *val,
                             const char *want) {
    char err[CONFIG_ERR_MAX] = "";
    assert_int_equal(config_set(c, key, val, err), -1);
    if (!strstr(err, want)) fail_msg("error \"%s\" lacks \"%s\"", err, want);
}

static void assert_env_error(config *c, char **envp, const char *want) {
    char err[CONFIG_ERR_MAX] = "";
    assert_int_equal(config_load_env(c, envp, NULL, err), -1);
    if (!strstr(err, want)) fail_msg("error \"%s\" lacks \"%s\"", err, want);
}

/* Writes text to a fresh temporary file; returns its path (static buffer). */
static const char *temp_file(const char *text) {
    static char path[] = "/tmp/plaza_test_config_XXXXXX";
    strcpy(path, "/tmp/plaza_test_config_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

/* ------------------------------------------------------------------------ */

static void test_defaults(void **state) {
    config *c = *state;
    char err[CONFIG_ERR_MAX];
    assert_string_equal(c->host, "0.0.0.0");
    assert_int_equal(c->port, 8000);
    assert_int_equal(c->reuse_port, 0);
    assert_int_equal(c->workers, 0);
    assert_string_equal(c->web_root, "web");
    assert_string_equal(c->log_level, "info");
    assert_string_equal(c->log_format, "text");
    assert_int_equal(c->shutdown_timeout_ms, 5000);
    assert_int_equal(c->max_connections, 0);
    assert_int_equal(c->debug_echo, 0);
    assert_int_equal(c->http_max_header_bytes, 16384);
    assert_int_equal(c->http_max_headers, 64);
    assert_int_equal(c->http_max_body_bytes, 1048576);
    assert_int_equal(c->http_read_timeout_ms, 10000);
    assert_int_equal(c->http_keepalive_timeout_ms, 60000);
    assert_int_equal(c->http_static_max_age, 60);
    assert_int_equal(c->ws_max_message_bytes, 1048576);
    assert_int_equal(c->ws_compression, 0);
    assert_int_equal(c->ws_compression_level, 1);
    assert_int_equal(c->ws_compression_min_bytes, 128);
    assert_int_equal(c->ws_ping_interval_ms, 25000);
    assert_int_equal(c->ws_pong_timeout_ms, 10000);
    assert_int_equal(c->ws_close_timeout_ms, 3000);
    assert_int_equal(c->ws_max_outbound_bytes, 4194304);
    assert_null(c->ws_allowed_origins);
    assert_int_equal(c->ws_nallowed_origins, 0);
    assert_string_equal(c->tls_cert, "");
    assert_string_equal(c->tls_key, "");
    assert_int_equal(config_validate(c, err), 0);
}

static void test_defaults_client_channel_api(void **state) {
    config *c = *state;
    assert_string_equal(c->client_token_hmac_secret_key, "");
    assert_string_equal(c->client_token_rsa_public_key, "");
    assert_string_equal(c->client_token_ecdsa_public_key, "");
    assert_string_equal(c->client_token_audience, "");
    assert_string_equal(c->client_token_issuer, "");
    assert_int_equal(c->client_allow_anonymous, 0);
    assert_int_equal(c->client_ping_interval_ms, 25000);
    assert_int_equal(c->client_pong_timeout_ms, 10000);
    assert_int_equal(c->client_stale_close_delay_ms, 10000);
    assert_int_equal(c->client_expired_close_delay_ms, 25000);
    assert_int_equal(c->client_channel_limit, 128);
    assert_int_equal(c->client_user_connection_limit, 0);
    assert_int_equal(c->client_connection_limit_per_ip, 0);
    assert_int_equal(c->client_command_rate, 100);
    assert_int_equal(c->client_command_burst, 200);
    assert_int_equal(c->client_rate_limit_close_after, 50);
    assert_int_equal(c->client_history_max_publications, 10000);
    assert_int_equal(c->client_max_held_events, 10000);
    assert_int_equal(c->channel_max_length, 255);
    assert_int_equal(c->namespaces.channel_max_length, 255);
    assert_int_equal(c->channel_max_clients, 0);
    assert_int_equal(c->channel_presence_ttl_ms, 60000);
    assert_int_equal(c->channel_max_queued_events, 65536);
    assert_string_equal(c->api_key, "");
    assert_int_equal(c->api_insecure, 0);
    assert_string_equal(c->engine_type, "memory");
    assert_int_equal(c->engine_sweep_interval_ms, 1000);
    assert_int_equal(c->engine_delay_max_ms, 20);
    assert_int_equal(c->engine_delay_seed, 0);

    /* top-level channel options: all off, named "" */
    const ns_options *top = &c->namespaces.top;
    assert_string_equal(top->name, "");
    assert_int_equal(top->presence + top->join_leave + top->force_push_join_leave +
                     top->history_size + top->history_ttl_ms + top->force_recovery +
                     top->allow_publish_for_subscriber + top->allow_publish_for_client +
                     top->allow_subscribe_for_client + top->allow_subscribe_for_anonymous +
                     top->allow_presence_for_subscriber +
                     top->allow_history_for_subscriber + top->protected_, 0);
    assert_null(c->namespaces.spaces);
    assert_int_equal(c->namespaces.nspaces, 0);
}

static void test_client_and_api_keys(void **state) {
    config *c = *state;
    char err[CONFIG_ERR_MAX] = "";
    assert_int_equal(load(c,
        "{\"client\": {\"token_hmac_secret_key\": \"s3cret\", \"token_issuer\": \"me\",\n"
        "  \"allow_anonymous_connect_without_token\": true, \"pong_timeout_ms\": 0,\n"
        "  \"command_rate_limit\": 0, \"channel_limit\": 1},\n"
        " \"api\": {\"key\": \"k\", \"insecure\": true}}", err), 0);
    assert_string_equal(c->client_token_hmac_secret_key, "s3cret");
    assert_string_equal(c->client_token_issuer, "me");
    assert_int_equal(c->client_allow_anonymous, 1);
    assert_int_equal(c->client_pong_timeout_ms, 0);
    assert_int_equal(c->client_command_rate, 0);
    assert_int_equal(c->client_channel_limit, 1);
    assert_string_equal(c->api_key, "k");
    assert_int_equal(c->api_insecure, 1);

    char *env[] = {"PLAZA_CLIENT_ALLOW_ANONYMOUS_CONNECT_WITHOUT_TOKEN=false",
                   "PLAZA_CLIENT_COMMAND_RATE_BURST=5", "PLAZA_API_KEY=", NULL};
    assert_int_equal(config_load_env(c, env, NULL, err), 0);
    assert_int_equal(c->client_allow_anonymous, 0);
    assert_int_equal(c->client_command_burst, 5);
    assert_string_equal(c->api_key, "");
    assert_int_equal(config_validate(c, err), 0); /* no key, insecure: fine */
    assert_int_equal(config_set(c, "api.insecure", "false", err), 0);
    assert_int_equal(config_validate(c, err), 0); /* no key: API disabled */

    assert_json_error(c, "{\"client\": {\"ping_interval_ms\": 0}}",
                      "key \"client.ping_interval_ms\": expected an integer between 1 and "
                      "86400000, got 0");
    assert_json_error(c, "{\"client\": {\"command_rate_burst\": 0}}", ">= 1, got 0");
    assert_json_error(c, "{\"client\": {\"stale_close_delay_ms\": 0}}", ">= 1, got 0");
    assert_json_error(c, "{\"channel\": {\"max_length\": 0}}",
                      "key \"channel.max_length\": expected an integer between 1 and 65535");
    assert_json_error(c, "{\"api\": {\"secret\": \"x\"}}", "unknown key \"api.secret\"");
}

/* engine.*, channel.max_queued_events and client.max_held_events: read
 * from every source, ranges at both ends. */
static void test_engine_and_event_limits(void **state) {
    config *c = *state;
    char err[CONFIG_ERR_MAX] = "";
    assert_int_equal(load(c,
        "{\"engine\": {\"type\": \"delayed\", \"sweep_interval_ms\": 10,\n"
        "  \"delay_max_ms\": 0, \"delay_seed\": 2147483647},\n"
        " \"channel\": {\"max_queued_events\": 16},\n"
        " \"client\": {\"max_held_events\": 1000000}}", err), 0);
    assert_string_equal(c->engine_type, "delayed");
    assert_int_equal(c->engine_sweep_interval_ms, 10);
    assert_int_equal(c->engine_delay_max_ms, 0);
    assert_int_equal(c->engine_delay_seed, 2147483647);
    assert_int_equal(c->channel_max_queued_events, 16);
    assert_int_equal(c->client_max_held_events, 1000000);

    char *env[] = {"PLAZA_ENGINE_TYPE=memory", "PLAZA_ENGINE_DELAY_MAX_MS=60000",
                   "PLAZA_CHANNEL_MAX_QUEUED_EVENTS=16777216", NULL};
    assert_int_equal(config_load_env(c, env, NULL, err), 0);
    assert_string_equal(c->engine_type, "memory");
    assert_int_equal(c->engine_delay_max_ms, 60000);
    assert_int_equal(c->channel_max_queued_events, 16777216);
    assert_int_equal(config_set(c, "engine.sweep_interval_ms", "3600000", err), 0);
    assert_int_equal(config_set(c, "client.max_held_events", "1", err), 0);
    assert_int_equal(config_validate(c, err), 0);

    assert_set_error(c, "engine.type", "", "key \"engine.type\": expected a non-empty string");
    assert_set_error(c, "engine.sweep_interval_ms", "9",
                     "key \"engine.sweep_interval_ms\": expected an integer between 10 "
                     "and 3600000, got \"9\"");
    assert_set_error(c, "engine.sweep_interval_ms", "3600001", "got \"3600001\"");
    assert_set_error(c, "engine.delay_max_ms", "60001",
                     "key \"engine.delay_max_ms\": expected an integer between 0 and 60000");
    assert_set_error(c, "engine.delay_max_ms", "-1", "got \"-1\"");
    assert_set_error(c, "engine.delay_seed", "-1",
                     "key \"engine.delay_seed\": expected an integer >= 0, got \"-1\"");
    assert_json_error(c, "{\"engine\": {\"delay_seed\": 2147483648}}",
                      "key \"engine.delay_seed\": expected an integer >= 0, got 2147483648");
    assert_set_error(c, "channel.max_queued_events", "15",
                     "key \"channel.max_queued_events\": expected an integer between 16 "
                     "and 16777216, got \"15\"");
    assert_set_error(c, "channel.max_queued_events", "16777217", "got \"16777217\"");
    assert_set_error(c, "client.max_held_events", "0",
                     "key \"client.max_held_events\": expected an integer between 1 "
                     "and 1000000, got \"0\"");
    assert_set_error(c, "client.max_held_events", "1000001", "got \"1000001\"");
    assert_json_error(c, "{\"engine\": {\"kind\": \"memory\"}}",
                      "unknown key \"engine.kind\"");
}

/* Ranges narrowed so that every value fits the code that uses it: the
 * connect reply rounds client.ping_interval_ms up to seconds in int
 * arithmetic ((ms + 999) / 1000), which overflowed near INT_MAX; /metrics
 * sums the workers' counters through an array of 256, so more workers went
 * uncounted. */
static void test_ranges_fit_their_use(void **state) {
    config *c = *state;
    assert_int_equal(config_set(c, "workers", "256", NULL), 0);
    assert_set_error(c, "workers", "257",
                     "key \"workers\": expected an integer between 0 and 256, got \"257\"");
    assert_json_error(c, "{\"workers\": 1024}", "key \"workers\": expected an integer "
                                                "between 0 and 256, got 1024");
    assert_int_equal(config_set(c, "client.ping_interval_ms", "86400000", NULL), 0);
    assert_int_equal(c->client_ping_interval_ms, 86400000);
    assert_set_error(c, "client.ping_interval_ms", "86400001",
                     "key \"client.ping_interval_ms\": expected an integer between 1 "
                     "and 86400000, got \"86400001\"");
    assert_json_error(c, "{\"client\": {\"ping_interval_ms\": 2147483647}}",
                      "key \"client.ping_interval_ms\": expected an integer between 1 "
                      "and 86400000, got 2147483647");
    char *env[] = {"PLAZA_CLIENT_PING_INTERVAL_MS=86400001", NULL};
    assert_env_error(c, env, "PLAZA_CLIENT_PING_INTERVAL_MS: key \"client.ping_interval_ms\"");
    /* a 16-bit count of refused commands in each client */
    assert_int_equal(config_set(c, "client.rate_limit_close_after", "65535", NULL), 0);
    assert_set_error(c, "client.rate_limit_close_after", "65536",
                     "key \"client.rate_limit_close_after\": expected an integer between 1 "
                     "and 65535, got \"65536\"");
}

static void test_channel_max_length_mirrored(void **state) {
    config *c = *state;
    assert_int_equal(config_set(c, "channel.max_length", "64", NULL), 0);
    assert_int_equal(c->namespaces.channel_max_length, 64);
    assert_int_equal(load(c, "{\"channel\": {\"max_length\": 32}}", NULL), 0);
    assert_int_equal(c->namespaces.channel_max_length, 32);
    char *env[] = {"PLAZA_CHANNEL_MAX_LENGTH=16", NULL};
    assert_int_equal(config_load_env(c, env, NULL, NULL), 0);
    assert_int_equal(c->channel_max_length, 16);
    assert_int_equal(c->namespaces.channel_max_length, 16);
    assert_int_equal(load(c, "{\"channel\": {\"max_length\": 0}}", NULL), -1);
    assert_int_equal(c->namespaces.channel_max_length, 16);
}

static void test_channel_options(void **state) {
    config *c = *state;
    char err[CONFIG_ERR_MAX] = "";
    assert_int_equal(load(c,
        "{\"channel\": {\"options\": {\"presence\": true, \"history_size\": 10,\n"
        "  \"history_ttl_ms\": 5000, \"force_recovery\": true, \"protected\": true}}}",
        err), 0);
    const ns_options *top = &c->namespaces.top;
    assert_int_equal(top->presence, 1);
    assert_int_equal(top->history_size, 10);
    assert_int_equal(top->history_ttl_ms, 5000);
    assert_int_equal(top->force_recovery, 1);
    assert_int_equal(top->protected_, 1);
    assert_int_equal(top->join_leave, 0);
    assert_string_equal(top->name, "");

    char *env[] = {"PLAZA_CHANNEL_OPTIONS_JOIN_LEAVE=on",
                   "PLAZA_CHANNEL_OPTIONS_ALLOW_SUBSCRIBE_FOR_ANONYMOUS=1", NULL};
    assert_int_equal(config_load_env(c, env, NULL, err), 0);
    assert_int_equal(top->join_leave, 1);
    assert_int_equal(top->allow_subscribe_for_anonymous, 1);
    assert_int_equal(config_set(c, "channel.options.allow_history_for_subscriber",
                                "true", err), 0);
    assert_int_equal(top->allow_history_for_subscriber, 1);
    assert_int_equal(config_validate(c, err), 0);

    assert_json_error(c, "{\"channel\": {\"options\": {\"presense\": true}}}",
                      "unknown key \"channel.options.presense\" "
                      "(did you mean \"channel.options.presence\"?)");
    assert_json_error(c, "{\"channel\": {\"options\": {\"history_size\": 1000001}}}",
                      "key \"channel.options.history_size\": expected an integer "
                      "between 0 and 1000000");
    assert_json_error(c, "{\"channel\": {\"options\": {\"history_ttl_ms\": -1}}}",
                      ">= 0, got -1");
    assert_set_error(c, "channel.options.name", "x", "unknown key");
}

static void test_top_force_recovery_needs_history(void **state) {
    config *c = *state;
    char err[CONFIG_ERR_MAX] = "";
    assert_int_equal(config_set(c, "channel.options.force_recovery", "true", err), 0);
    assert_int_equal(config_validate(c, err), -1);
    assert_non_null(strstr(err, "key \"channel.options.force_recovery\": needs "
                                "channel.options.history_size > 0 (recovery needs history)"));
    assert_int_equal(config_set(c, "channel.options.history_size", "1", err), 0);
    assert_int_equal(config_validate(c, err), 0);
}

static const char *const chat_json =
    "{\"channel\": {\"namespaces\": [\n"
    "  {\"name\": \"chat\", \"presence\": true, \"join_leave\": true,\n"
    "   \"history_size\": 100, \"history_ttl_ms\": 300000, \"force_recovery\": true,\n"
    "   \"allow_publish_for_subscriber\": true, \"allow_subscribe_for_client\": true},\n"
    "  {\"name\": \"news.v-2_x\", \"protected\": true}]}}";

static void assert_chat(const config *c) {
    assert_int_equal(c->namespaces.nspaces, 2);
    const ns_options *chat = &c->namespaces.spaces[0], *news = &c->namespaces.spaces[1];
    assert_string_equal(chat->name, "chat");
    assert_int_equal(chat->presence, 1);
    assert_int_equal(chat->join_leave, 1);
    assert_int_equal(chat->history_size, 100);
    assert_int_equal(chat->history_ttl_ms, 300000);
    assert_int_equal(chat->force_recovery, 1);
    assert_int_equal(chat->allow_publish_for_subscriber, 1);
    assert_int_equal(chat->allow_subscribe_for_client, 1);
    assert_int_equal(chat->allow_publish_for_client, 0);
    assert_int_equal(chat->protected_, 0);
    assert_string_equal(news->name, "news.v-2_x");
    assert_int_equal(news->protected_, 1);
    assert_int_equal(news->presence + news->history_size + news->force_recovery, 0);
}

static void test_namespaces_from_json(void **state) {
    config *c = *state;
    char err[CONFIG_ERR_MAX] = "";
    assert_int_equal(load(c, chat_json, err), 0);
    assert_chat(c);
    assert_int_equal(config_validate(c, err), 0);

    /* not inherited from channel.options */
    assert_int_equal(load(c, "{\"channel\": {\"options\": {\"allow_publish_for_client\": "
                             "true}, \"namespaces\": [{\"name\": \"a\"}]}}", err), 0);
    assert_int_equal(c->namespaces.top.allow_publish_for_client, 1);
    assert_int_equal(c->namespaces.nspaces, 1);
    assert_int_equal(c->namespaces.spaces[0].allow_publish_for_client, 0);

    assert_int_equal(load(c, "{\"channel\": {\"namespaces\": []}}", err), 0);
    assert_int_equal(c->namespaces.nspaces, 0);
    assert_null(c->namespaces.spaces);
}

static void test_namespaces_from_env_and_set(void **state) {
    config *c = *state;
    char err[CONFIG_ERR_MAX] = "";
    char *env[] = {"PLAZA_CHANNEL_NAMESPACES=[{\"name\": \"chat\", \"presence\": true},"
                   " {\"name\": \"b\"}]", NULL};
    assert_int_equal(config_load_env(c, env, NULL, err), 0);
    assert_int_equal(c->namespaces.nspaces, 2);
    assert_string_equal(c->namespaces.spaces[0].name, "chat");
    assert_int_equal(c->namespaces.spaces[0].presence, 1);
    assert_string_equal(c->namespaces.spaces[1].name, "b");

    assert_int_equal(config_set(c, "channel.namespaces", "[{\"name\": \"x\"}]", err), 0);
    assert_int_equal(c->namespaces.nspaces, 1);
    assert_string_equal(c->namespaces.spaces[0].name, "x");
    assert_int_equal(config_set(c, "channel.namespaces", " ", err), 0);
    assert_int_equal(c->namespaces.nspaces, 0);

    char *bad[] = {"PLAZA_CHANNEL_NAMESPACES=[{\"name\": \"chat\"", NULL};
    assert_env_error(c, bad, "PLAZA_CHANNEL_NAMESPACES: key \"channel.namespaces\": "
                             "invalid JSON");
    char *typo[] = {"PLAZA_CHANNEL_NAMESPACES=[{\"name\": \"a\", \"histroy_size\": 1}]", NULL};
    assert_env_error(c, typo, "unknown key \"channel.namespaces[0].histroy_size\" "
                              "(did you mean \"history_size\"?)");
    assert_set_error(c, "channel.namespaces", "{\"name\": \"a\"}",
                     "key \"channel.namespaces\": expected an array of namespace "
                     "objects, got {\"name\":\"a\"}");
}

/* Each namespace error names the element and the field. */
static void test_namespace_errors(void **state) {
    config *c = *state;
#define NS(body) "{\"channel\": {\"namespaces\": " body "}}"
    assert_json_error(c, NS("{}"), "key \"channel.namespaces\": expected an array");
    assert_json_error(c, NS("[{\"name\": \"a\"}, 5]"),
                      "key \"channel.namespaces[1]\": expected an object, got 5");
    assert_json_error(c, NS("[{\"presence\": true}]"),
                      "key \"channel.namespaces[0].name\": missing");
    assert_json_error(c, NS("[{\"name\": \"\"}]"),
                      "key \"channel.namespaces[0].name\": expected 1 to 64 characters");
    assert_json_error(c, NS("[{\"name\": \"a:b\"}]"),
                      "key \"channel.namespaces[0].name\": expected 1 to 64 characters "
                      "of A-Z a-z 0-9 _ - ., got \"a:b\"");
    assert_json_error(c, NS("[{\"name\": \"a b\"}]"), "got \"a b\"");
    assert_json_error(c, NS("[{\"name\": 7}]"), "[0].name\": expected 1 to 64");
    assert_json_error(c, NS("[{\"name\": \"a\\u0000b\"}]"), "invalid JSON");
    assert_json_error(c, NS("[{\"name\": "
                            "\"ab123456789012345678901234567890123456789012345678901234567890123\"}]"),
                      "[0].name\": expected 1 to 64");
    assert_int_equal(load(c, NS("[{\"name\": "
                                "\"123456789012345678901234567890123456789012345678901234567890123X\"}]"),
                          NULL), 0); /* 64 is fine */
    assert_json_error(c, NS("[{\"name\": \"chat\"}, {\"name\": \"b\"}, {\"name\": \"chat\"}]"),
                      "key \"channel.namespaces[2].name\": duplicate namespace \"chat\"");
    assert_json_error(c, NS("[{\"name\": \"a\"}, {\"name\": \"b\", \"presense\": true}]"),
                      "unknown key \"channel.namespaces[1].presense\" "
                      "(did you mean \"presence\"?)");
    assert_json_error(c, NS("[{\"nmae\": \"a\"}]"),
                      "unknown key \"channel.namespaces[0].nmae\" (did you mean \"name\"?)");
    assert_json_error(c, NS("[{\"name\": \"a\", \"xyzzy\": 1}]"),
                      "unknown key \"channel.namespaces[0].xyzzy\"");
    assert_json_error(c, NS("[{\"name\": \"a\", \"presence\": 1}]"),
                      "key \"channel.namespaces[0].presence\": expected true or false, got 1");
    assert_json_error(c, NS("[{\"name\": \"a\", \"history_size\": -1}]"),
                      "key \"channel.namespaces[0].history_size\": expected an integer "
                      "between 0 and 1000000, got -1");
    assert_json_error(c, NS("[{\"name\": \"a\", \"history_size\": 1000001}]"),
                      "got 1000001");
    assert_json_error(c, NS("[{\"name\": \"a\", \"history_ttl_ms\": -5}]"),
                      "key \"channel.namespaces[0].history_ttl_ms\": expected an "
                      "integer >= 0, got -5");
    assert_json_error(c, NS("[{\"name\": \"a\", \"history_ttl_ms\": 1.5}]"), "got 1.5");
    assert_json_error(c, NS("[{\"name\": \"a\", \"name\": \"b\"}]"), "duplicate");
    assert_json_error(c, NS("[{\"name\": \"a\", \"force_recovery\": true}]"),
                      "key \"channel.namespaces[0].force_recovery\": needs "
                      "channel.namespaces[0].history_size > 0 (recovery needs history)");
    assert_int_equal(c->namespaces.nspaces, 1); /* only the 64-char load applied */
#undef NS
}

/* Map channels: subscription_type, the nested "map" object, enums by name,
 * and the checks that tie them together (issue 12). */
static void test_board_namespaces(void **state) {
    config *c = *state;
    char err[CONFIG_ERR_MAX] = "";
    assert_int_equal(load(c, "{\"channel\": {\"namespaces\": [{\"name\": \"board\", "
                          "\"history_size\": 100, \"board\": {\"width\": 1024, \"height\": 512, "
                          "\"cooldown_ms\": 5000}}, {\"name\": \"b8\", \"history_size\": 10, "
                          "\"board\": {\"width\": 64, \"height\": 64, \"bits\": 8, "
                          "\"palette\": \"#000000, #FFffff,#123abc\"}}]}}", err), 0);
    assert_int_equal(config_validate(c, err), 0);
    const ns_options *b = &c->namespaces.spaces[0], *b8 = &c->namespaces.spaces[1];
    uint32_t rgb[256];
    assert_true(ns_is_board(b));
    assert_false(ns_is_board(&c->namespaces.top));
    assert_int_equal(ns_board_bits(b), 4);
    assert_int_equal(ns_board_batch_ms(b), NS_BOARD_BATCH_DEFAULT_MS);
    assert_int_equal(ns_board_max_age_ms(b), NS_BOARD_MAX_AGE_DEFAULT_MS);
    assert_int_equal(ns_board_palette(b, rgb), 16);
    assert_int_equal(rgb[5], 0xe50000);
    assert_int_equal(ns_board_palette(b8, rgb), 3);
    assert_int_equal(rgb[1], 0xffffff);
    assert_int_equal(rgb[2], 0x123abc);
    /* the checks name the key */
    assert_set_error(c, "channel.options.board.width", "5000",
                     "key \"channel.options.board.width\": expected an integer between 0 and 4096, got \"5000\"");
    assert_int_equal(config_set(c, "channel.options.board.width", "32", err), 0);
    assert_int_equal(config_set(c, "channel.options.board.height", "64", err), 0);
    assert_int_equal(config_set(c, "channel.options.history_size", "10", err), 0);
    assert_int_equal(config_validate(c, err), -1);
    assert_string_equal(err, "key \"channel.options.board.width\": a board is 64 to 4096 pixels on a side");
    assert_int_equal(config_set(c, "channel.options.board.width", "64", err), 0);
    assert_int_equal(config_set(c, "channel.options.board.bits", "6", err), 0);
    assert_int_equal(config_validate(c, err), -1);
    assert_string_equal(err, "key \"channel.options.board.bits\": 4 or 8 (got 6)");
    assert_int_equal(config_set(c, "channel.options.board.bits", "4", err), 0);
    assert_int_equal(config_set(c, "channel.options.board.palette", "#fff", err), 0);
    assert_int_equal(config_validate(c, err), -1);
    assert_non_null(strstr(err, "board.palette"));
    assert_int_equal(config_set(c, "channel.options.board.palette", "", err), 0);
    assert_int_equal(config_set(c, "channel.options.history_size", "0", err), 0);
    assert_int_equal(config_validate(c, err), -1);
    assert_non_null(strstr(err, "\"channel.options.history_size\": a board needs history"));
    assert_int_equal(config_set(c, "channel.options.history_size", "10", err), 0);
    assert_int_equal(config_validate(c, err), 0);
}

static void test_map_namespaces(void **state) {
#define NS(body) "{\"channel\": {\"namespaces\": " body "}}"
    config *c = *state;
    char err[CONFIG_ERR_MAX] = "";
    assert_int_equal(load(c, NS("[{\"name\": \"lots\", \"subscription_type\": \"map\", "
                                "\"map\": {\"mode\": \"persistent\", \"stream_size\": 50}, "
                                "\"client_key\": \"user_id\", \"allow_remove_for_client\": true},"
                                " {\"name\": \"pc\", \"subscription_type\": \"map_clients\", "
                                "\"map\": {\"mode\": \"recoverable\", \"key_ttl_ms\": 5000}},"
                                " {\"name\": \"room\", \"map_clients_presence_channel_prefix\": "
                                "\"pc:\"}]"), err), 0);
    const ns_options *lots = &c->namespaces.spaces[0], *pc = &c->namespaces.spaces[1];
    assert_int_equal(lots->subscription_type, NS_SUB_MAP);
    assert_int_equal(lots->map_mode, NS_MAP_PERSISTENT);
    assert_int_equal(ns_map_stream_size(lots), 50);
    assert_int_equal(ns_map_stream_ttl_ms(lots), NS_MAP_STREAM_TTL_DEFAULT_MS);
    assert_int_equal(lots->client_key, NS_CLIENT_KEY_USER_ID);
    assert_int_equal(lots->allow_remove_for_client, 1);
    assert_int_equal(pc->subscription_type, NS_SUB_MAP_CLIENTS);
    assert_int_equal(pc->map_key_ttl_ms, 5000);
    assert_int_equal(ns_map_stream_size(pc), NS_MAP_STREAM_SIZE_DEFAULT);
    assert_string_equal(c->namespaces.spaces[2].map_clients_presence_channel_prefix, "pc:");
    assert_int_equal(config_validate(c, err), 0);
    assert_int_equal(ns_map_page_size(lots, 0), NS_MAP_PAGE_SIZE_DEFAULT);
    assert_int_equal(ns_map_page_size(lots, 5), 5);
    assert_int_equal(ns_map_page_size(lots, 1000000), NS_MAP_PAGE_SIZE_MAX_DEFAULT);

    /* a deep copy keeps the strings (config_set copies the whole config) */
    assert_int_equal(config_set(c, "port", "9001", err), 0);
    assert_string_equal(c->namespaces.spaces[2].map_clients_presence_channel_prefix, "pc:");

    /* the same at the top level, through flags */
    assert_int_equal(config_set(c, "channel.options.subscription_type", "map_users", err), 0);
    assert_int_equal(c->namespaces.top.subscription_type, NS_SUB_MAP_USERS);
    assert_int_equal(config_set(c, "channel.options.map.key_ttl_ms", "1000", err), 0);
    assert_int_equal(config_validate(c, err), 0);
    assert_set_error(c, "channel.options.map.mode", "durable",
                     "key \"channel.options.map.mode\": expected one of ephemeral, "
                     "recoverable, persistent, got \"durable\"");
    assert_int_equal(config_set(c, "channel.options.map.key_ttl_ms", "0", err), 0);
    assert_int_equal(config_validate(c, err), -1);
    assert_non_null(strstr(err, "key \"channel.options.map.key_ttl_ms\": map.mode ephemeral "
                                "needs a key TTL"));

    assert_json_error(c, NS("[{\"name\": \"m\", \"subscription_type\": \"maps\"}]"),
                      "key \"channel.namespaces[0].subscription_type\": expected one of "
                      "\"stream\", \"map\", \"map_clients\", \"map_users\", got \"maps\"");
    assert_json_error(c, NS("[{\"name\": \"m\", \"map\": {\"mdoe\": \"persistent\"}}]"),
                      "unknown key \"channel.namespaces[0].map.mdoe\" (did you mean "
                      "\"map.mode\"?)");
    assert_json_error(c, NS("[{\"name\": \"m\", \"map\": 3}]"),
                      "key \"channel.namespaces[0].map\": expected an object, got 3");
    assert_json_error(c, NS("[{\"name\": \"m\", \"subscription_type\": \"map\"}]"),
                      "key \"channel.namespaces[0].map.key_ttl_ms\": map.mode ephemeral needs "
                      "a key TTL");
    assert_json_error(c, NS("[{\"name\": \"m\", \"subscription_type\": \"map\", \"map\": "
                            "{\"mode\": \"persistent\", \"key_ttl_ms\": 5}}]"),
                      "key \"channel.namespaces[0].map.key_ttl_ms\": persistent keys never expire");
    assert_json_error(c, NS("[{\"name\": \"m\", \"subscription_type\": \"map_users\", "
                            "\"map\": {\"mode\": \"persistent\"}}]"),
                      "presence maps (map_users) cannot be persistent");
    assert_json_error(c, NS("[{\"name\": \"m\", \"subscription_type\": \"map\", "
                            "\"history_size\": 10, \"map\": {\"key_ttl_ms\": 5}}]"),
                      "key \"channel.namespaces[0].history_size\": a map channel keeps its "
                      "changes in map.stream_size");
    assert_int_equal(config_set(c, "channel.options.subscription_type", "stream", err), 0);
    assert_int_equal(load(c, NS("[{\"name\": \"room\", "
                                "\"map_users_presence_channel_prefix\": \"room:\"}]"), err), 0);
    assert_int_equal(config_validate(c, err), -1);
    assert_non_null(strstr(err, "key \"channel.namespaces[0].map_users_presence_channel_prefix\""
                                ": \"room:\" must start with the name of a namespace whose "
                                "subscription_type is map_users"));
#undef NS
}

static void test_validate_rechecks_namespaces(void **state) {
    config *c = *state;
    char err[CONFIG_ERR_MAX] = "";
    assert_int_equal(load(c, chat_json, err), 0);
    c->namespaces.spaces[1].history_size = -1;
    assert_int_equal(config_validate(c, err), -1);
    assert_non_null(strstr(err, "key \"channel.namespaces[1].history_size\""));
    c->namespaces.spaces[1].history_size = 0;
    strcpy(c->namespaces.spaces[1].name, "chat");
    assert_int_equal(config_validate(c, err), -1);
    assert_non_null(strstr(err, "key \"channel.namespaces[1].name\": duplicate"));
}

/* Loaders work on a deep copy: namespaces survive failed loads and loads of
 * other keys, and replaced ones are freed (ASan checks the rest). */
static void test_namespaces_deep_copy(void **state) {
    config *c = *state;
    char err[CONFIG_ERR_MAX] = "";
    assert_int_equal(load(c, chat_json, err), 0);
    const ns_options *before = c->namespaces.spaces;
    assert_json_error(c, "{\"port\": 1, \"channel\": {\"namespaces\": "
                         "[{\"name\": \"z\"}], \"bogus\": 1}}", "unknown key");
    assert_ptr_equal(c->namespaces.spaces, before); /* untouched */
    assert_chat(c);

    assert_int_equal(load(c, "{\"port\": 1}", err), 0); /* copied, old freed */
    assert_int_equal(c->port, 1);
    assert_chat(c);
    assert_string_equal(c->namespaces.top.name, "");

    char *env[] = {"PLAZA_PORT=2", NULL};
    assert_int_equal(config_load_env(c, env, NULL, err), 0);
    assert_chat(c);
    char *badenv[] = {"PLAZA_CHANNEL_NAMESPACES=[]", "PLAZA_PORT=x", NULL};
    assert_int_equal(config_load_env(c, badenv, NULL, err), -1);
    assert_chat(c);

    assert_int_equal(load(c, "{\"channel\": {\"namespaces\": [{\"name\": \"q\"}]}}",
                          err), 0);
    assert_int_equal(c->namespaces.nspaces, 1);
    assert_string_equal(c->namespaces.spaces[0].name, "q");

    config_free(c);
    assert_null(c->namespaces.spaces);
    assert_null(c->namespaces.top.name);
    assert_int_equal(c->namespaces.nspaces, 0);
    config_free(c);
    config_defaults(c); /* for teardown */
}

static void test_free_twice(void **state) {
    config *c = *state;
    assert_int_equal(config_set(c, "websocket.allowed_origins", "a,b", NULL), 0);
    config_free(c);
    assert_null(c->host);
    assert_null(c->ws_allowed_origins);
    config_free(c);
    config_defaults(c); /* for teardown */
}

static void test_json_overrides(void **state) {
    config *c = *state;
    char err[CONFIG_ERR_MAX] = "";
    assert_int_equal(load(c,
        "{\"port\": 9001, \"host\": \"127.0.0.1\", \"log_level\": \"debug\",\n"
        " \"http\": {\"max_headers\": 32, \"static_max_age\": 0},\n"
        " \"websocket\": {\"compression\": true, \"compression_level\": 9},\n"
        " \"tls\": {\"cert\": \"c.pem\", \"key\": \"k.pem\"}}", err), 0);
    assert_string_equal(err, "");
    assert_int_equal(c->port, 9001);
    assert_string_equal(c->host, "127.0.0.1");
    assert_string_equal(c->log_level, "debug");
    assert_int_equal(c->http_max_headers, 32);
    assert_int_equal(c->http_static_max_age, 0);
    assert_int_equal(c->ws_compression, 1);
    assert_int_equal(c->ws_compression_level, 9);
    assert_string_equal(c->tls_cert, "c.pem");
    assert_string_equal(c->tls_key, "k.pem");
    /* untouched keys keep their defaults */
    assert_int_equal(c->http_max_header_bytes, 16384);
    assert_string_equal(c->web_root, "web");
    assert_int_equal(config_validate(c, err), 0);
}

static void test_empty_object_and_sections(void **state) {
    config *c = *state;
    assert_int_equal(load(c, "{}", NULL), 0);
    assert_int_equal(load(c, "{\"http\": {}, \"tls\": {}}", NULL), 0);
    assert_int_equal(c->port, 8000);
}

static void test_file_overrides(void **state) {
    config *c = *state;
    char err[CONFIG_ERR_MAX] = "";
    const char *path = temp_file("{\"port\": 7000, \"http\": {\"max_body_bytes\": 0}}\n");
    assert_int_equal(config_load_file(c, path, err), 0);
    unlink(path);
    assert_int_equal(c->port, 7000);
    assert_int_equal(c->http_max_body_bytes, 0);
}

static void test_file_errors_name_the_file(void **state) {
    config *c = *state;
    char err[CONFIG_ERR_MAX] = "";
    assert_int_equal(config_load_file(c, "/nonexistent/plaza.json", err), -1);
    assert_non_null(strstr(err, "/nonexistent/plaza.json"));
    assert_non_null(strstr(err, "No such file"));

    const char *path = temp_file("{\"port\": \"x\"}");
    assert_int_equal(config_load_file(c, path, err), -1);
    unlink(path);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "key \"port\""));
}

static void test_precedence_file_env_set(void **state) {
    config *c = *state;
    char err[CONFIG_ERR_MAX] = "";
    const char *path = temp_file(
        "{\"port\": 7000, \"workers\": 2, \"log_format\": \"json\"}");
    assert_int_equal(config_load_file(c, path, err), 0);
    unlink(path);

    char *env[] = {"HOME=/root", "PLAZA_PORT=7001", "PLAZA_WORKERS=3", NULL};
    assert_int_equal(config_load_env(c, env, NULL, err), 0);
    assert_int_equal(config_set(c, "port", "7002", err), 0);

    assert_int_equal(c->port, 7002);          /* flag beats env beats file */
    assert_int_equal(c->workers, 3);          /* env beats file */
    assert_string_equal(c->log_format, "json"); /* file beats default */
    assert_int_equal(c->ws_ping_interval_ms, 25000);
}

static void test_env_names(void **state) {
    config *c = *state;
    char err[CONFIG_ERR_MAX] = "";
    char *env[] = {
        "PLAZA_HTTP_MAX_HEADER_BYTES=4096",
        "PLAZA_WEBSOCKET_COMPRESSION=yes",
        "PLAZA_WEBSOCKET_MAX_OUTBOUND_BYTES=65536",
        "PLAZA_TLS_CERT=/etc/plaza/cert.pem",
        "PLAZA_TLS_KEY=/etc/plaza/key.pem",
        "PLAZA_LOG_LEVEL=WARN",
        "PLAZA_DEBUG_ECHO=1",
        "PLAZA_REUSE_PORT=true",
        "PLAZA_CONFIG=/etc/plaza.json", /* main's; ignored here */
        "PATH=/usr/bin",
        "plaza_port=1",                 /* not ours: case matters */
        "PLAZA_NOEQUALS",
        NULL,
    };
    assert_int_equal(config_load_env(c, env, NULL, err), 0);
    assert_int_equal(c->http_max_header_bytes, 4096);
    assert_int_equal(c->ws_compression, 1);
    assert_int_equal(c->ws_max_outbound_bytes, 65536);
    assert_string_equal(c->tls_cert, "/etc/plaza/cert.pem");
    assert_string_equal(c->tls_key, "/etc/plaza/key.pem");
    assert_string_equal(c->log_level, "warn");
    assert_int_equal(c->debug_echo, 1);
    assert_int_equal(c->reuse_port, 1);
    assert_int_equal(c->port, 8000);
    assert_int_equal(config_load_env(c, NULL, NULL, err), 0);
}

static void test_env_errors(void **state) {
    config *c = *state;
    char *bad[] = {"PLAZA_WORKERS=2", "PLAZA_PORT=abc", NULL};
    assert_env_error(c, bad, "PLAZA_PORT: key \"port\": expected an integer "
                             "between 0 and 65535, got \"abc\"");
    assert_int_equal(c->workers, 0); /* nothing applied */
    char *empty[] = {"PLAZA_HOST=", NULL};
    assert_env_error(c, empty, "key \"host\": expected a non-empty string");
}

/* Asserts that warning i of w is want. */
static void assert_warning(const config_warnings *w, int i, const char *want) {
    if (i >= w->n) fail_msg("warning %d missing (%d warnings)", i, w->n);
    assert_string_equal(w->msg[i], want);
}

/* Unknown PLAZA_* variables are skipped with a warning each; the rest of
 * the environment still applies. */
static void test_env_unknown_warns(void **state) {
    config *c = *state;
    char err[CONFIG_ERR_MAX] = "";
    config_warnings w = {0};
    char *env[] = {"PLAZA_FOO=1", "PLAZA_PORT=1", "PLAZA_WEBSOCKET_COMPRESION=1",
                   "PLAZA_CONFIG=/x.json", NULL};
    assert_int_equal(config_load_env(c, env, &w, err), 0);
    assert_int_equal(c->port, 1);
    assert_int_equal(c->ws_compression, 0);
    assert_int_equal(w.n, 2);
    assert_warning(&w, 0, "unknown environment variable PLAZA_FOO ignored");
    assert_warning(&w, 1, "unknown environment variable PLAZA_WEBSOCKET_COMPRESION "
                          "ignored (did you mean PLAZA_WEBSOCKET_COMPRESSION?)");
    assert_int_equal(w.dropped, 0);
}

/* What Kubernetes injects for a Service named "plaza" with port 8000,
 * except PLAZA_PORT itself. */
static char *k8s_env[] = {
    "PLAZA_SERVICE_HOST=10.0.0.1",
    "PLAZA_SERVICE_PORT=8000",
    "PLAZA_SERVICE_PORT_HTTP=8000",
    "PLAZA_PORT_8000_TCP=tcp://10.0.0.1:8000",
    "PLAZA_PORT_8000_TCP_PROTO=tcp",
    "PLAZA_PORT_8000_TCP_PORT=8000",
    "PLAZA_PORT_8000_TCP_ADDR=10.0.0.1",
    NULL,
};

static void test_env_service_links_warn(void **state) {
    config *c = *state;
    char err[CONFIG_ERR_MAX] = "";
    config_warnings w = {0};
    assert_int_equal(config_load_env(c, k8s_env, &w, err), 0);
    assert_int_equal(w.n, 7);
    for (int i = 0; i < 7; i++) {
        char want[CONFIG_ERR_MAX];
        size_t len = strcspn(k8s_env[i], "=");
        snprintf(want, sizeof(want), "unknown environment variable %.*s ignored "
                 "(it looks like a Kubernetes service link)", (int)len, k8s_env[i]);
        assert_warning(&w, i, want);
    }
    assert_int_equal(c->port, 8000);
}

/* PLAZA_PORT=tcp://... is the link of a Service named "plaza": an error
 * naming the cause, not "expected an integer". */
static void test_env_service_link_port(void **state) {
    config *c = *state;
    char *env[] = {"PLAZA_SERVICE_HOST=10.0.0.1", "PLAZA_PORT=tcp://10.0.0.1:8000", NULL};
    assert_env_error(c, env,
        "PLAZA_PORT=\"tcp://10.0.0.1:8000\" looks like a Kubernetes service link, "
        "not a port: name the Service something other than \"plaza\", or set "
        "enableServiceLinks: false in the pod spec, or set PLAZA_PORT in the "
        "container's env");
    char *udp[] = {"PLAZA_PORT=udp://[fd00::1]:53", NULL};
    assert_env_error(c, udp, "PLAZA_PORT=\"udp://[fd00::1]:53\" looks like a "
                             "Kubernetes service link");
    char *reuse[] = {"PLAZA_REUSE_PORT=tcp://10.0.0.2:80", NULL}; /* "plaza-reuse" */
    assert_env_error(c, reuse, "PLAZA_REUSE_PORT=\"tcp://10.0.0.2:80\" looks like a "
                               "Kubernetes service link, not a reuse_port: name the "
                               "Service something other than \"plaza-reuse\"");
    assert_int_equal(c->port, 8000);
}

/* More warnings than CONFIG_WARN_MAX are counted, not kept. */
static void test_env_warnings_overflow(void **state) {
    config *c = *state;
    char *env[CONFIG_WARN_MAX + 4];
    char names[CONFIG_WARN_MAX + 3][32];
    config_warnings w = {0};
    for (int i = 0; i < CONFIG_WARN_MAX + 3; i++) {
        snprintf(names[i], sizeof(names[i]), "PLAZA_X%dX=1", i);
        env[i] = names[i];
    }
    env[CONFIG_WARN_MAX + 3] = NULL;
    assert_int_equal(config_load_env(c, env, &w, NULL), 0);
    assert_int_equal(w.n, CONFIG_WARN_MAX);
    assert_int_equal(w.dropped, 3);
    assert_warning(&w, CONFIG_WARN_MAX - 1, "unknown environment variable "
                   "PLAZA_X15X ignored");
    assert_int_equal(config_load_env(c, env, NULL, NULL), 0); /* warn may be NULL */
}

/* api.insecure makes the API ignore api.key: valid, but said. */
static void test_lint_api_insecure_with_key(void **state) {
    config *c = *state;
    char err[CONFIG_ERR_MAX] = "";
    config_warnings w = {0};
    config_lint(c, &w);
    assert_int_equal(config_set(c, "api.insecure", "true", err), 0);
    config_lint(c, &w);
    assert_int_equal(config_set(c, "api.insecure", "false", err), 0);
    assert_int_equal(config_set(c, "api.key", "k", err), 0);
    config_lint(c, &w);
    assert_int_equal(w.n, 0);
    assert_int_equal(config_set(c, "api.insecure", "true", err), 0);
    assert_int_equal(config_validate(c, err), 0);
    config_lint(c, &w);
    assert_int_equal(w.n, 1);
    assert_warning(&w, 0, "keys \"api.insecure\" and \"api.key\" are both set: the "
                          "API accepts every call without a key, and api.key is ignored");
    config_lint(c, NULL);
}

static void test_set_overrides_and_unknown(void **state) {
    config *c = *state;
    char err[CONFIG_ERR_MAX] = "";
    assert_int_equal(config_set(c, "http.read_timeout_ms", "250", err), 0);
    assert_int_equal(c->http_read_timeout_ms, 250);
    assert_int_equal(config_set(c, "web_root", "/srv/www", err), 0);
    assert_string_equal(c->web_root, "/srv/www");
    assert_int_equal(config_set(c, "log_format", "JSON", err), 0);
    assert_string_equal(c->log_format, "json");
    assert_int_equal(config_set(c, "tls.cert", "", err), 0);
    assert_string_equal(c->tls_cert, "");
    assert_set_error(c, "prot", "1", "unknown key \"prot\" (did you mean \"port\"?)");
    assert_set_error(c, "http", "1", "unknown key \"http\"");
    assert_set_error(c, "nonsense.key", "1", "unknown key \"nonsense.key\"");
}

static void test_unknown_keys_in_json(void **state) {
    config *c = *state;
    assert_json_error(c, "{\"port\": 1, \"bogus\": 1}", "unknown key \"bogus\"");
    assert_json_error(c, "{\"prot\": 1}", "unknown key \"prot\" (did you mean \"port\"?)");
    assert_json_error(c, "{\"websocket\": {\"compresion\": true}}",
                      "unknown key \"websocket.compresion\" "
                      "(did you mean \"websocket.compression\"?)");
    assert_json_error(c, "{\"htp\": {\"max_headers\": 1}}", "unknown key \"htp\"");
    assert_json_error(c, "{\"http\": {\"tls\": {}}}", "unknown key \"http.tls\"");
    assert_json_error(c, "{\"http\": 5}", "key \"http\": expected an object");
    assert_json_error(c, "{\"http.max_headers\": 5}",
                      "key \"http.max_headers\": write sections as nested objects");
    assert_int_equal(c->port, 8000); /* the failed loads applied nothing */
}

static void test_wrong_types(void **state) {
    config *c = *state;
    assert_json_error(c, "{\"port\": \"abc\"}",
                      "key \"port\": expected an integer between 0 and 65535, got \"abc\"");
    assert_json_error(c, "{\"port\": 80.5}", "key \"port\": expected an integer");
    assert_json_error(c, "{\"port\": null}", "got null");
    assert_json_error(c, "{\"websocket\": {\"compression\": 1}}",
                      "key \"websocket.compression\": expected true or false, got 1");
    assert_json_error(c, "{\"host\": 5}", "key \"host\": expected a non-empty string, got 5");
    assert_json_error(c, "{\"log_level\": \"verbose\"}",
                      "key \"log_level\": expected one of debug, info, warn, error, "
                      "got \"verbose\"");
    assert_json_error(c, "{\"log_format\": \"xml\"}",
                      "key \"log_format\": expected one of text, json");
    assert_json_error(c, "{\"websocket\": {\"allowed_origins\": \"https://a\"}}",
                      "key \"websocket.allowed_origins\": expected an array of "
                      "non-empty strings");
    assert_json_error(c, "{\"websocket\": {\"allowed_origins\": [\"https://a\", 7]}}",
                      "key \"websocket.allowed_origins[1]\": expected a non-empty "
                      "string, got 7");
    assert_set_error(c, "workers", "two",
                     "key \"workers\": expected an integer between 0 and 256, got \"two\"");
    assert_set_error(c, "log_level", "trace", "key \"log_level\": expected one of");
    assert_set_error(c, "host", "", "key \"host\": expected a non-empty string, got \"\"");
}

static void test_int_syntax(void **state) {
    config *c = *state;
    static const char *const bad[] = {
        "", " 80", "80 ", "+80", "0x50", "80x", "8e3", "-", "--1",
        "99999999999999999999999", "1.0",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_set_error(c, "port", bad[i], "key \"port\": expected an integer");
    assert_int_equal(config_set(c, "port", "080", NULL), 0);
    assert_int_equal(c->port, 80);
    assert_int_equal(config_set(c, "port", "0", NULL), 0);
    assert_int_equal(c->port, 0);
}

static void test_out_of_range(void **state) {
    config *c = *state;
    assert_json_error(c, "{\"port\": 70000}",
                      "key \"port\": expected an integer between 0 and 65535, got 70000");
    assert_json_error(c, "{\"port\": -1}", "got -1");
    assert_json_error(c, "{\"port\": 99999999999999999999}", "invalid JSON");
    assert_json_error(c, "{\"workers\": 257}", "between 0 and 256");
    assert_json_error(c, "{\"websocket\": {\"compression_level\": 0}}",
                      "key \"websocket.compression_level\": expected an integer "
                      "between 1 and 9, got 0");
    assert_json_error(c, "{\"http\": {\"max_header_bytes\": 100}}",
                      "key \"http.max_header_bytes\": expected an integer >= 256, got 100");
    assert_json_error(c, "{\"http\": {\"read_timeout_ms\": 0}}", ">= 1, got 0");
    assert_json_error(c, "{\"max_connections\": 2147483648}", ">= 0, got 2147483648");
    assert_set_error(c, "websocket.compression_level", "10", "between 1 and 9, got \"10\"");
    assert_set_error(c, "shutdown_timeout_ms", "-5", ">= 0, got \"-5\"");
    assert_set_error(c, "port", "65536", "between 0 and 65535");
    assert_int_equal(config_set(c, "port", "65535", NULL), 0);
    assert_int_equal(config_set(c, "workers", "256", NULL), 0);
    assert_int_equal(config_set(c, "websocket.ping_interval_ms", "0", NULL), 0);
    assert_int_equal(c->ws_ping_interval_ms, 0);
}

static void test_invalid_json(void **state) {
    config *c = *state;
    assert_json_error(c, "{\n  \"port\": 80,\n  \"workers\": 2,\n}\n",
                      "invalid JSON at line 4");
    assert_json_error(c, "{\"port\": 80", "invalid JSON at line 1");
    assert_json_error(c, "", "invalid JSON");
    assert_json_error(c, "{\"port\": 80, \"port\": 81}", "duplicate");
    assert_json_error(c, "[1, 2]", "must be a JSON object");
    assert_json_error(c, "8000", "must be a JSON object");
    assert_int_equal(c->port, 8000);
}

static void test_failed_load_changes_nothing(void **state) {
    config *c = *state;
    assert_int_equal(config_set(c, "websocket.allowed_origins", "https://x", NULL), 0);
    assert_json_error(c, "{\"port\": 1, \"host\": \"::\", \"websocket\": "
                         "{\"allowed_origins\": [\"https://y\"], \"bad\": 1}}",
                      "unknown key \"websocket.bad\"");
    assert_int_equal(c->port, 8000);
    assert_string_equal(c->host, "0.0.0.0");
    assert_int_equal(c->ws_nallowed_origins, 1);
    assert_string_equal(c->ws_allowed_origins[0], "https://x");
}

static void test_arrays_from_json(void **state) {
    config *c = *state;
    assert_int_equal(load(c, "{\"websocket\": {\"allowed_origins\": "
                             "[\"https://a.example\", \"http://localhost:8000\"]}}", NULL), 0);
    assert_int_equal(c->ws_nallowed_origins, 2);
    assert_string_equal(c->ws_allowed_origins[0], "https://a.example");
    assert_string_equal(c->ws_allowed_origins[1], "http://localhost:8000");
    assert_null(c->ws_allowed_origins[2]);

    assert_int_equal(load(c, "{\"websocket\": {\"allowed_origins\": []}}", NULL), 0);
    assert_int_equal(c->ws_nallowed_origins, 0);
    assert_null(c->ws_allowed_origins);
    assert_json_error(c, "{\"websocket\": {\"allowed_origins\": [\"\"]}}",
                      "key \"websocket.allowed_origins[0]\": expected a non-empty "
                      "string, got \"\"");
}

static void test_arrays_from_env(void **state) {
    config *c = *state;
    char *env[] = {"PLAZA_WEBSOCKET_ALLOWED_ORIGINS= https://a , https://b,,", NULL};
    assert_int_equal(config_load_env(c, env, NULL, NULL), 0);
    assert_int_equal(c->ws_nallowed_origins, 2);
    assert_string_equal(c->ws_allowed_origins[0], "https://a");
    assert_string_equal(c->ws_allowed_origins[1], "https://b");
    assert_null(c->ws_allowed_origins[2]);

    char *none[] = {"PLAZA_WEBSOCKET_ALLOWED_ORIGINS=", NULL};
    assert_int_equal(config_load_env(c, none, NULL, NULL), 0);
    assert_int_equal(c->ws_nallowed_origins, 0);
    assert_null(c->ws_allowed_origins);
}

static void test_bools(void **state) {
    config *c = *state;
    static const char *const yes[] = {"true", "1", "yes", "on", "TRUE", "Yes", "ON"};
    static const char *const no[] = {"false", "0", "no", "off", "False", "NO", "Off"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        assert_int_equal(config_set(c, "websocket.compression", "false", NULL), 0);
        assert_int_equal(config_set(c, "websocket.compression", yes[i], NULL), 0);
        assert_int_equal(c->ws_compression, 1);
        assert_int_equal(config_set(c, "websocket.compression", no[i], NULL), 0);
        assert_int_equal(c->ws_compression, 0);
    }
    assert_set_error(c, "debug_echo", "maybe",
                     "key \"debug_echo\": expected a boolean (true/false, yes/no, "
                     "on/off, 1/0), got \"maybe\"");
    assert_set_error(c, "debug_echo", "2", "expected a boolean");
    assert_set_error(c, "debug_echo", "", "expected a boolean");
    assert_int_equal(load(c, "{\"debug_echo\": true}", NULL), 0);
    assert_int_equal(c->debug_echo, 1);
    assert_int_equal(load(c, "{\"debug_echo\": false}", NULL), 0);
    assert_int_equal(c->debug_echo, 0);
    assert_json_error(c, "{\"debug_echo\": \"yes\"}", "expected true or false, got \"yes\"");
}

static void test_tls_validate(void **state) {
    config *c = *state;
    char err[CONFIG_ERR_MAX] = "";
    assert_int_equal(config_validate(c, err), 0); /* neither */
    assert_int_equal(config_set(c, "tls.cert", "cert.pem", NULL), 0);
    assert_int_equal(config_validate(c, err), -1);
    assert_non_null(strstr(err, "\"tls.cert\" and \"tls.key\" must be set together"));
    assert_non_null(strstr(err, "\"tls.key\" is empty"));
    assert_int_equal(config_set(c, "tls.key", "key.pem", NULL), 0);
    assert_int_equal(config_validate(c, err), 0); /* both */
    assert_int_equal(config_set(c, "tls.cert", "", NULL), 0);
    assert_int_equal(config_validate(c, err), -1);
    assert_non_null(strstr(err, "\"tls.cert\" is empty"));
}

static void test_validate_rechecks_fields(void **state) {
    config *c = *state;
    char err[CONFIG_ERR_MAX] = "";
    c->port = -1;
    assert_int_equal(config_validate(c, err), -1);
    assert_non_null(strstr(err, "key \"port\""));
    c->port = 8000;
    c->ws_compression_level = 12;
    assert_int_equal(config_validate(c, err), -1);
    assert_non_null(strstr(err, "key \"websocket.compression_level\""));
}

static void test_err_may_be_null(void **state) {
    config *c = *state;
    assert_int_equal(config_set(c, "nope", "1", NULL), -1);
    assert_int_equal(load(c, "{", NULL), -1);
    char *env[] = {"PLAZA_PORT=x", NULL};
    assert_int_equal(config_load_env(c, env, NULL, NULL), -1);
}

/* Counts lines in what fn writes, and checks each key appears in it. */
static void check_listing(void (*fn)(FILE *), int header_lines) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    fn(f);
    fclose(f);
    int lines = 0;
    for (char *p = buf; *p; p++) lines += *p == '\n';
    assert_int_equal(lines, NKEYS + header_lines);
    assert_non_null(strstr(buf, "websocket.allowed_origins"));
    assert_non_null(strstr(buf, "http.max_header_bytes"));
    assert_non_null(strstr(buf, "tls.key"));
    assert_non_null(strstr(buf, "channel.options.force_recovery"));
    assert_non_null(strstr(buf, "channel.namespaces"));
    assert_non_null(strstr(buf, "client.allow_anonymous_connect_without_token"));
    if (header_lines) {
        assert_non_null(strstr(buf, "| `port` | `PLAZA_PORT` | integer 0..65535 | `8000` |"));
        assert_non_null(strstr(buf, "`PLAZA_WEBSOCKET_ALLOWED_ORIGINS`"));
        assert_non_null(strstr(buf, "| debug/info/warn/error | `\"info\"` |"));
        assert_non_null(strstr(buf, "| `channel.namespaces` | `PLAZA_CHANNEL_NAMESPACES` | "
                                    "array of namespaces | `[]` |"));
        assert_non_null(strstr(buf, "| `channel.options.history_size` | "
                                    "`PLAZA_CHANNEL_OPTIONS_HISTORY_SIZE` | integer 0..1000000 |"));
    }
    free(buf);
}

static void test_print_keys(void **state) {
    (void)state;
    check_listing(config_print_keys, 0);
    check_listing(config_write_markdown, 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_defaults),
        T(test_defaults_client_channel_api),
        T(test_client_and_api_keys),
        T(test_engine_and_event_limits),
        T(test_ranges_fit_their_use),
        T(test_channel_max_length_mirrored),
        T(test_channel_options),
        T(test_top_force_recovery_needs_history),
        T(test_namespaces_from_json),
        T(test_namespaces_from_env_and_set),
        T(test_namespace_errors),
        T(test_map_namespaces),
        T(test_board_namespaces),
        T(test_validate_rechecks_namespaces),
        T(test_namespaces_deep_copy),
        T(test_free_twice),
        T(test_json_overrides),
        T(test_empty_object_and_sections),
        T(test_file_overrides),
        T(test_file_errors_name_the_file),
        T(test_precedence_file_env_set),
        T(test_env_names),
        T(test_env_errors),
        T(test_env_unknown_warns),
        T(test_env_service_links_warn),
        T(test_env_service_link_port),
        T(test_env_warnings_overflow),
        T(test_lint_api_insecure_with_key),
        T(test_set_overrides_and_unknown),
        T(test_unknown_keys_in_json),
        T(test_wrong_types),
        T(test_int_syntax),
        T(test_out_of_range),
        T(test_invalid_json),
        T(test_failed_load_changes_nothing),
        T(test_arrays_from_json),
        T(test_arrays_from_env),
        T(test_bools),
        T(test_tls_validate),
        T(test_validate_rechecks_fields),
        T(test_err_may_be_null),
        T(test_print_keys),
#undef T
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
