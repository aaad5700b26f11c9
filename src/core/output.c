/* output.c - writing a finished report to --output without ever losing data.
 *
 * What the path names decides how it is written:
 *   "-", /dev/stdout, /dev/stderr, /dev/fd/N, /proc/self/fd/N
 *                      the already open descriptor, written as it is (so
 *                      `-o /dev/stdout >>log` appends, as the shell asked)
 *   a symbolic link    followed (every hop, relative ones from the link's
 *                      own directory); what it finally names is written as
 *                      below and the link itself stays
 *   a regular file     replaced atomically: a temporary file beside it gets
 *                      the text, is synced, takes the old file's permission
 *                      bits (and owner, where allowed) and is renamed over
 *                      it, so an error leaves the old file intact. In a
 *                      directory where no file can be created (read-only),
 *                      the existing file is rewritten in place instead.
 *   nothing yet        created the same way, mode 0666 & ~umask
 *   a device, a FIFO   opened and written directly, never replaced
 *   a directory        an error
 * Every failure is HFC_ERR_IO with "cannot write: REASON" or the like. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hfc/core.h"

/* The descriptor a name for an open stream stands for, or -1. */
static int open_stream_fd(const char *path)
{
    static const char *const prefixes[] = {"/dev/fd/", "/proc/self/fd/"};
    if (!strcmp(path, "-") || !strcmp(path, "/dev/stdout"))
        return 1;
    if (!strcmp(path, "/dev/stderr"))
        return 2;
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        size_t n = strlen(prefixes[i]);
        if (strncmp(path, prefixes[i], n) || !path[n] || strlen(path + n) > 6)
            continue;
        int fd = 0;
        for (const char *p = path + n; *p; p++) {
            if (*p < '0' || *p > '9')
                return -1;
            fd = fd * 10 + (*p - '0');
        }
        return fd;
    }
    return -1;
}

static int write_all(int fd, const char *text, size_t len)
{
    while (len) {
        ssize_t n = write(fd, text, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            return -1;
        }
        text += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Follow symbolic links from path to what they finally name (which need not
 * exist yet). *sb is that file's lstat, *exists whether there is one. */
static hfc_status resolve_links(const char *path, char *out, size_t cap, struct stat *sb,
                                int *exists, hfc_error *err)
{
    if (snprintf(out, cap, "%s", path) >= (int)cap)
        return hfc_fail(err, HFC_ERR_IO, path, "path too long");
    for (int hops = 0; hops < 40; hops++) {
        if (lstat(out, sb) != 0) {
            if (errno != ENOENT)
                return hfc_fail(err, HFC_ERR_IO, path, "cannot write: %s", strerror(errno));
            *exists = 0;
            return HFC_OK;
        }
        if (!S_ISLNK(sb->st_mode)) {
            *exists = 1;
            return HFC_OK;
        }
        char link[PATH_MAX], next[PATH_MAX];
        ssize_t n = readlink(out, link, sizeof link - 1);
        if (n < 0)
            return hfc_fail(err, HFC_ERR_IO, path, "cannot read the link %s: %s", out,
                            strerror(errno));
        link[n] = 0;
        const char *slash = strrchr(out, '/');
        int len = link[0] == '/' || !slash
                      ? snprintf(next, sizeof next, "%s", link)
                      : snprintf(next, sizeof next, "%.*s/%s", (int)(slash - out), out, link);
        if (len < 0 || (size_t)len >= cap || (size_t)len >= sizeof next)
            return hfc_fail(err, HFC_ERR_IO, path, "path too long");
        memcpy(out, next, (size_t)len + 1);
    }
    return hfc_fail(err, HFC_ERR_IO, path, "cannot write: too many levels of symbolic links");
}

/* Rewrite an existing file in place (when no temporary file can be made). */
static hfc_status write_in_place(const char *path, const char *target, const char *text,
                                 size_t len, hfc_error *err)
{
    int fd = open(target, O_WRONLY | O_TRUNC);
    if (fd < 0)
        return hfc_fail(err, HFC_ERR_IO, path, "cannot write: %s", strerror(errno));
    int e = write_all(fd, text, len) || fsync(fd) != 0 ? errno : 0;
    if (close(fd) != 0 && !e)
        e = errno;
    return e ? hfc_fail(err, HFC_ERR_IO, path, "cannot write: %s", strerror(e)) : HFC_OK;
}

static hfc_status replace_atomically(const char *path, const char *target, const struct stat *old,
                                     const char *text, size_t len, hfc_error *err)
{
    char tmp[PATH_MAX + 16];
    if (snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", target) >= (int)sizeof tmp)
        return hfc_fail(err, HFC_ERR_IO, path, "path too long");
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        if (old && (e == EACCES || e == EPERM || e == EROFS))
            return write_in_place(path, target, text, len, err);
        return hfc_fail(err, HFC_ERR_IO, path, "cannot create a file beside it: %s", strerror(e));
    }
    mode_t mode;
    if (old) {
        mode = old->st_mode & 07777;
        if (old->st_uid != geteuid() || old->st_gid != getegid())
            (void)!fchown(fd, old->st_uid, old->st_gid); /* allowed for root only: best effort */
    } else {
        mode_t mask = umask(0);
        umask(mask);
        mode = 0666 & ~mask;
    }
    int e = fchmod(fd, mode) != 0 || write_all(fd, text, len) || fsync(fd) != 0 ? errno : 0;
    if (close(fd) != 0 && !e)
        e = errno;
    if (!e && rename(tmp, target) != 0)
        e = errno;
    if (!e)
        return HFC_OK;
    unlink(tmp);
    return hfc_fail(err, HFC_ERR_IO, path, "cannot write: %s", strerror(e));
}

hfc_status hfc_write_output(const char *path, const char *text, hfc_error *err)
{
    size_t len = strlen(text);
    int fd = open_stream_fd(path);
    if (fd >= 0) {
        if (write_all(fd, text, len))
            return hfc_fail(err, HFC_ERR_IO, path, "cannot write: %s", strerror(errno));
        return HFC_OK;
    }
    char target[PATH_MAX];
    struct stat sb;
    int exists;
    hfc_status st = resolve_links(path, target, sizeof target, &sb, &exists, err);
    if (st)
        return st;
    if (!exists)
        return replace_atomically(path, target, NULL, text, len, err);
    if (S_ISREG(sb.st_mode))
        return replace_atomically(path, target, &sb, text, len, err);
    if (S_ISDIR(sb.st_mode))
        return hfc_fail(err, HFC_ERR_IO, path, "cannot write: it is a directory");
    /* A device, FIFO or socket: written as it is, never replaced. */
    fd = open(target, O_WRONLY | O_NOCTTY);
    if (fd < 0)
        return hfc_fail(err, HFC_ERR_IO, path, "cannot write: %s", strerror(errno));
    int e = write_all(fd, text, len) ? errno : 0;
    if (close(fd) != 0 && !e)
        e = errno;
    return e ? hfc_fail(err, HFC_ERR_IO, path, "cannot write: %s", strerror(e)) : HFC_OK;
}
