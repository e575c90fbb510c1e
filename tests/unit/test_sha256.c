/*
 * test_sha256.c: SHA-256 against FIPS 180-4 / NIST vectors and sha256sum.
 */
#include <stdlib.h>
#include <string.h>

#include "sha256.h"
#include "testhelp.h"

int main(void)
{
    char hex[SHA256_HEX_LEN];
    struct sha256 s;
    char *million;

    sha256_hex_of("", 0, hex);
    CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    sha256_hex_of("abc", 3, hex);
    CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    sha256_hex_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, hex);
    CHECK_STR(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");

    /* A million 'a's, fed in uneven pieces. */
    million = malloc(1000000);
    memset(million, 'a', 1000000);
    sha256_init(&s);
    for (size_t off = 0, step = 1; off < 1000000; off += step, step = step * 3 % 997 + 1)
        sha256_update(&s, million + off, off + step > 1000000 ? 1000000 - off : step);
    sha256_hex(&s, hex);
    CHECK_STR(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(million);

    TEST_REPORT("test_sha256");
}
