/*
 * ckpt — see ckpt.h. Freeing and canonical ordering of checkpoint trees.
 */
#include "persist/ckpt.h"

#include <stdlib.h>
#include <string.h>

static void ckpt_series_free(struct ckpt_series *s)
{
    free(s->metric);
    free(s->values);
}

void ckpt_level_free(struct ckpt_level *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->series_count; i++)
        ckpt_series_free(&l->series[i]);
    for (size_t i = 0; i < l->child_count; i++)
        ckpt_level_free(&l->children[i]);
    free(l->series);
    free(l->children);
    free(l->name);
    memset(l, 0, sizeof *l);
}

void ckpt_file_free(struct ckpt_file *f)
{
    if (f == NULL)
        return;
    ckpt_level_free(&f->host);
    memset(f, 0, sizeof *f);
}

/* strcmp compares as unsigned char, which is the byte order the formats use. */
static int ckpt_series_cmp(const void *a, const void *b)
{
    const struct ckpt_series *x = a, *y = b;
    return strcmp(x->metric, y->metric);
}

static int ckpt_level_cmp(const void *a, const void *b)
{
    const struct ckpt_level *x = a, *y = b;
    return strcmp(x->name, y->name);
}

void ckpt_level_sort(struct ckpt_level *l)
{
    if (l->series_count > 1)
        qsort(l->series, l->series_count, sizeof *l->series, ckpt_series_cmp);
    if (l->child_count > 1)
        qsort(l->children, l->child_count, sizeof *l->children, ckpt_level_cmp);
    for (size_t i = 0; i < l->child_count; i++)
        ckpt_level_sort(&l->children[i]);
}
