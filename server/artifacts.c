/*
 * artifacts.c: see artifacts.h.
 *
 * The bytes are hashed in core's own memory, then copied into the memfd
 * and sealed at once: what a worker maps is what was hashed, and nothing
 * can change it afterwards (the seals cannot be removed, F_SEAL_SEAL
 * included). Every PGresult is cleared on every path.
 */
#include "artifacts.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "memfd.h"
#include "sha256.h"

int art_valid_sha(const char *sha)
{
    size_t n = 0;

    if (sha == NULL)
        return 0;
    for (; sha[n] != '\0'; n++) {
        if (!((sha[n] >= '0' && sha[n] <= '9') || (sha[n] >= 'a' && sha[n] <= 'f')))
            return 0;
    }
    return n == 64;
}

int art_fetch_memfd(struct db_conn *db, const char *sha, char *err, size_t errlen)
{
    const char *params[1] = {sha};
    char hex[SHA256_HEX_LEN], name[32];
    const char *bytes;
    size_t len;
    PGresult *r;
    int fd;

    if (!art_valid_sha(sha)) {
        snprintf(err, errlen, "invalid artifact id");
        return -1;
    }
    r = db_exec_ex(db, "SELECT bytes FROM artifacts WHERE sha256 = $1", 1, params, NULL, NULL, 1);
    if (r == NULL) {
        snprintf(err, errlen, "could not read artifact %.12s: %s", sha, db_error(db));
        return -1;
    }
    if (PQntuples(r) != 1) {
        PQclear(r);
        snprintf(err, errlen, "artifact %.12s is missing from the database", sha);
        return -1;
    }
    bytes = PQgetvalue(r, 0, 0);
    len = (size_t)PQgetlength(r, 0, 0);
    if (sha256_hex_of(bytes, len, hex) < 0 || strcmp(hex, sha) != 0) {
        PQclear(r);
        snprintf(err, errlen, "artifact %.12s does not match its hash", sha);
        return -1;
    }
    snprintf(name, sizeof(name), "wf-plugin-%.12s", sha);
    fd = memfd_sealed(name, bytes, len);
    if (fd < 0)
        snprintf(err, errlen, "could not hold artifact %.12s in memory: %s", sha, strerror(errno));
    PQclear(r);
    return fd;
}
