/*
 * Fault injection for the disk-fault tests, loaded with LD_PRELOAD into a
 * real `credence run` process: while the file named by CREDENCE_EIO_TRIGGER
 * exists, every fsync, fdatasync, write and pwrite to a file whose path
 * contains CREDENCE_EIO_PATH fails with EIO, as a failing disk's would.
 * Everything else passes through to the C library.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static int failing(int fd) {
    const char *trigger = getenv("CREDENCE_EIO_TRIGGER");
    const char *part = getenv("CREDENCE_EIO_PATH");
    if (trigger == NULL || part == NULL || access(trigger, F_OK) != 0) {
        return 0;
    }
    char link[64];
    char path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) {
        return 0;
    }
    path[n] = '\0';
    return strstr(path, part) != NULL;
}

#define PASS(name, ret, params, args)                                        \
    ret name params {                                                        \
        static ret (*real) params;                                           \
        if (real == NULL) {                                                  \
            real = (ret (*) params)dlsym(RTLD_NEXT, #name);                  \
        }                                                                    \
        if (failing(fd)) {                                                   \
            errno = EIO;                                                     \
            return -1;                                                       \
        }                                                                    \
        return real args;                                                    \
    }

PASS(fsync, int, (int fd), (fd))
PASS(fdatasync, int, (int fd), (fd))
PASS(write, ssize_t, (int fd, const void *buf, size_t count), (fd, buf, count))
PASS(pwrite, ssize_t, (int fd, const void *buf, size_t count, off_t offset), (fd, buf, count, offset))
PASS(pwrite64, ssize_t, (int fd, const void *buf, size_t count, off_t offset), (fd, buf, count, offset))
