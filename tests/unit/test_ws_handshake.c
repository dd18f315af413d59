/* Unit tests for ws_handshake (RFC 6455 4.2.1) and http_util. Requests are
 * built by hand: a valid upgrade request, then one header changed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "net/http_reader.h"
#include "net/ws_handshake.h"

#define RFC_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define RFC_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

#define MAX_TEST_HEADERS 16

typedef struct test_req {
    http_request req;
    http_header hdr[MAX_TEST_HEADERS];
} test_req;

static void req_add(test_req *t, const char *name, const char *value) {
    http_header *h;

    assert_true(t->req.nheaders < MAX_TEST_HEADERS);
    h = &t->hdr[t->req.nheaders++];
    h->name = name;
    h->value = value;
    h->name_len = strlen(name);
    h->value_len = strlen(value);
}

/* Replaces the first header called name (value NULL: removes it). */
static void req_set(test_req *t, const char *name, const char *value) {
    for (int i = 0; i < t->req.nheaders; i++) {
        if (strcmp(t->hdr[i].name, name) != 0) continue;
        if (value == NULL) {
            memmove(&t->hdr[i], &t->hdr[i + 1],
                    (size_t)(t->req.nheaders - i - 1) * sizeof t->hdr[0]);
            t->req.nheaders--;
        } else {
            t->hdr[i].value = value;
            t->hdr[i].value_len = strlen(value);
        }
        return;
    }
    if (value != NULL) req_add(t, name, value);
}

/* GET /ws HTTP/1.1 with the RFC 6455 1.3 example headers. */
static void req_base(test_req *t) {
    memset(t, 0, sizeof *t);
    t->req.method = "GET";
    t->req.target = t->req.path = "/ws";
    t->req.query = "";
    t->req.target_len = t->req.path_len = 3;
    t->req.version_major = 1;
    t->req.version_minor = 1;
    t->req.headers = t->hdr;
    t->req.keep_alive = 1;
    t->req.upgrade = 1;
    req_add(t, "Host", "server.example.com");
    req_add(t, "Upgrade", "websocket");
    req_add(t, "Connection", "Upgrade");
    req_add(t, "Sec-WebSocket-Key", RFC_KEY);
    req_add(t, "Sec-WebSocket-Version", "13");
}

static const ws_handshake_opts no_opts = {0};

static int check(const test_req *t, const ws_handshake_opts *o,
                 ws_handshake_result *res) {
    int status = ws_handshake_check(&t->req, o, res);

    assert_int_equal(status, res->status);
    if (status == 101)
        assert_null(res->error);
    else
        assert_non_null(res->error);
    return status;
}

/* Status for the base request with one header set (NULL: removed). */
static int status_with(const char *name, const char *value) {
    test_req t;
    ws_handshake_result res;

    req_base(&t);
    req_set(&t, name, value);
    return check(&t, &no_opts, &res);
}

/* ---- http_util ------------------------------------------------------- */

static void test_header_lookup(void **state) {
    test_req t;
    (void)state;

    req_base(&t);
    req_add(&t, "connection", "second");
    assert_string_equal(http_request_header(&t.req, "CONNECTION")->value,
                        "Upgrade");
    assert_string_equal(http_request_header(&t.req, "host")->value,
                        "server.example.com");
    assert_null(http_request_header(&t.req, "Origin"));
    assert_null(http_request_header(&t.req, "Hos"));
}

static void test_list_has_token(void **state) {
    (void)state;
    assert_true(http_list_has_token("Upgrade", "upgrade"));
    assert_true(http_list_has_token("keep-alive, Upgrade", "upgrade"));
    assert_true(http_list_has_token("keep-alive,Upgrade", "UPGRADE"));
    assert_true(http_list_has_token(" \tupgrade\t , x", "upgrade"));
    assert_true(http_list_has_token(",,a,,b,", "b"));
    assert_false(http_list_has_token("keep-alive", "upgrade"));
    assert_false(http_list_has_token("upgrades, xupgrade", "upgrade"));
    assert_false(http_list_has_token("up grade", "upgrade"));
    assert_false(http_list_has_token("", "upgrade"));
    assert_false(http_list_has_token(" , ", "upgrade"));
    assert_false(http_list_has_token("upgrade", ""));
}

