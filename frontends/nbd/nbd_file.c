// SPDX-License-Identifier: MIT
// The file backend for the NBD server: serves a regular file or a block
// device with positioned I/O, completing every io inside submit(). It is
// what drvdom-nbd-file and the tests run, and the reference for the ops
// contract (see nbd.h): a real backend such as blkfront completes later,
// from its own event handler, through the same nbd_io_complete().
#include "frontends/nbd/nbd.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

struct nbd_file_backend {
	int fd;
	bool is_blkdev;
};

static int file_pread_all(int fd, uint8_t *p, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0) {
			memset(p, 0, len); /* a file shorter than the export reads as zeroes */
			return 0;
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int file_pwrite_all(int fd, const uint8_t *p, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int file_write_zeroes(struct nbd_file_backend *fb, const struct nbd_io *io)
{
	static const uint8_t zero[65536];
	int mode = (io->flags & NBD_IO_NO_HOLE) ? FALLOC_FL_ZERO_RANGE
						: FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	uint64_t off = io->offset, left = io->length;

	if (!fb->is_blkdev && fallocate(fb->fd, mode, (off_t)off, (off_t)left) == 0)
		return 0;
	/* Not supported by this file system or device: write the zeroes. */
	while (left) {
		size_t k = left < sizeof(zero) ? (size_t)left : sizeof(zero);
		int rc = file_pwrite_all(fb->fd, zero, k, off);

		if (rc)
			return rc;
		off += k;
		left -= k;
	}
	return 0;
}

static int file_trim(struct nbd_file_backend *fb, const struct nbd_io *io)
{
	if (fb->is_blkdev) {
		uint64_t range[2] = {io->offset, io->length};

		if (ioctl(fb->fd, BLKDISCARD, range) == 0)
			return 0;
	} else if (fallocate(fb->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)io->offset,
			     (off_t)io->length) == 0) {
		return 0;
	}
	/* Trim is advisory: a file system without hole punching loses nothing. */
	return errno == EOPNOTSUPP ? 0 : -errno;
}

static int file_do(struct nbd_file_backend *fb, const struct nbd_io *io)
{
	int rc;

	switch (io->cmd) {
	case NBD_IO_READ:
		return file_pread_all(fb->fd, io->data, io->length, io->offset);
	case NBD_IO_WRITE:
		rc = file_pwrite_all(fb->fd, io->data, io->length, io->offset);
		break;
	case NBD_IO_WRITE_ZEROES:
		rc = file_write_zeroes(fb, io);
		break;
	case NBD_IO_TRIM:
		rc = file_trim(fb, io);
		break;
	case NBD_IO_FLUSH:
		return fdatasync(fb->fd) < 0 ? -errno : 0;
	default:
		return -EINVAL;
	}
	if (rc == 0 && (io->flags & NBD_IO_FUA) && fdatasync(fb->fd) < 0)
		rc = -errno;
	return rc;
}

static int file_submit(void *ctx, struct nbd_io *io)
{
	nbd_io_complete(io, file_do(ctx, io));
	return 0;
}

const struct nbd_backend_ops nbd_file_backend_ops = {
    .submit = file_submit,
};

int nbd_file_backend_open(const char *path, bool read_only, struct nbd_file_backend **out,
			  struct nbd_export *exp)
{
	struct nbd_file_backend *fb;
	struct stat st;
	uint64_t size;
	int fd, e;

	fd = open(path, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		goto fail;
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, &size) < 0)
			goto fail;
	} else if (S_ISREG(st.st_mode)) {
		size = (uint64_t)st.st_size;
	} else {
		errno = EINVAL;
		goto fail;
	}
	fb = calloc(1, sizeof(*fb));
	if (!fb) {
		errno = ENOMEM;
		goto fail;
	}
	fb->fd = fd;
	fb->is_blkdev = S_ISBLK(st.st_mode);
	*exp = (struct nbd_export){
	    .name = "",
	    .size = size,
	    .min_block = 1,
	    .pref_block = 4096,
	    .max_payload = NBD_DEFAULT_MAX_PAYLOAD,
	    .read_only = read_only,
	    .can_flush = true,
	    .can_fua = true,
	    .can_trim = true,
	    .can_zero = true,
	    .can_multi_conn = true,
	};
	*out = fb;
	return 0;
fail:
	e = errno;
	close(fd);
	return -e;
}

void nbd_file_backend_close(struct nbd_file_backend *fb)
{
	close(fb->fd);
	free(fb);
}
