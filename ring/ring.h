// SPDX-License-Identifier: MIT
// Xen's shared I/O ring, layout-identical to xen/io/ring.h, with C11 atomics
// for the barriers and static inline functions instead of statement macros.
// A ring lives in 1..16 shared pages (order 0-4): a 64-byte header
// (req_prod, req_event, rsp_prod, rsp_event, 4 private bytes, 44 pad bytes)
// and then a power-of-two array of slots, each a union of a request and a
// response. Indices are free-running u32 and wrap at 2^32. The frontend
// produces requests and consumes responses; the backend consumes requests
// and produces responses. RING_DEFINE_TYPES(name, req_t, rsp_t) generates
// the shared struct, a front and a back type (distinct, so a side cannot
// call the other side's functions) and the functions of both sides. Data in
// the shared page belongs to the peer: consumers copy a slot out before they
// look at it, and every count read from the peer is bounded by what the
// protocol allows (-EOVERFLOW otherwise, XSA-39). The protocol, including
// the event-index rule for notifications, is Xen's (xen/io/ring.h), as
// summarised in the project's PROTOCOLS.md, "Shared ring"; the comment above
// RING_DEFINE_TYPES lists the functions and the barrier pairs.
// This header depends on C11 only; notifying the peer (an event channel) is
// the caller's job: the push functions say whether a notification is due.
#ifndef DRVDOM_RING_RING_H
#define DRVDOM_RING_RING_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

/* Rings are made of pages of this size whatever the host's page size. */
#define RING_PAGE_SIZE 4096u
/* Largest ring-page-order (Linux caps it at 4: 16 pages). */
#define RING_MAX_ORDER 4u
/* Bytes of the shared header before the first slot. */
#define RING_HEADER_SIZE 64u

_Static_assert(sizeof(_Atomic uint32_t) == sizeof(uint32_t), "atomic u32 must be 4 bytes");
_Static_assert(_Alignof(_Atomic uint32_t) == _Alignof(uint32_t), "atomic u32 must align as u32");

/* Bytes of a ring of 2^order pages. */
static inline size_t ring_bytes(unsigned int order)
{
	return (size_t)RING_PAGE_SIZE << order;
}

/* Number of slots of slot_size bytes in a ring of `bytes` bytes: what fits
 * after the header, rounded down to a power of two (Xen's __RING_SIZE). 0 if
 * not even one slot fits. Pure arithmetic, any caller. */
static inline uint32_t ring_nr_slots(size_t bytes, size_t slot_size)
{
	if (slot_size == 0 || bytes < RING_HEADER_SIZE + slot_size)
		return 0;
	size_t n = (bytes - RING_HEADER_SIZE) / slot_size;
	if (n > UINT32_MAX / 2 + 1)
		n = UINT32_MAX / 2 + 1;
	uint32_t p = 1;
	while ((size_t)p * 2 <= n)
		p *= 2;
	return p;
}

/* Xen's event-index rule: a producer that moved its index from old_prod to
 * new_prod must notify iff the peer's event index lies in (old_prod,
 * new_prod], modulo 2^32. Pure arithmetic, any caller. */
static inline bool ring_event_in_range(uint32_t event, uint32_t old_prod, uint32_t new_prod)
{
	return (uint32_t)(new_prod - event) < (uint32_t)(new_prod - old_prod);
}

/* A hint to the CPU that we are spinning (x86 `pause`, arm `yield`). */
static inline void ring_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__asm__ __volatile__("pause" ::: "memory");
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	atomic_signal_fence(memory_order_seq_cst);
#endif
}

