/*
 * memfd.h: sealed in-memory files. Bytes handed to another process (an
 * uploaded plugin to describe, a large message) travel as a memfd sealed
 * against writing, shrinking and growing, so the receiver can read them
 * without copying and the sender cannot change them afterwards.
 */
#ifndef WF_MEMFD_H
#define WF_MEMFD_H

#include <stddef.h>

/*
 * Creates a close-on-exec memfd named name holding data[0..len), sealed with
 * F_SEAL_WRITE|F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_SEAL. Returns the descriptor
 * (caller closes), or -1 with errno set (nothing left open).
 */
int memfd_sealed(const char *name, const void *data, size_t len);

/* Seals fd (made with MFD_ALLOW_SEALING, no writable mapping left) with
 * F_SEAL_WRITE|F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_SEAL: F_SEAL_SEAL too, so
 * the receiver is never asked to trust seals anyone could still change.
 * Returns 0, or -1 with errno. */
int memfd_seal(int fd) __attribute__((warn_unused_result));

/* 1 if fd carries at least F_SEAL_WRITE|F_SEAL_SHRINK|F_SEAL_GROW: not a
 * memfd, or one its sender could still change, gives 0. */
int memfd_is_sealed(int fd);

#endif
