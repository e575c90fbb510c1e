/*
 * elfcheck.c: see elfcheck.h. Reads only; every offset is checked against
 * the length before it is used.
 */
#include "elfcheck.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__x86_64__)
#define ELF_MACHINE EM_X86_64
#elif defined(__aarch64__)
#define ELF_MACHINE EM_AARCH64
#endif

/* 1 if [off, off + n) lies within len, without overflow. */
static int within(uint64_t off, uint64_t n, size_t len)
{
    return off <= len && n <= len - off;
}

int elf_check_so(const unsigned char *bytes, size_t len, char *why, size_t whylen)
{
    Elf64_Ehdr eh;

    if (len < sizeof(eh) || memcmp(bytes, ELFMAG, SELFMAG) != 0) {
        snprintf(why, whylen, "not an ELF file");
        return 0;
    }
    memcpy(&eh, bytes, sizeof(eh));
    if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB) {
        snprintf(why, whylen, "not a 64-bit little-endian ELF file");
        return 0;
    }
    if (eh.e_type != ET_DYN) {
        snprintf(why, whylen, "not a shared object (ELF type %u)", (unsigned)eh.e_type);
        return 0;
    }
#ifdef ELF_MACHINE
    if (eh.e_machine != ELF_MACHINE) {
        snprintf(why, whylen, "built for another machine (ELF machine %u)", (unsigned)eh.e_machine);
        return 0;
    }
#endif
    if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 ||
        !within(eh.e_phoff, (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr), len)) {
        snprintf(why, whylen, "truncated or corrupt ELF file (program headers)");
        return 0;
    }
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        memcpy(&ph, bytes + eh.e_phoff + (uint64_t)i * sizeof(ph), sizeof(ph));
        if (ph.p_type == PT_LOAD && !within(ph.p_offset, ph.p_filesz, len)) {
            snprintf(why, whylen,
                     "truncated or corrupt ELF file (segment %u ends past the end "
                     "of the file)",
                     i);
            return 0;
        }
    }
    return 1;
}

int elf_check_file(const char *path, char *why, size_t whylen)
{
    struct stat st;
    void *map;
    int ok;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        snprintf(why, whylen, "%s", strerror(errno));
        return 0;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0) {
        snprintf(why, whylen, "not a regular, non-empty file");
        close(fd);
        return 0;
    }
    map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        snprintf(why, whylen, "could not map file: %s", strerror(errno));
        return 0;
    }
    ok = elf_check_so(map, (size_t)st.st_size, why, whylen);
    munmap(map, (size_t)st.st_size);
    return ok;
}
