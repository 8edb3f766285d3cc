// SPDX-License-Identifier: MIT
// What the two twodom test domain kernels (twodom_producer.c,
// twodom_consumer.c) and their driver (check_twodom.c) agree on: the ring
// (Xen layout from ring/ring.h) carrying "page ready" requests and "page
// done" responses, the position-dependent data pattern, the deterministic
// rendezvous without xenstore (grant refs in the order the producer makes
// them: data pages 8..8+N-1, then the ring at 8+N; the producer's first
// allocated port, found by the consumer binding ports in turn), and the
// console lines the driver parses.
#ifndef DRVDOM_TESTS_TWODOM_COMMON_H
#define DRVDOM_TESTS_TWODOM_COMMON_H

#include <stdint.h>

#include "hv/hv_abi.h"
#include "ring/ring.h"

struct twodom_req {
	uint32_t id;   /* data page index, < TWODOM_PAGES */
	uint32_t gref; /* its grant ref: TWODOM_FIRST_REF + id */
	uint64_t seq;  /* page number in the stream: bytes seq*4096 .. +4095 */
};
struct twodom_rsp {
	uint32_t id;
	int32_t status; /* 0, or -errno if the page did not verify */
};
RING_DEFINE_TYPES(twodom, struct twodom_req, struct twodom_rsp);

#define TWODOM_PAGES 128u /* data pages in flight (the ring has 128 slots) */
#define TWODOM_FIRST_REF GNTTAB_NR_RESERVED_ENTRIES
#define TWODOM_RING_REF (TWODOM_FIRST_REF + TWODOM_PAGES)
#define TWODOM_MAX_PORT 64u /* the consumer tries the producer's ports 1.. */

/* The 64-bit word at byte offset off of the stream (off % 8 == 0). */
static inline uint64_t twodom_word(uint64_t off)
{
	uint64_t x = (off + 0x1234567u) * 0x9E3779B97F4A7C15ull;
	return x ^ (x >> 29);
}

/* Fill / check / fold one page of the stream. */
static inline void twodom_fill(void *page, uint64_t seq)
{
	uint64_t *w = page;
	for (unsigned i = 0; i < HV_PAGE_SIZE / 8; i++)
		w[i] = twodom_word(seq * HV_PAGE_SIZE + i * 8u);
}
/* Returns the index of the first bad word, or -1; adds to *sum. */
static inline int twodom_check(const void *page, uint64_t seq, uint64_t *sum)
{
	const volatile uint64_t *w = page;
	int bad = -1;
	uint64_t s = *sum;
	for (unsigned i = 0; i < HV_PAGE_SIZE / 8; i++) {
		uint64_t v = w[i];
		s = s * 31u + v;
		if (bad < 0 && v != twodom_word(seq * HV_PAGE_SIZE + i * 8u))
			bad = (int)i;
	}
	*sum = s;
	return bad;
}
static inline void twodom_sum(const void *page, uint64_t *sum)
{
	const uint64_t *w = page;
	for (unsigned i = 0; i < HV_PAGE_SIZE / 8; i++)
		*sum = *sum * 31u + w[i];
}

#endif
