/*
 * mapref — the current mapping set, shared between the event loop (which
 * swaps it on SIGHUP) and other threads that apply it (the HTTP playground).
 *
 * The holder owns the sets. A reader acquires the current set and releases
 * it when done; mapref_install() makes a new set current and frees the old one at
 * once if nobody holds it, otherwise when its last reader releases it. No
 * caller ever waits for another: the loop never blocks on a reader.
 */
#ifndef HB_MAPREF_H
#define HB_MAPREF_H

struct map_set;
struct mapref;
struct mapref_hold;

/* Takes ownership of set (also on failure: NULL means out of memory and the
 * set was freed). */
struct mapref *mapref_new(struct map_set *set);
/* Frees the current set; every hold must have been released. */
void mapref_free(struct mapref *r);

/* Replacing the set, in two steps so that the step which can fail comes
 * before the caller commits to the new set elsewhere:
 * mapref_prepare() wraps set (NULL when out of memory; set is not taken);
 * mapref_install() makes it current and owned, and cannot fail: the
 * previous set is freed now if unused, else by its last reader;
 * mapref_discard() drops a prepared wrapper that was not installed (the
 * set is not freed). */
struct mapref_hold *mapref_prepare(struct map_set *set);
void mapref_install(struct mapref *r, struct mapref_hold *next);
void mapref_discard(struct mapref_hold *next);

/* The current set, kept alive until mapref_release(). Any thread. */
struct mapref_hold *mapref_acquire(struct mapref *r);
const struct map_set *mapref_set(const struct mapref_hold *h);
void mapref_release(struct mapref *r, struct mapref_hold *h);

#endif
