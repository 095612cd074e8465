#include "obs/mapref.h"

#include <pthread.h>
#include <stdlib.h>

#include "map/map.h"

/* One generation of the set. */
struct mapref_hold {
	struct map_set *set;
	int users;   /* readers holding it */
	int retired; /* replaced: free when users drops to 0 */
};

struct mapref {
	pthread_mutex_t mu;
	struct mapref_hold *cur;
};

static struct mapref_hold *hold_new(struct map_set *set)
{
	struct mapref_hold *h = calloc(1, sizeof *h);
	if (h)
		h->set = set;
	return h;
}

static void hold_free(struct mapref_hold *h)
{
	map_set_free(h->set);
	free(h);
}

struct mapref *mapref_new(struct map_set *set)
{
	struct mapref *r = calloc(1, sizeof *r);
	if (!r || !(r->cur = hold_new(set))) {
		free(r);
		map_set_free(set);
		return NULL;
	}
	pthread_mutex_init(&r->mu, NULL);
	return r;
}

void mapref_free(struct mapref *r)
{
	if (!r)
		return;
	hold_free(r->cur);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

struct mapref_hold *mapref_prepare(struct map_set *set)
{
	return hold_new(set);
}

void mapref_discard(struct mapref_hold *next)
{
	free(next);
}

void mapref_install(struct mapref *r, struct mapref_hold *next)
{
	struct mapref_hold *old, *dead = NULL;
	pthread_mutex_lock(&r->mu);
	old = r->cur;
	r->cur = next;
	old->retired = 1;
	if (old->users == 0)
		dead = old;
	pthread_mutex_unlock(&r->mu);
	if (dead)
		hold_free(dead);
}

struct mapref_hold *mapref_acquire(struct mapref *r)
{
	struct mapref_hold *h;
	pthread_mutex_lock(&r->mu);
	h = r->cur;
	h->users++;
	pthread_mutex_unlock(&r->mu);
	return h;
}

const struct map_set *mapref_set(const struct mapref_hold *h)
{
	return h->set;
}

void mapref_release(struct mapref *r, struct mapref_hold *h)
{
	int last;
	pthread_mutex_lock(&r->mu);
	last = --h->users == 0 && h->retired;
	pthread_mutex_unlock(&r->mu);
	if (last)
		hold_free(h);
}