/* ---- accept value and response --------------------------------------- */

static void test_accept_rfc_example(void **state) {
    char out[29];
    (void)state;

    ws_handshake_accept(RFC_KEY, strlen(RFC_KEY), out);
    assert_string_equal(out, RFC_ACCEPT);
}

static void test_valid_request(void **state) {
    test_req t;
    ws_handshake_result res;
    (void)state;

    req_base(&t);
    assert_int_equal(check(&t, &no_opts, &res), 101);
    assert_string_equal(res.accept, RFC_ACCEPT);
    assert_null(res.subprotocol);
    assert_int_equal(res.deflate.enabled, 0);
}

static void test_response_plain(void **state) {
    static const char want[] =
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n"
        "\r\n";
    test_req t;
    ws_handshake_result res;
    char out[512];
    size_t len = sizeof want - 1;
    (void)state;

    req_base(&t);
    assert_int_equal(check(&t, &no_opts, &res), 101);
    assert_int_equal(ws_handshake_response(&res, out, sizeof out), len);
    assert_string_equal(out, want);
    /* Too small, down to nothing: 0, never a partial response. */
    for (size_t cap = 0; cap <= len; cap++)
        assert_int_equal(ws_handshake_response(&res, out, cap), 0);
    assert_int_equal(ws_handshake_response(&res, out, len + 1), len);
}

static void test_response_full(void **state) {
    static const char *const protos[] = {"chat", "superchat"};
    ws_handshake_opts o = {.deflate_enabled = 1, .subprotocols = protos,
                           .nsubprotocols = 2};
    test_req t;
    ws_handshake_result res;
    char out[512];
    (void)state;

    req_base(&t);
    req_add(&t, "Sec-WebSocket-Protocol", "superchat, chat");
    req_add(&t, "Sec-WebSocket-Extensions",
            "permessage-deflate; client_max_window_bits");
    assert_int_equal(check(&t, &o, &res), 101);
    assert_true(ws_handshake_response(&res, out, sizeof out) > 0);
    assert_string_equal(out,
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n"
        "Sec-WebSocket-Protocol: chat\r\n"
        "Sec-WebSocket-Extensions: permessage-deflate; "
        "server_no_context_takeover\r\n"
        "\r\n");
}

static void test_response_for_failure_is_empty(void **state) {
    test_req t;
    ws_handshake_result res;
    char out[512];
    (void)state;

    req_base(&t);
    req_set(&t, "Sec-WebSocket-Version", "8");
    assert_int_equal(check(&t, &no_opts, &res), 426);
    assert_int_equal(ws_handshake_response(&res, out, sizeof out), 0);
}

/* ---- request line and upgrade headers --------------------------------- */

static void test_method(void **state) {
    test_req t;
    ws_handshake_result res;
    (void)state;

    req_base(&t);
    t.req.method = "POST";
    assert_int_equal(check(&t, &no_opts, &res), 400);
    t.req.method = "get";             /* methods are case-sensitive */
    assert_int_equal(check(&t, &no_opts, &res), 400);
}

static void test_http_version(void **state) {
    test_req t;
    ws_handshake_result res;
    (void)state;

    req_base(&t);
    t.req.version_minor = 0;
    assert_int_equal(check(&t, &no_opts, &res), 400);
    t.req.version_major = 0;
    t.req.version_minor = 9;
    assert_int_equal(check(&t, &no_opts, &res), 400);
    t.req.version_major = 2;          /* "1.1 or higher" */
    t.req.version_minor = 0;
    assert_int_equal(check(&t, &no_opts, &res), 101);
    t.req.version_major = 1;
    t.req.version_minor = 2;
    assert_int_equal(check(&t, &no_opts, &res), 101);
}

