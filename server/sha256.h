/*
 * sha256.h: SHA-256 for content-addressed artifacts (core names each plugin
 * by the hash of its bytes and verifies what it hands to workers), computed
 * by libcrypto's EVP interface, which libpq already brings into core. Core
 * only: the worker program links no crypto library.
 */
#ifndef WF_SHA256_H
#define WF_SHA256_H

#include <stddef.h>

#define SHA256_HEX_LEN 65 /* 64 hex digits and a NUL */

struct sha256;

/* Starts a digest. Returns it (free with sha256_final_hex or sha256_free),
 * or NULL when libcrypto could not allocate or initialise one. */
struct sha256 *sha256_new(void);

/* Adds data[0..len). Returns 0, or -1 (the digest is then unusable). */
int sha256_update(struct sha256 *s, const void *data, size_t len)
    __attribute__((warn_unused_result));

/* Writes the digest as 64 lower-case hex digits and a NUL, and frees s.
 * Returns 0, or -1 (out is then "" and s freed all the same). */
int sha256_final_hex(struct sha256 *s, char out[SHA256_HEX_LEN])
    __attribute__((warn_unused_result));

/* Frees an unfinished digest; NULL is a no-op. */
void sha256_free(struct sha256 *s);

/* One call: the hex digest of data[0..len). Returns 0, or -1 with out "". */
int sha256_hex_of(const void *data, size_t len, char out[SHA256_HEX_LEN])
    __attribute__((warn_unused_result));

#endif
