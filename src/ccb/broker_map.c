/*
 * The broker's uint64 -> pointer map (broker_map.h).
 */

#include <stdlib.h>

#include "broker_map.h"

static size_t bk_hash(uint64_t k, size_t nb)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	return (size_t)(k & (nb - 1));
}

void *bk_map_get(const bk_map *m, uint64_t key)
{
	if (!m->nb)
		return NULL;
	for (size_t i = bk_hash(key, m->nb);; i = (i + 1) & (m->nb - 1)) {
		if (!m->s[i].val)
			return NULL;
		if (m->s[i].key == key)
			return m->s[i].val;
	}
}

/* Place without checking for the key or room. */
static void bk_map_place(bk_mnode *s, size_t nb, uint64_t key, void *val)
{
	size_t i = bk_hash(key, nb);

	while (s[i].val)
		i = (i + 1) & (nb - 1);
	s[i] = (bk_mnode){.key = key, .val = val};
}

static bool bk_map_grow(bk_map *m)
{
	size_t nb = m->nb ? m->nb * 2 : 64;
	bk_mnode *s = calloc(nb, sizeof *s);

	if (!s)
		return false;
	for (size_t i = 0; i < m->nb; i++)
		if (m->s[i].val)
			bk_map_place(s, nb, m->s[i].key, m->s[i].val);
	free(m->s);
	m->s = s;
	m->nb = nb;
	return true;
}

bool bk_map_put(bk_map *m, uint64_t key, void *val)
{
	if (!val)
		return false;
	if (m->nb) {
		for (size_t i = bk_hash(key, m->nb); m->s[i].val; i = (i + 1) & (m->nb - 1))
			if (m->s[i].key == key) {
				m->s[i].val = val;
				return true;
			}
	}
	if ((m->n + 1) * 4 > m->nb * 3 && !bk_map_grow(m))
		return false;
	bk_map_place(m->s, m->nb, key, val);
	m->n++;
	return true;
}

void *bk_map_del(bk_map *m, uint64_t key)
{
	size_t mask = m->nb - 1, i, j;
	void *v;

	if (!m->nb)
		return NULL;
	for (i = bk_hash(key, m->nb);; i = (i + 1) & mask) {
		if (!m->s[i].val)
			return NULL;
		if (m->s[i].key == key)
			break;
	}
	v = m->s[i].val;
	/* Backward shift: pull later entries of the run into the hole unless
	 * their home slot lies cyclically in (hole, their slot]. */
	for (j = i;;) {
		size_t k;
		j = (j + 1) & mask;
		if (!m->s[j].val)
			break;
		k = bk_hash(m->s[j].key, m->nb);
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		m->s[i] = m->s[j];
		i = j;
	}
	m->s[i] = (bk_mnode){0};
	m->n--;
	return v;
}

void *bk_map_next(const bk_map *m, size_t *bucket, bk_mnode **node)
{
	for (size_t i = *node ? *bucket + 1 : *bucket; i < m->nb; i++)
		if (m->s[i].val) {
			*bucket = i;
			*node = &m->s[i];
			return m->s[i].val;
		}
	*bucket = m->nb;
	*node = NULL;
	return NULL;
}

void bk_map_free(bk_map *m)
{
	free(m->s);
	*m = (bk_map){0};
}
