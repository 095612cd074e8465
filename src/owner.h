/*
 * owner — "used on one thread only", checked in debug builds.
 *
 * The ledger, the publisher's completion side (pub_drain) and the pipeline
 * belong to the event-loop thread. Each embeds a struct owner and checks it
 * at its entry points:
 *
 *	assert(owner_here(&l->owner));
 *
 * The first check claims the object for the calling thread (objects are
 * often made on one thread and handed to the loop before it starts); every
 * later one answers whether it runs on that thread. Inside assert(), a
 * release build (NDEBUG, see configure --enable-debug) neither evaluates
 * nor pays for it.
 */
#ifndef HB_OWNER_H
#define HB_OWNER_H

#include <pthread.h>

struct owner {
	pthread_t thread;
	int claimed;
};

static inline int owner_here(struct owner *o)
{
	if (!o->claimed) {
		o->thread = pthread_self();
		o->claimed = 1;
		return 1;
	}
	return pthread_equal(o->thread, pthread_self());
}

#endif
