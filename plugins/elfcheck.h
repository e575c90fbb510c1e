/*
 * elfcheck.h: a structural check of a shared object's bytes before anyone
 * dlopens them: a 64-bit little-endian ELF of type ET_DYN for this machine,
 * whose program headers and loadable segments lie inside the file. A
 * truncated file passes dlopen's own checks and then dies with SIGBUS when a
 * segment past the end is touched; this refuses it with a message instead.
 * Used by core on upload and by the worker before dlopen.
 */
#ifndef WF_ELFCHECK_H
#define WF_ELFCHECK_H

#include <stddef.h>

/* Returns 1 if bytes[0..len) pass, else 0 with the reason in why. */
int elf_check_so(const unsigned char *bytes, size_t len, char *why, size_t whylen);

/* The same for a file (mapped read-only). Returns 1, or 0 with why set. */
int elf_check_file(const char *path, char *why, size_t whylen);

#endif
