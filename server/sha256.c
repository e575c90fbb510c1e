/*
 * sha256.c: see sha256.h. A thin wrapper over libcrypto's EVP digests; the
 * only code of ours is the hex encoding.
 */
#include "sha256.h"

#include <openssl/evp.h>

struct sha256 {
    EVP_MD_CTX *ctx;
};

static void to_hex(const unsigned char *md, unsigned n, char out[SHA256_HEX_LEN])
{
    static const char digits[] = "0123456789abcdef";

    for (unsigned i = 0; i < n && i < 32; i++) {
        out[2 * i] = digits[md[i] >> 4];
        out[2 * i + 1] = digits[md[i] & 15];
    }
    out[64] = '\0';
}

struct sha256 *sha256_new(void)
{
    struct sha256 *s = OPENSSL_zalloc(sizeof(*s));

    if (s == NULL)
        return NULL;
    s->ctx = EVP_MD_CTX_new();
    if (s->ctx == NULL || EVP_DigestInit_ex(s->ctx, EVP_sha256(), NULL) != 1) {
        sha256_free(s);
        return NULL;
    }
    return s;
}

int sha256_update(struct sha256 *s, const void *data, size_t len)
{
    return EVP_DigestUpdate(s->ctx, data, len) == 1 ? 0 : -1;
}

int sha256_final_hex(struct sha256 *s, char out[SHA256_HEX_LEN])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    int ok = EVP_DigestFinal_ex(s->ctx, md, &n) == 1 && n == 32;

    sha256_free(s);
    out[0] = '\0';
    if (!ok)
        return -1;
    to_hex(md, n, out);
    return 0;
}

void sha256_free(struct sha256 *s)
{
    if (s == NULL)
        return;
    EVP_MD_CTX_free(s->ctx);
    OPENSSL_free(s);
}

int sha256_hex_of(const void *data, size_t len, char out[SHA256_HEX_LEN])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;

    out[0] = '\0';
    if (EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) != 1 || n != 32)
        return -1;
    to_hex(md, n, out);
    return 0;
}