static void test_host(void **state) {
    test_req t;
    ws_handshake_result res;
    (void)state;

    assert_int_equal(status_with("Host", NULL), 400);
    req_base(&t);
    req_add(&t, "HOST", "other.example.com");
    assert_int_equal(check(&t, &no_opts, &res), 400);
}

static void test_upgrade_header(void **state) {
    (void)state;
    assert_int_equal(status_with("Upgrade", NULL), 400);
    assert_int_equal(status_with("Upgrade", "foo"), 400);
    assert_int_equal(status_with("Upgrade", "websockets"), 400);
    assert_int_equal(status_with("Upgrade", "h2c"), 400);
    assert_int_equal(status_with("Upgrade", "WebSocket"), 101);
    assert_int_equal(status_with("Upgrade", "foo, websocket"), 101);
}

static void test_connection_header(void **state) {
    test_req t;
    ws_handshake_result res;
    (void)state;

    assert_int_equal(status_with("Connection", NULL), 400);
    assert_int_equal(status_with("Connection", "keep-alive"), 400);
    assert_int_equal(status_with("Connection", "keep-alive, Upgrade"), 101);
    assert_int_equal(status_with("Connection", "upgrade"), 101);
    assert_int_equal(status_with("Connection", "Upgrade,keep-alive"), 101);
    /* The list split over two header lines. */
    req_base(&t);
    req_set(&t, "Connection", "keep-alive");
    req_add(&t, "Connection", "Upgrade");
    assert_int_equal(check(&t, &no_opts, &res), 101);
}

/* ---- Sec-WebSocket-Version -------------------------------------------- */

/* Missing and unsupported versions both get 426 (see ws_handshake.c): a
 * client without the header speaks a pre-RFC draft, and 426 plus
 * "Sec-WebSocket-Version: 13" tells it what we speak. */
static void test_version(void **state) {
    test_req t;
    ws_handshake_result res;
    (void)state;

    req_base(&t);
    req_set(&t, "Sec-WebSocket-Version", "8");
    assert_int_equal(check(&t, &no_opts, &res), 426);
    assert_string_equal(res.error,
                        "unsupported WebSocket version; supported: 13");
    assert_int_equal(status_with("Sec-WebSocket-Version", NULL), 426);
    assert_int_equal(status_with("Sec-WebSocket-Version", "14"), 426);
    assert_int_equal(status_with("Sec-WebSocket-Version", "013"), 426);
    assert_int_equal(status_with("Sec-WebSocket-Version", "13, 8"), 426);
    assert_int_equal(status_with("Sec-WebSocket-Version", ""), 426);
    /* The header must not appear twice in a request (RFC 6455 11.3.5). */
    req_base(&t);
    req_add(&t, "Sec-WebSocket-Version", "13");
    assert_int_equal(check(&t, &no_opts, &res), 400);
}

/* ---- Sec-WebSocket-Key ------------------------------------------------ */

static void test_key_lengths(void **state) {
    (void)state;
    /* 15 bytes: 20 characters, no padding. */
    assert_int_equal(status_with("Sec-WebSocket-Key",
                                 "AAECAwQFBgcICQoLDA0O"), 400);
    /* 17 bytes: 24 characters but a single '='. */
    assert_int_equal(status_with("Sec-WebSocket-Key",
                                 "AAECAwQFBgcICQoLDA0ODxA="), 400);
    /* 18 bytes: 24 characters, no padding. */
    assert_int_equal(status_with("Sec-WebSocket-Key",
                                 "AAECAwQFBgcICQoLDA0ODxAR"), 400);
    /* 16 bytes, canonical. */
    assert_int_equal(status_with("Sec-WebSocket-Key",
                                 "AAECAwQFBgcICQoLDA0ODw=="), 101);
    assert_int_equal(status_with("Sec-WebSocket-Key", ""), 400);
    assert_int_equal(status_with("Sec-WebSocket-Key", NULL), 400);
}

