/*
 * sha256.h: SHA-256 (FIPS 180-4), for content-addressed artifacts: core names
 * each plugin file by the hash of its bytes and verifies the file after
 * writing it. Small and dependency-free; not for secrets (not constant-time
 * in any sense that matters there).
 */
#ifndef WF_SHA256_H
#define WF_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_HEX_LEN 65 /* 64 hex digits and a NUL */

struct sha256 {
    uint32_t h[8];
    uint64_t len;
    unsigned char buf[64];
    size_t nbuf;
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t len);
/* Writes the digest as 64 lower-case hex digits and a NUL. */
void sha256_hex(struct sha256 *s, char out[SHA256_HEX_LEN]);
/* One call: hex digest of data[0..len). */
void sha256_hex_of(const void *data, size_t len, char out[SHA256_HEX_LEN]);

#endif
