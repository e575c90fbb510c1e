/*
 * test_sha256.c: the SHA-256 wrapper over libcrypto against FIPS 180-4 /
 * NIST vectors, one-call and streamed in uneven pieces.
 */
#include <stdlib.h>
#include <string.h>

#include "sha256.h"
#include "testhelp.h"

int main(void)
{
    char hex[SHA256_HEX_LEN];
    struct sha256 *s;
    char *million;

    CHECK(sha256_hex_of("", 0, hex) == 0);
    CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(sha256_hex_of("abc", 3, hex) == 0);
    CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(sha256_hex_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, hex) == 0);
    CHECK_STR(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");

    /* A million 'a's, fed in uneven pieces. */
    million = malloc(1000000);
    memset(million, 'a', 1000000);
    s = sha256_new();
    CHECK(s != NULL);
    for (size_t off = 0, step = 1; s != NULL && off < 1000000;
         off += step, step = step * 3 % 997 + 1)
        CHECK(sha256_update(s, million + off, off + step > 1000000 ? 1000000 - off : step) == 0);
    CHECK(s != NULL && sha256_final_hex(s, hex) == 0);
    CHECK_STR(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(million);

    TEST_REPORT("test_sha256");
}
