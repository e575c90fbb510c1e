/*
 * test_jsonutil.c: id validation, typed getters, time formatting and the
 * sorted id map.
 */
#include <stdlib.h>
#include <string.h>

#include "jsonutil.h"
#include "testhelp.h"

struct item {
    char key[16];
};

static const char *item_key(const void *it)
{
    return ((const struct item *)it)->key;
}

int main(void)
{
    char long_id[70];
    char buf[JU_ISO_LEN];
    cJSON *o;
    int64_t n = -1;
    struct item items[40];
    struct idmap m = {0};

    /* project ids */
    CHECK(ju_valid_id("p1"));
    CHECK(ju_valid_id("3f2b6c1e-5a1d-4c1b-9a7e-2d3c4b5a6f70"));
    CHECK(ju_valid_id("A_b-9"));
    CHECK(!ju_valid_id(""));
    CHECK(!ju_valid_id(NULL));
    CHECK(!ju_valid_id("a b"));
    CHECK(!ju_valid_id("../x"));
    CHECK(!ju_valid_id("p1;drop"));
    CHECK(!ju_valid_id("é"));
    memset(long_id, 'a', 64);
    long_id[64] = '\0';
    CHECK(ju_valid_id(long_id));
    long_id[64] = 'a';
    long_id[65] = '\0';
    CHECK(!ju_valid_id(long_id));

    /* getters */
    o = cJSON_Parse("{\"s\":\"x\",\"n\":42,\"f\":1.5,\"big\":1e300,\"t\":true,\"ns\":7}");
    CHECK(o != NULL);
    CHECK_STR(ju_str(o, "s"), "x");
    CHECK(ju_str(o, "n") == NULL);
    CHECK(ju_str(o, "missing") == NULL);
    CHECK_INT(ju_int(o, "n", &n), 0);
    CHECK_INT(n, 42);
    CHECK_INT(ju_int(o, "f", &n), -1);
    CHECK_INT(ju_int(o, "big", &n), -1);
    CHECK_INT(ju_int(o, "s", &n), -1);
    CHECK_INT(n, 42);
    CHECK_INT(ju_bool(o, "t"), 1);
    CHECK_INT(ju_bool(o, "ns"), 0);
    cJSON_Delete(o);

    /* times */
    ju_format_iso(0, buf, sizeof(buf));
    CHECK_STR(buf, "1970-01-01T00:00:00.000Z");
    ju_format_iso(1795443978123LL, buf, sizeof(buf));
    CHECK_STR(buf, "2026-11-23T14:26:18.123Z");
    CHECK(ju_mono_ms() > 0);
    CHECK(ju_wall_ms() > 1700000000000LL);

    /* idmap: insert out of order, iterate sorted, reject duplicates, delete */
    m.key_of = item_key;
    for (int i = 0; i < 40; i++) {
        snprintf(items[i].key, sizeof(items[i].key), "k%02d", (i * 17) % 40);
        CHECK_INT(idmap_put(&m, &items[i]), 0);
    }
    CHECK_INT(m.n, 40);
    CHECK_INT(idmap_put(&m, &items[3]), -1);
    for (size_t i = 1; i < m.n; i++)
        CHECK(strcmp(item_key(m.items[i - 1]), item_key(m.items[i])) < 0);
    CHECK(idmap_get(&m, "k05") != NULL);
    CHECK_STR(item_key(idmap_get(&m, "k05")), "k05");
    CHECK(idmap_get(&m, "k40") == NULL);
    CHECK(idmap_del(&m, "k05") != NULL);
    CHECK(idmap_del(&m, "k05") == NULL);
    CHECK(idmap_get(&m, "k05") == NULL);
    CHECK_INT(m.n, 39);
    idmap_free(&m);
    CHECK_INT(m.n, 0);

    TEST_REPORT("test_jsonutil");
}