static void test_key_base64(void **state) {
    (void)state;
    assert_int_equal(status_with("Sec-WebSocket-Key",
                                 "dGhlIHNhbXBsZSBub25jZQ!="), 400);
    assert_int_equal(status_with("Sec-WebSocket-Key",
                                 "dGhlIHNhbXBsZSBub25j*Q=="), 400);
    assert_int_equal(status_with("Sec-WebSocket-Key",
                                 "dGhlIHNhbXBsZSBu b25jZQ="), 400);
    assert_int_equal(status_with("Sec-WebSocket-Key",
                                 "dGhlIHNhbXBsZSBub25jZ==="), 400);
    assert_int_equal(status_with("Sec-WebSocket-Key",
                                 "dGhlIHNhbXBsZSBub25jZQ-_"), 400);
    assert_int_equal(status_with("Sec-WebSocket-Key",
                                 "dGhlIHNhbXBsZSBub25jZQ=A"), 400);
    assert_int_equal(status_with("Sec-WebSocket-Key",
                                 "dGhlIHNhbXBsZSBub25jZQ==="), 400);
    /* URL-safe alphabet is not base64 here. */
    assert_int_equal(status_with("Sec-WebSocket-Key",
                                 "-_-_-_-_-_-_-_-_-_-_-_=="), 400);
    /* RFC 6455 4.1's own example has non-zero unused bits: accepted. */
    assert_int_equal(status_with("Sec-WebSocket-Key",
                                 "AQIDBAUGBwgJCgsMDQ4PEC=="), 101);
}

static void test_key_duplicate(void **state) {
    test_req t;
    ws_handshake_result res;
    (void)state;

    req_base(&t);
    req_add(&t, "sec-websocket-key", RFC_KEY);
    assert_int_equal(check(&t, &no_opts, &res), 400);
}

/* ---- Origin ----------------------------------------------------------- */

static void test_origin(void **state) {
    static const char *const allowed[] = {"https://a.example",
                                          "http://localhost:8080"};
    ws_handshake_opts o = {.origins = allowed, .norigins = 2};
    test_req t;
    ws_handshake_result res;
    (void)state;

    req_base(&t);
    assert_int_equal(check(&t, &o, &res), 101);          /* missing */
    req_add(&t, "Origin", "https://a.example");
    assert_int_equal(check(&t, &o, &res), 101);
    req_set(&t, "Origin", "HTTP://LOCALHOST:8080");
    assert_int_equal(check(&t, &o, &res), 101);
    req_set(&t, "Origin", "https://evil.example");
    assert_int_equal(check(&t, &o, &res), 403);
    req_set(&t, "Origin", "https://a.example.evil");
    assert_int_equal(check(&t, &o, &res), 403);
    req_set(&t, "Origin", "https://a.exampl");
    assert_int_equal(check(&t, &o, &res), 403);
    req_set(&t, "Origin", "null");
    assert_int_equal(check(&t, &o, &res), 403);
    /* No allow-list: any origin. */
    assert_int_equal(check(&t, &no_opts, &res), 101);
    /* Two Origin headers with an allow-list: refused. */
    req_set(&t, "Origin", "https://a.example");
    req_add(&t, "Origin", "https://evil.example");
    assert_int_equal(check(&t, &o, &res), 403);
}

/* ---- Subprotocols ----------------------------------------------------- */

static const char *pick(const char *const *ours, int n, const char *offer1,
                        const char *offer2) {
    ws_handshake_opts o = {.subprotocols = ours, .nsubprotocols = n};
    test_req t;
    ws_handshake_result res;

    req_base(&t);
    if (offer1) req_add(&t, "Sec-WebSocket-Protocol", offer1);
    if (offer2) req_add(&t, "Sec-WebSocket-Protocol", offer2);
    assert_int_equal(check(&t, &o, &res), 101);
    return res.subprotocol;
}

