/* Unit tests for the apps' small pure pieces: the path parsers of the
 * auction and spaces HTTP faces, and the label check of names and titles. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "apps/app_http.h"
#include "apps/auction.h"
#include "apps/spaces.h"

static void test_auction_paths(void **state) {
    (void)state;
    char ch[256], lot[65];
    assert_int_equal(auction_parse_path("/auctions/auction:main/lots", ch, sizeof(ch), lot, sizeof(lot)), 0);
    assert_string_equal(ch, "auction:main");
    assert_string_equal(lot, "");
    assert_int_equal(auction_parse_path("/auctions/a:b/lots/lot-1.x_y/bids", ch, sizeof(ch), lot, sizeof(lot)), 0);
    assert_string_equal(ch, "a:b");
    assert_string_equal(lot, "lot-1.x_y");
    const char *bad[] = {
        "/auctions//lots", "/auctions/a:b", "/auctions/a:b/lot", "/auctions/a:b/lotsx",
        "/auctions/a:b/lots/", "/auctions/a:b/lots//bids", "/auctions/a:b/lots/x/bid",
        "/auctions/a:b/lots/x/bids/", "/auctions/a:b/lots/a b/bids", "/auctions/a:b/lots/x/y/bids",
        "/auction/a:b/lots", "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(auction_parse_path(bad[i], ch, sizeof(ch), lot, sizeof(lot)), -1);
    char longlot[120] = "/auctions/a:b/lots/";
    memset(longlot + strlen(longlot), 'l', 65);
    strcat(longlot, "/bids");
    assert_int_equal(auction_parse_path(longlot, ch, sizeof(ch), lot, sizeof(lot)), -1);
    char small[4];
    assert_int_equal(auction_parse_path("/auctions/abcd/lots", small, sizeof(small), lot, sizeof(lot)), -1);
}

static void test_spaces_paths(void **state) {
    (void)state;
    char space[SPACES_NAME_MAX + 1], user[SPACES_NAME_MAX + 1];
    const char *err = NULL;
    assert_int_equal(spaces_parse_path("/v1/spaces/lobby/users", space, user, &err), 0);
    assert_string_equal(space, "lobby");
    assert_string_equal(user, "");
    assert_int_equal(spaces_parse_path("/v1/spaces/a.b-c_d/users/Ann-1", space, user, &err), 0);
    assert_string_equal(space, "a.b-c_d");
    assert_string_equal(user, "Ann-1");
    struct { const char *path, *part; } bad[] = {
        {"/v1/spaces//users", "space:"}, {"/v1/spaces/a b/users", "space:"},
        {"/v1/spaces/lobby", "path:"}, {"/v1/spaces/lobby/people", "path:"},
        {"/v1/spaces/lobby/usersx", "path:"}, {"/v1/spaces/lobby/users/a/b", "user:"},
        {"/v1/spaces/lobby/users/a%20b", "user:"}, {"/v2/spaces/lobby/users", "path:"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err = NULL;
        assert_int_equal(spaces_parse_path(bad[i].path, space, user, &err), -1);
        assert_non_null(err);
        assert_memory_equal(err, bad[i].part, strlen(bad[i].part));
        assert_string_equal(space, "");
        assert_string_equal(user, "");
    }
    char lng[200] = "/v1/spaces/";
    memset(lng + strlen(lng), 's', SPACES_NAME_MAX + 1);
    strcat(lng, "/users");
    assert_int_equal(spaces_parse_path(lng, space, user, &err), -1);
}

static void test_labels(void **state) {
    (void)state;
    assert_true(app_label_ok("Ann", 3, 32));
    assert_true(app_label_ok("Zoë Ö", strlen("Zoë Ö"), 5));        /* characters, not bytes */
    assert_false(app_label_ok("Zoë Öx", strlen("Zoë Öx"), 5));
    assert_false(app_label_ok("", 0, 32));
    assert_false(app_label_ok("   ", 3, 32));
    assert_false(app_label_ok("a\nb", 3, 32));
    assert_false(app_label_ok("a\x7f", 2, 32));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auction_paths),
        cmocka_unit_test(test_spaces_paths),
        cmocka_unit_test(test_labels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