/* Nanoseconds from a clock that only serves to bound spins. */
static inline uint64_t ring_clock_ns(void)
{
	struct timespec ts;
	timespec_get(&ts, TIME_UTC);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Spin for at most spin_ns nanoseconds until *prod differs from cons.
 * CONSUMER side helper for adaptive polling (spin briefly, then sleep on the
 * event channel after a final check): returns true as soon as work is
 * visible, false when the time is up. Never blocks; the acquire load pairs
 * with the producer's release store of the index, like the unconsumed-count
 * functions. The time is read every 64 iterations; a clock that goes
 * backwards ends the spin. */
static inline bool ring_poll_index(_Atomic uint32_t *prod, uint32_t cons, uint64_t spin_ns)
{
	if (atomic_load_explicit(prod, memory_order_acquire) != cons)
		return true;
	if (spin_ns == 0)
		return false;
	uint64_t start = ring_clock_ns();
	for (;;) {
		for (int i = 0; i < 64; i++) {
			ring_cpu_relax();
			/* acquire: pairs with the producer's release store in push. */
			if (atomic_load_explicit(prod, memory_order_acquire) != cons)
				return true;
		}
		uint64_t now = ring_clock_ns();
		if (now < start || now - start >= spin_ns)
			return false;
	}
}

/*
 * RING_DEFINE_TYPES(name, req_t, rsp_t) defines:
 *
 *   union name_sring_entry  { req_t req; rsp_t rsp; }
 *   struct name_sring       the shared pages (Xen's layout)
 *   struct name_front       frontend's private state: req_prod_pvt, rsp_cons
 *   struct name_back        backend's private state: rsp_prod_pvt, req_cons
 *
 * and, for the frontend (PRODUCER of requests, CONSUMER of responses):
 *   name_front_init, name_front_init_at, name_front_size,
 *   name_front_free_requests, name_front_full, name_front_req_slot,
 *   name_front_next_req, name_front_push_requests,
 *   name_front_push_requests_check_notify, name_front_unconsumed_responses,
 *   name_front_copy_response, name_front_take_response,
 *   name_front_final_check_for_responses, name_front_final_check_ahead,
 *   name_front_poll_responses
 *
 * and for the backend (CONSUMER of requests, PRODUCER of responses):
 *   name_back_attach, name_back_size, name_back_unconsumed_requests,
 *   name_back_copy_request, name_back_take_request, name_back_rsp_slot,
 *   name_back_next_rsp, name_back_push_responses,
 *   name_back_push_responses_check_notify,
 *   name_back_final_check_for_requests, name_back_final_check_ahead,
 *   name_back_poll_requests
 *
 * Barrier pairs (P = producer, C = consumer, X = req or rsp):
 *  [A] P: release store of X_prod after writing slots  <->  C: acquire load
 *      of X_prod before copying slots (slots are visible before the index).
 *  [B] P: seq_cst fence between storing X_prod and loading X_event  <->
 *      C: seq_cst fence between storing X_event and reloading X_prod (one
 *      side always sees the other: no lost wake-up).
 *  [C] C releases slots to the peer only through its own pushes: the back's
 *      release store of rsp_prod [A] orders its earlier copies of request
 *      slots before the front can see the response and reuse those slots.
 *
 * Notification (Xen's rule, generalised to deferred checks): a checked push
 * notifies iff the peer's event index lies in (X_prod at the previous check,
 * new X_prod]. A consumer sleeps only after arming X_event = cons + k and then
 * still reading X_prod == cons; by [B], the first check that follows the
 * producer's first store beyond cons sees that event, and its range starts at
 * or below cons, so it notifies. Plain pushes before that check only delay
 * the wake-up: a producer must do a checked push before it waits or stops.
 */
#define RING_DEFINE_TYPES(name, req_t, rsp_t)                                                      \
	union name##_sring_entry {                                                                 \
		req_t req;                                                                         \
		rsp_t rsp;                                                                         \
	};                                                                                         \
                                                                                                   \
	struct name##_sring {                                                                      \
		_Atomic uint32_t req_prod;                                                         \
		_Atomic uint32_t req_event;                                                        \
		_Atomic uint32_t rsp_prod;                                                         \
		_Atomic uint32_t rsp_event;                                                        \
		uint8_t pvt[4];                                                                    \
		uint8_t pad[44];                                                                   \
		union name##_sring_entry ring[];                                                   \
	};                                                                                         \
	_Static_assert(offsetof(struct name##_sring, req_prod) == 0, #name ": req_prod");          \
	_Static_assert(offsetof(struct name##_sring, req_event) == 4, #name ": req_event");        \
	_Static_assert(offsetof(struct name##_sring, rsp_prod) == 8, #name ": rsp_prod");          \
	_Static_assert(offsetof(struct name##_sring, rsp_event) == 12, #name ": rsp_event");       \
	_Static_assert(offsetof(struct name##_sring, pvt) == 16, #name ": pvt");                   \
	_Static_assert(offsetof(struct name##_sring, pad) == 20, #name ": pad");                   \
	_Static_assert(offsetof(struct name##_sring, ring) == RING_HEADER_SIZE, #name ": ring");   \
	_Static_assert(_Alignof(union name##_sring_entry) <= RING_HEADER_SIZE,                     \
		       #name ": slot alignment");                                                  \
                                                                                                   \
	struct name##_front {                                                                      \
		uint32_t req_prod_pvt; /* next request slot to fill */                             \
		uint32_t rsp_cons;     /* next response to consume */                              \
		uint32_t nr_ents;      /* slots, a power of two */                                 \
		uint32_t rsp_seen;     /* rsp_prod as last validated */                            \
		uint32_t req_checked;  /* req_prod at the last notification check */               \
		struct name##_sring *sring;                                                        \
	};                                                                                         \
                                                                                                   \
	struct name##_back {                                                                       \
		uint32_t rsp_prod_pvt; /* next response slot to fill */                            \
		uint32_t req_cons;     /* next request to consume */                               \
		uint32_t nr_ents;                                                                  \
		uint32_t req_seen;    /* req_prod as last validated */                             \
		uint32_t rsp_checked; /* rsp_prod at the last notification check */                \
		struct name##_sring *sring;                                                        \
	};                                                                                         \
                                                                                                   \
	/* Slots in a ring of 2^order pages; 0 if order > RING_MAX_ORDER. Any caller. */           \
	static inline uint32_t name##_nr_slots(unsigned int order)                                 \
	{                                                                                          \
		if (order > RING_MAX_ORDER)                                                        \
			return 0;                                                                  \
		return ring_nr_slots(ring_bytes(order), sizeof(union name##_sring_entry));         \
	}                                                                                          \
                                                                                                   \
	/* FRONTEND, before the backend attaches: initialise the shared pages at                   \
	 * `shared` (ring_bytes(order) bytes) with both producer indices at start and both         \
	 * event indices at start + 1, and the private state to match. Xen rings start at          \
	 * 0 (name_front_init); other starts serve tests of index wrap. Does not block.            \
	 * 0, or -EINVAL for a NULL pointer or an order above RING_MAX_ORDER. */                   \
	static inline int name##_front_init_at(struct name##_front *f, void *shared,               \
					       unsigned int order, uint32_t start)                 \
	{                                                                                          \
		if (!f || !shared || order > RING_MAX_ORDER)                                       \
			return -EINVAL;                                                            \
		struct name##_sring *s = shared;                                                   \
		atomic_store_explicit(&s->req_prod, start, memory_order_relaxed);                  \
		atomic_store_explicit(&s->rsp_prod, start, memory_order_relaxed);                  \
		atomic_store_explicit(&s->req_event, start + 1, memory_order_relaxed);             \
		atomic_store_explicit(&s->rsp_event, start + 1, memory_order_relaxed);             \
		memset(s->pvt, 0, sizeof(s->pvt));                                                 \
		memset(s->pad, 0, sizeof(s->pad));                                                 \
		/* release: the backend learns of the ring only through a later handshake          \
		 * (xenstore write, or a thread start in tests), which orders these stores. */     \
		atomic_thread_fence(memory_order_release);                                         \
		f->req_prod_pvt = start;                                                           \
		f->rsp_cons = start;                                                               \
		f->rsp_seen = start;                                                               \
		f->req_checked = start;                                                            \
		f->nr_ents = name##_nr_slots(order);                                               \
		f->sring = s;                                                                      \
		return 0;                                                                          \
	}                                                                                          \
                                                                                                   \
	/* FRONTEND: Xen's SHARED_RING_INIT + FRONT_RING_INIT. See name_front_init_at. */          \
	static inline int name##_front_init(struct name##_front *f, void *shared,                  \
					    unsigned int order)                                    \
	{                                                                                          \
		return name##_front_init_at(f, shared, order, 0);                                  \
	}                                                                                          \
                                                                                                   \
	/* BACKEND: attach to pages the frontend initialised; private indices start at             \
	 * the shared rsp_prod (0 for a fresh Xen ring, like BACK_RING_INIT). Requests             \
	 * already pushed beyond it will be consumed. Does not block. 0, or -EINVAL. */            \
	static inline int name##_back_attach(struct name##_back *b, void *shared,                  \
					     unsigned int order)                                   \
	{                                                                                          \
		if (!b || !shared || order > RING_MAX_ORDER)                                       \
			return -EINVAL;                                                            \
		struct name##_sring *s = shared;                                                   \
		/* acquire: pairs with the release fence of name_front_init_at. */                 \
		uint32_t start = atomic_load_explicit(&s->rsp_prod, memory_order_acquire);         \
		b->rsp_prod_pvt = start;                                                           \
		b->req_cons = start;                                                               \
		b->req_seen = start;                                                               \
		b->rsp_checked = start;                                                            \
		b->nr_ents = name##_nr_slots(order);                                               \
		b->sring = s;                                                                      \
		return 0;                                                                          \
	}                                                                                          \
                                                                                                   \
	/* Either side: number of slots (Xen's RING_SIZE). */                                      \
	static inline uint32_t name##_front_size(const struct name##_front *f)                     \
	{                                                                                          \
		return f->nr_ents;                                                                 \
	}                                                                                          \
	static inline uint32_t name##_back_size(const struct name##_back *b)                       \
	{                                                                                          \
		return b->nr_ents;                                                                 \
	}                                                                                          \
                                                                                                   \
	/* PRODUCER (frontend): request slots not yet holding an unanswered request.               \
	 * The front never has more than size requests outstanding. */                             \
	static inline uint32_t name##_front_free_requests(const struct name##_front *f)            \
	{                                                                                          \
		return f->nr_ents - (f->req_prod_pvt - f->rsp_cons);                               \
	}                                                                                          \
	static inline bool name##_front_full(const struct name##_front *f)                         \
	{                                                                                          \
		return name##_front_free_requests(f) == 0;                                         \
	}                                                                                          \
                                                                                                   \
	/* PRODUCER (frontend): the request slot of index idx (RING_GET_REQUEST). For              \
	 * filling requests only; a consumer must use name_back_copy_request. */                   \
	static inline req_t *name##_front_req_slot(struct name##_front *f, uint32_t idx)           \
	{                                                                                          \
		return &f->sring->ring[idx & (f->nr_ents - 1)].req;                                \
	}                                                                                          \
                                                                                                   \
	/* PRODUCER (frontend): the next free request slot, claimed (req_prod_pvt                  \
	 * advances); the peer sees it after name_front_push_requests*. NULL when the              \
	 * ring is full. Does not block. */                                                        \
	static inline req_t *name##_front_next_req(struct name##_front *f)                         \
	{                                                                                          \
		if (name##_front_full(f))                                                          \
			return NULL;                                                               \
		return name##_front_req_slot(f, f->req_prod_pvt++);                                \
	}                                                                                          \
                                                                                                   \
	/* PRODUCER (frontend): publish every claimed request (RING_PUSH_REQUESTS), with           \
	 * no notification check: cheap (no full barrier), so a producer may push as it            \
	 * goes and check once, with name_front_push_requests_check_notify, before it waits        \
	 * or stops producing: that check covers everything pushed since the last one. Does        \
	 * not block. */                                                                           \
	static inline void name##_front_push_requests(struct name##_front *f)                      \
	{                                                                                          \
		/* release [A]: slots before index; pairs with the acquire load in                 \
		 * name_back_unconsumed_requests / ring_poll_index. */                             \
		atomic_store_explicit(&f->sring->req_prod, f->req_prod_pvt, memory_order_release); \
	}                                                                                          \
                                                                                                   \
	/* PRODUCER (frontend): publish every claimed request and say whether the backend          \
	 * must be notified: true iff req_event lies in (old, new req_prod]                        \
	 * (RING_PUSH_REQUESTS_AND_CHECK_NOTIFY), where old is req_prod at the previous            \
	 * check. When every push checks, old is the previous push, as in Xen; after plain         \
	 * pushes the range covers them too, so deferring the check loses no wake-up (with         \
	 * Xen's macros, a plain push followed by a checked one can). Does not block. */           \
	static inline bool name##_front_push_requests_check_notify(struct name##_front *f)         \
	{                                                                                          \
		struct name##_sring *s = f->sring;                                                 \
		uint32_t old = f->req_checked;                                                     \
		uint32_t new_ = f->req_prod_pvt;                                                   \
		if (new_ == old) /* nothing since the last check: empty range */                   \
			return false;                                                              \
		f->req_checked = new_;                                                             \
		/* release [A]: pairs with the acquire load of req_prod by the back. */            \
		atomic_store_explicit(&s->req_prod, new_, memory_order_release);                   \
		/* full [B]: req_prod visible before req_event is read; pairs with the fence       \
		 * in name_back_final_check_ahead. */                                              \
		atomic_thread_fence(memory_order_seq_cst);                                         \
		uint32_t ev = atomic_load_explicit(&s->req_event, memory_order_relaxed);           \
		return ring_event_in_range(ev, old, new_);                                         \
	}                                                                                          \
                                                                                                   \
	/* CONSUMER (backend): number of requests pushed but not consumed, in *n;                  \
	 * -EOVERFLOW if the frontend's req_prod claims more requests than the ring can            \
	 * hold beside those consumed and not yet answered (XSA-39: treat as an attack,            \
	 * e.g. move the device to Closing). Does not block. */                                    \
	static inline int name##_back_unconsumed_requests(struct name##_back *b, uint32_t *n)      \
	{                                                                                          \
		/* acquire [A]: pairs with the release store in the front's push. */               \
		uint32_t prod = atomic_load_explicit(&b->sring->req_prod, memory_order_acquire);   \
		uint32_t avail = prod - b->req_cons;                                               \
		uint32_t room = b->nr_ents - (b->req_cons - b->rsp_prod_pvt);                      \
		if (avail > room) {                                                                \
			*n = 0;                                                                    \
			return -EOVERFLOW;                                                         \
		}                                                                                  \
		b->req_seen = prod;                                                                \
		*n = avail;                                                                        \
		return 0;                                                                          \
	}                                                                                          \
                                                                                                   \
	/* CONSUMER (backend): copy request idx out of the shared ring into *out with one          \
	 * read of every byte (RING_COPY_REQUEST): check and use only the copy, never the          \
	 * slot, so the frontend cannot change it between check and use (XSA-155). The             \
	 * caller must know idx was pushed (name_back_unconsumed_requests). */                     \
	static inline void name##_back_copy_request(const struct name##_back *b, uint32_t idx,     \
						    req_t *out)                                    \
	{                                                                                          \
		*out = *(const volatile req_t *)&b->sring->ring[idx & (b->nr_ents - 1)].req;       \
	}                                                                                          \
                                                                                                   \
	/* CONSUMER (backend): copy out the next request and consume it (req_cons                  \
	 * advances). 0; -EAGAIN if none is pushed; -EOVERFLOW as in                               \
	 * name_back_unconsumed_requests. Reads req_prod only when the requests seen last          \
	 * are used up. Does not block. */                                                         \
	static inline int name##_back_take_request(struct name##_back *b, req_t *out)              \
	{                                                                                          \
		uint32_t left = b->req_seen - b->req_cons;                                         \
		if (left == 0 || left > b->nr_ents) {                                              \
			int rc = name##_back_unconsumed_requests(b, &left);                        \
			if (rc < 0)                                                                \
				return rc;                                                         \
			if (left == 0)                                                             \
				return -EAGAIN;                                                    \
		}                                                                                  \
		name##_back_copy_request(b, b->req_cons, out);                                     \
		b->req_cons++;                                                                     \
		return 0;                                                                          \
	}                                                                                          \
                                                                                                   \
	/* PRODUCER (backend): the response slot of index idx (RING_GET_RESPONSE). */              \
	static inline rsp_t *name##_back_rsp_slot(struct name##_back *b, uint32_t idx)             \
	{                                                                                          \
		return &b->sring->ring[idx & (b->nr_ents - 1)].rsp;                                \
	}                                                                                          \
                                                                                                   \
	/* PRODUCER (backend): the next response slot, claimed (rsp_prod_pvt advances);            \
	 * NULL if every consumed request already has a response (one response per                 \
	 * request: a response slot is the slot of a consumed request). Does not block. */         \
	static inline rsp_t *name##_back_next_rsp(struct name##_back *b)                           \
	{                                                                                          \
		if (b->rsp_prod_pvt == b->req_cons)                                                \
			return NULL;                                                               \
		return name##_back_rsp_slot(b, b->rsp_prod_pvt++);                                 \
	}                                                                                          \
                                                                                                   \
	/* PRODUCER (backend): publish every claimed response (RING_PUSH_RESPONSES), with          \
	 * no notification check; see name_front_push_requests. */                                 \
	static inline void name##_back_push_responses(struct name##_back *b)                       \
	{                                                                                          \
		/* release [A][C]: response slots, and the copies of the requests they             \
		 * answer, before the index; pairs with the front's acquire of rsp_prod. */        \
		atomic_store_explicit(&b->sring->rsp_prod, b->rsp_prod_pvt, memory_order_release); \
	}                                                                                          \
                                                                                                   \
	/* PRODUCER (backend): publish every claimed response and say whether the                  \
	 * frontend must be notified: true iff rsp_event lies in (old, new rsp_prod], old          \
	 * being rsp_prod at the previous check (RING_PUSH_RESPONSES_AND_CHECK_NOTIFY; see         \
	 * name_front_push_requests_check_notify). Does not block. */                              \
	static inline bool name##_back_push_responses_check_notify(struct name##_back *b)          \
	{                                                                                          \
		struct name##_sring *s = b->sring;                                                 \
		uint32_t old = b->rsp_checked;                                                     \
		uint32_t new_ = b->rsp_prod_pvt;                                                   \
		if (new_ == old) /* nothing since the last check: empty range */                   \
			return false;                                                              \
		b->rsp_checked = new_;                                                             \
		/* release [A][C]: pairs with the acquire load of rsp_prod by the front. */        \
		atomic_store_explicit(&s->rsp_prod, new_, memory_order_release);                   \
		/* full [B]: rsp_prod visible before rsp_event is read; pairs with the fence       \
		 * in name_front_final_check_ahead. */                                             \
		atomic_thread_fence(memory_order_seq_cst);                                         \
		uint32_t ev = atomic_load_explicit(&s->rsp_event, memory_order_relaxed);           \
		return ring_event_in_range(ev, old, new_);                                         \
	}                                                                                          \
                                                                                                   \
	/* CONSUMER (frontend): number of responses pushed but not consumed, in *n;                \
	 * -EOVERFLOW if the backend's rsp_prod claims more responses than requests                \
	 * outstanding (a response without a request: an attack). Does not block. */               \
	static inline int name##_front_unconsumed_responses(struct name##_front *f, uint32_t *n)   \
	{                                                                                          \
		/* acquire [A]: pairs with the release store in the back's push. */                \
		uint32_t prod = atomic_load_explicit(&f->sring->rsp_prod, memory_order_acquire);   \
		uint32_t avail = prod - f->rsp_cons;                                               \
		if (avail > f->req_prod_pvt - f->rsp_cons) {                                       \
			*n = 0;                                                                    \
			return -EOVERFLOW;                                                         \
		}                                                                                  \
		f->rsp_seen = prod;                                                                \
		*n = avail;                                                                        \
		return 0;                                                                          \
	}                                                                                          \
                                                                                                   \
	/* CONSUMER (frontend): copy response idx out with one read of every byte                  \
	 * (RING_COPY_RESPONSE); the caller must know idx was pushed. */                           \
	static inline void name##_front_copy_response(const struct name##_front *f, uint32_t idx,  \
						      rsp_t *out)                                  \
	{                                                                                          \
		*out = *(const volatile rsp_t *)&f->sring->ring[idx & (f->nr_ents - 1)].rsp;       \
	}                                                                                          \
                                                                                                   \
	/* CONSUMER (frontend): copy out the next response and consume it (rsp_cons                \
	 * advances, freeing its slot for a new request). 0, -EAGAIN if none, or                   \
	 * -EOVERFLOW. Does not block. */                                                          \
	static inline int name##_front_take_response(struct name##_front *f, rsp_t *out)           \
	{                                                                                          \
		uint32_t left = f->rsp_seen - f->rsp_cons;                                         \
		if (left == 0 || left > f->nr_ents) {                                              \
			int rc = name##_front_unconsumed_responses(f, &left);                      \
			if (rc < 0)                                                                \
				return rc;                                                         \
			if (left == 0)                                                             \
				return -EAGAIN;                                                    \
		}                                                                                  \
		name##_front_copy_response(f, f->rsp_cons, out);                                   \
		f->rsp_cons++;                                                                     \
		return 0;                                                                          \
	}                                                                                          \
                                                                                                   \
	/* CONSUMER (backend), before sleeping on the event channel: if no request is              \
	 * waiting, ask to be notified when the request at req_cons + ahead - 1 is pushed          \
	 * (req_event = req_cons + ahead; ahead = 1 is RING_FINAL_CHECK_FOR_REQUESTS,              \
	 * larger values batch wake-ups: the caller must then bound its sleep), then look          \
	 * again. *n: requests waiting; sleep only if 0. 0 or -EOVERFLOW. Does not block. */       \
	static inline int name##_back_final_check_ahead(struct name##_back *b, uint32_t ahead,     \
							uint32_t *n)                               \
	{                                                                                          \
		int rc = name##_back_unconsumed_requests(b, n);                                    \
		if (rc < 0 || *n > 0)                                                              \
			return rc;                                                                 \
		atomic_store_explicit(&b->sring->req_event, b->req_cons + (ahead ? ahead : 1),     \
				      memory_order_relaxed);                                       \
		/* full [B]: req_event visible before req_prod is reread; pairs with the           \
		 * fence in name_front_push_requests_check_notify. */                              \
		atomic_thread_fence(memory_order_seq_cst);                                         \
		return name##_back_unconsumed_requests(b, n);                                      \
	}                                                                                          \
	static inline int name##_back_final_check_for_requests(struct name##_back *b, uint32_t *n) \
	{                                                                                          \
		return name##_back_final_check_ahead(b, 1, n);                                     \
	}                                                                                          \
                                                                                                   \
	/* CONSUMER (frontend), before sleeping: the same for responses                            \
	 * (RING_FINAL_CHECK_FOR_RESPONSES when ahead = 1). 0 or -EOVERFLOW. */                    \
	static inline int name##_front_final_check_ahead(struct name##_front *f, uint32_t ahead,   \
							 uint32_t *n)                              \
	{                                                                                          \
		int rc = name##_front_unconsumed_responses(f, n);                                  \
		if (rc < 0 || *n > 0)                                                              \
			return rc;                                                                 \
		atomic_store_explicit(&f->sring->rsp_event, f->rsp_cons + (ahead ? ahead : 1),     \
				      memory_order_relaxed);                                       \
		/* full [B]: rsp_event visible before rsp_prod is reread; pairs with the           \
		 * fence in name_back_push_responses_check_notify. */                              \
		atomic_thread_fence(memory_order_seq_cst);                                         \
		return name##_front_unconsumed_responses(f, n);                                    \
	}                                                                                          \
	static inline int name##_front_final_check_for_responses(struct name##_front *f,           \
								 uint32_t *n)                      \
	{                                                                                          \
		return name##_front_final_check_ahead(f, 1, n);                                    \
	}                                                                                          \
                                                                                                   \
	/* CONSUMER (backend): spin up to spin_ns for a request to be pushed; true if one          \
	 * is waiting. The adaptive poller's first half; never sleeps. */                          \
	static inline bool name##_back_poll_requests(struct name##_back *b, uint64_t spin_ns)      \
	{                                                                                          \
		return ring_poll_index(&b->sring->req_prod, b->req_cons, spin_ns);                 \
	}                                                                                          \
                                                                                                   \
	/* CONSUMER (frontend): spin up to spin_ns for a response; true if one waits. */           \
	static inline bool name##_front_poll_responses(struct name##_front *f, uint64_t spin_ns)   \
	{                                                                                          \
		return ring_poll_index(&f->sring->rsp_prod, f->rsp_cons, spin_ns);                 \
	}                                                                                          \
	_Static_assert(1, #name)

#endif