static void test_subprotocol(void **state) {
    static const char *const ours[] = {"v2.plaza", "v1.plaza"};
    char out[512];
    test_req t;
    ws_handshake_result res;
    ws_handshake_opts o = {.subprotocols = ours, .nsubprotocols = 2};
    (void)state;

    /* Not offered: none, and no header in the response. */
    assert_null(pick(ours, 2, NULL, NULL));
    req_base(&t);
    assert_int_equal(check(&t, &o, &res), 101);
    assert_true(ws_handshake_response(&res, out, sizeof out) > 0);
    assert_null(strstr(out, "Sec-WebSocket-Protocol"));
    /* Our preference wins over the client's order. */
    assert_string_equal(pick(ours, 2, "v1.plaza, v2.plaza", NULL),
                        "v2.plaza");
    assert_string_equal(pick(ours, 2, "v1.plaza", NULL), "v1.plaza");
    assert_string_equal(pick(ours, 2, "x, v1.plaza ,y", NULL), "v1.plaza");
    /* Offered over two header lines. */
    assert_string_equal(pick(ours, 2, "chat", "v2.plaza"), "v2.plaza");
    /* Nothing in common, or a different spelling: none, not an error. */
    assert_null(pick(ours, 2, "chat, superchat", NULL));
    assert_null(pick(ours, 2, "V2.PLAZA", NULL));
    assert_null(pick(ours, 2, "v2.plaz, v2.plazaa", NULL));
    assert_null(pick(ours, 2, "", NULL));
    /* We support none: never echo the client's. */
    assert_null(pick(NULL, 0, "v2.plaza", NULL));
}

/* ---- permessage-deflate through the handshake ------------------------- */

static void test_deflate_offer(void **state) {
    ws_handshake_opts on = {.deflate_enabled = 1};
    test_req t;
    ws_handshake_result res;
    char out[512];
    (void)state;

    req_base(&t);
    req_add(&t, "Sec-WebSocket-Extensions", "permessage-deflate");
    assert_int_equal(check(&t, &no_opts, &res), 101);    /* disabled */
    assert_int_equal(res.deflate.enabled, 0);
    assert_int_equal(check(&t, &on, &res), 101);
    assert_int_equal(res.deflate.enabled, 1);

    /* Offers over several lines: the first line has only bad offers. */
    req_base(&t);
    req_add(&t, "Sec-WebSocket-Extensions",
            "foo, permessage-deflate; server_max_window_bits=99");
    req_add(&t, "Sec-WebSocket-Extensions",
            "permessage-deflate; client_max_window_bits=10; "
            "client_no_context_takeover");
    assert_int_equal(check(&t, &on, &res), 101);
    assert_int_equal(res.deflate.enabled, 1);
    assert_int_equal(res.deflate.client_max_window_bits, 10);
    assert_int_equal(res.deflate.client_no_context_takeover, 1);
    assert_true(ws_handshake_response(&res, out, sizeof out) > 0);
    assert_non_null(strstr(out,
        "Sec-WebSocket-Extensions: permessage-deflate; "
        "server_no_context_takeover; client_no_context_takeover; "
        "client_max_window_bits=10\r\n"));

    /* No acceptable offer: connection goes on uncompressed. */
    req_base(&t);
    req_add(&t, "Sec-WebSocket-Extensions", "x-webkit-deflate-frame");
    assert_int_equal(check(&t, &on, &res), 101);
    assert_int_equal(res.deflate.enabled, 0);
    assert_true(ws_handshake_response(&res, out, sizeof out) > 0);
    assert_null(strstr(out, "Sec-WebSocket-Extensions"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_lookup),
        cmocka_unit_test(test_list_has_token),
        cmocka_unit_test(test_accept_rfc_example),
        cmocka_unit_test(test_valid_request),
        cmocka_unit_test(test_response_plain),
        cmocka_unit_test(test_response_full),
        cmocka_unit_test(test_response_for_failure_is_empty),
        cmocka_unit_test(test_method),
        cmocka_unit_test(test_http_version),
        cmocka_unit_test(test_host),
        cmocka_unit_test(test_upgrade_header),
        cmocka_unit_test(test_connection_header),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_key_lengths),
        cmocka_unit_test(test_key_base64),
        cmocka_unit_test(test_key_duplicate),
        cmocka_unit_test(test_origin),
        cmocka_unit_test(test_subprotocol),
        cmocka_unit_test(test_deflate_offer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
