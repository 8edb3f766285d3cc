// SPDX-License-Identifier: MIT
// Grant segments (see grant/gnt.h): SEG_ALLOC returns a read-write memfd of
// npages that the library maps once and keeps mapped until SEG_FREE. The fd
// itself is closed right after mmap (the mapping keeps the memory alive).
#include "grant/gnt.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hv/hvc.h"

/* A segment larger than this many pages is not something the hv gives. */
#define GNT_SEG_MAX_PAGES (1u << 22) /* 16 GiB */

int gnt_seg_alloc(struct hvc *h, domid_t peer, uint32_t npages, struct gnt_seg **out)
{
	if (npages == 0 || npages > GNT_SEG_MAX_PAGES)
		return -EINVAL;
	struct gnt_seg *seg = calloc(1, sizeof(*seg));
	if (!seg)
		return -ENOMEM;
	struct hv_seg_alloc_req req = {.peer = peer, .npages = npages};
	struct hv_seg_alloc_rep rep;
	int fd = -1;
	struct hvc_msg m = {.op = HV_OP_SEG_ALLOC,
			    .req = &req,
			    .req_len = sizeof(req),
			    .rep = &rep,
			    .rep_cap = sizeof(rep),
			    .rfds = &fd,
			    .rfds_cap = 1};
	int ret = hvc_call_exact(h, &m);
	if (ret < 0)
		goto fail;
	if (rep.npages != npages || (uint64_t)rep.first_frame + npages > UINT32_MAX) {
		ret = -EPROTO;
		goto fail_seg;
	}
	void *base =
	    mmap(NULL, (size_t)npages * HV_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		ret = -errno;
		goto fail_seg;
	}
	close(fd);
	seg->peer = peer;
	seg->id = rep.seg_id;
	seg->first_frame = rep.first_frame;
	seg->npages = npages;
	seg->base = base;
	*out = seg;
	return 0;
fail_seg:
	close(fd);
	{
		struct hv_seg_free_req fr = {.seg_id = rep.seg_id};
		struct hvc_msg fm = {.op = HV_OP_SEG_FREE, .req = &fr, .req_len = sizeof(fr)};
		(void)hvc_call_exact(h, &fm);
	}
fail:
	free(seg);
	return ret;
}

int gnt_seg_free(struct hvc *h, struct gnt_seg *seg)
{
	if (!seg)
		return 0;
	struct hv_seg_free_req req = {.seg_id = seg->id};
	struct hvc_msg m = {.op = HV_OP_SEG_FREE, .req = &req, .req_len = sizeof(req)};
	int ret = hvc_call_exact(h, &m);
	if (ret < 0)
		return ret;
	munmap(seg->base, (size_t)seg->npages * HV_PAGE_SIZE);
	free(seg);
	return 0;
}

void *gnt_seg_page(const struct gnt_seg *seg, uint32_t i)
{
	if (i >= seg->npages)
		return NULL;
	return (char *)seg->base + (size_t)i * HV_PAGE_SIZE;
}

uint32_t gnt_seg_frame(const struct gnt_seg *seg, uint32_t i)
{
	return seg->first_frame + i;
}

int gnt_seg_addr_to_frame(const struct gnt_seg *seg, const void *addr, uint32_t *frame)
{
	uintptr_t a = (uintptr_t)addr, b = (uintptr_t)seg->base;
	if (a < b || a - b >= (uintptr_t)seg->npages * HV_PAGE_SIZE)
		return -EFAULT;
	*frame = seg->first_frame + (uint32_t)((a - b) >> HV_PAGE_SHIFT);
	return 0;
}

void *gnt_seg_frame_to_addr(const struct gnt_seg *seg, uint32_t frame)
{
	if (frame < seg->first_frame || frame - seg->first_frame >= seg->npages)
		return NULL;
	return (char *)seg->base + (size_t)(frame - seg->first_frame) * HV_PAGE_SIZE;
}
