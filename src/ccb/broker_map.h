/*
 * The broker's containers: an intrusive doubly linked list and a
 * uint64 -> pointer map. Nothing broker-specific; no locking (the owner
 * locks). Not installed.
 *
 * Include as "broker_map.h" (broker_internal.h does): only src/ccb/broker*.c
 * and the tests that look inside the broker.
 */
#ifndef CCB_BROKER_MAP_H
#define CCB_BROKER_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- intrusive doubly linked list ---------------------------------------- */

typedef struct bk_list {
	struct bk_list *prev, *next;
} bk_list;

static inline void bk_list_init(bk_list *l) { l->prev = l->next = l; }
static inline bool bk_list_empty(const bk_list *l) { return l->next == l; }
static inline bool bk_list_linked(const bk_list *n) { return n->next && n->next != n; }
static inline void bk_list_add_tail(bk_list *head, bk_list *n)
{
	n->prev = head->prev;
	n->next = head;
	head->prev->next = n;
	head->prev = n;
}
static inline void bk_list_del(bk_list *n)
{
	if (!n->next)
		return;
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = n;
}
#define bk_container(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

/* ---- uint64 -> pointer map ------------------------------------------------- */

/* Open addressing with linear probing (no allocation per entry: 16 bytes a
 * slot, at most 3/4 full). A NULL value marks an empty slot; values are
 * never NULL. */
typedef struct bk_mnode {
	uint64_t key;
	void *val;
} bk_mnode;

typedef struct bk_map {
	bk_mnode *s;
	size_t nb, n;
} bk_map;

void *bk_map_get(const bk_map *m, uint64_t key);
bool bk_map_put(bk_map *m, uint64_t key, void *val);
void *bk_map_del(bk_map *m, uint64_t key);
void bk_map_free(bk_map *m);
/* Iterate: *bucket = 0 and *node = NULL to start; returns NULL at the end.
 * Do not modify the map meanwhile. */
void *bk_map_next(const bk_map *m, size_t *bucket, bk_mnode **node);

#endif
