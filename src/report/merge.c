/* merge.c - hfc-eval merge: the shards of one run back into that run's report.
 *
 * Each report object (a JSON value in a file; JSON Lines or --pretty) is
 * split into what a shard changes (PER_SHARD below) and everything else,
 * its key: model, radius and every setting. Objects with the same key are
 * shards of one report; their ranges [first, end) of the set must tile
 * [0, set_images) exactly. The merged report is the first shard's object
 * with the counts summed, the fractions recomputed from them as a single
 * run computes them, and "shard" removed: byte for byte what one run prints,
 * apart from "seconds" (the shards' sum). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hfc/report.h"

/* Fields a shard changes: never part of the key. model_path and data may
 * differ between the machines that ran the shards; the first shard's are kept. */
static const char *const PER_SHARD[] = {"images", "accuracy", "correct", "per_class",
                                        "seconds", "shard", "model_path", "data",
                                        "rescale_skipped"};
/* Objects of counts summed member by member. */
static const char *const SUMMED[] = {"correct", "rescale_skipped"};

typedef struct {
    size_t first, end;
    const char *path; /* the file it came from */
    int index;        /* the object's number in that file, from 1 */
} shard_range;

typedef struct {
    char *key;         /* the object without PER_SHARD fields, printed */
    cJSON *sum;        /* the first shard's object; counts summed into it */
    size_t set_images;
    double seconds;
    shard_range *ranges;
    int n_ranges, cap;
} group;

typedef struct {
    group *groups;
    int n_groups, cap;
} merge_state;

static int is_count(const cJSON *v)
{
    return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= 9e15 &&
           v->valuedouble == floor(v->valuedouble);
}

static const char *describe(const cJSON *o, char *buf, size_t cap)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "model");
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(o, "radius");
    snprintf(buf, cap, "model %s, radius %g", cJSON_IsString(m) ? m->valuestring : "?",
             cJSON_IsNumber(r) ? r->valuedouble : -1.0);
    return buf;
}

/* The shard's range and set size: from "shard", or a whole run's [0, images). */
static hfc_status read_range(const cJSON *o, size_t *first, size_t *end, size_t *set_images,
                             const char *path, int index, hfc_error *err)
{
    const cJSON *images = cJSON_GetObjectItemCaseSensitive(o, "images");
    if (!is_count(images))
        return hfc_fail(err, HFC_ERR_DATA, path, "report %d has no \"images\" count", index);
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(o, "shard");
    if (!sh) {
        *first = 0;
        *end = *set_images = (size_t)images->valuedouble;
        return HFC_OK;
    }
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(sh, "first");
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(sh, "end");
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(sh, "set_images");
    if (!is_count(f) || !is_count(e) || !is_count(n) || f->valuedouble > e->valuedouble ||
        e->valuedouble > n->valuedouble ||
        e->valuedouble - f->valuedouble != images->valuedouble)
        return hfc_fail(err, HFC_ERR_DATA, path,
                        "report %d: \"shard\" needs first <= end <= set_images and end - first = "
                        "images",
                        index);
    *first = (size_t)f->valuedouble;
    *end = (size_t)e->valuedouble;
    *set_images = (size_t)n->valuedouble;
    return HFC_OK;
}

/* Per class, fractions -> counts (round(fraction * images), exact for
 * fractions a report printed), added into sum's counts. to_counts: sum is a
 * first shard whose own fractions become counts. */
static hfc_status inconsistent(const char *path, int index, const char *what, hfc_error *err)
{
    return hfc_fail(err, HFC_ERR_DATA, path,
                    "report %d is not consistent: %s (a damaged or edited report)", index, what);
}

/* A fraction as a report prints it (cJSON's 15 or 17 digits) against the
 * count / images it was printed from. One count more or less moves it by
 * 1 / images, far more than this. */
static int near(double printed, double exact) { return fabs(printed - exact) <= 1e-12; }

/* What one run prints always holds: every count in 0..images, each
 * fraction count / images as it was printed, the classes' images
 * summing to images and their counts to the totals. A report that breaks
 * one of these was damaged or edited, and is refused. */
static hfc_status check_report(const cJSON *o, const char *path, int index, hfc_error *err)
{
    double images = cJSON_GetObjectItemCaseSensitive(o, "images")->valuedouble;
    char what[200];
    const cJSON *c;
    for (size_t k = 0; k < sizeof SUMMED / sizeof SUMMED[0]; k++)
        cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(o, SUMMED[k]))
        if (is_count(c) && c->valuedouble > images) {
            snprintf(what, sizeof what, "\"%s\".\"%.40s\" = %.0f of %.0f images", SUMMED[k],
                     c->string, c->valuedouble, images);
            return inconsistent(path, index, what, err);
        }
    const cJSON *correct = cJSON_GetObjectItemCaseSensitive(o, "correct");
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(o, "accuracy"))
    {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(correct, c->string);
        if (!cJSON_IsNumber(c) || !is_count(n) ||
            !near(c->valuedouble, images ? n->valuedouble / images : 0.0)) {
            snprintf(what, sizeof what, "\"accuracy\".\"%.40s\" is not \"correct\" / \"images\"",
                     c->string);
            return inconsistent(path, index, what, err);
        }
    }
    const cJSON *per = cJSON_GetObjectItemCaseSensitive(o, "per_class");
    if (!per)
        return HFC_OK;
    double class_images = 0;
    cJSON *totals = cJSON_CreateObject(); /* per version: the classes' counts */
    if (!totals)
        return hfc_fail(err, HFC_ERR_NOMEM, path, "out of memory");
    hfc_status st = HFC_OK;
    cJSON_ArrayForEach(c, per)
    {
        const cJSON *ci = cJSON_GetObjectItemCaseSensitive(c, "images");
        if (!is_count(ci) || ci->valuedouble > images) {
            snprintf(what, sizeof what, "class \"%.40s\" has no \"images\" count in 0..%.0f",
                     c->string, images);
            st = inconsistent(path, index, what, err);
            break;
        }
        double n = ci->valuedouble;
        class_images += n;
        const cJSON *v;
        cJSON_ArrayForEach(v, c) if (strcmp(v->string, "images"))
        {
            double count = cJSON_IsNumber(v) ? round(v->valuedouble * n) : -1;
            if (!(count >= 0 && count <= n) || !near(v->valuedouble, n ? count / n : 0.0)) {
                snprintf(what, sizeof what,
                         "class \"%.40s\": \"%.40s\" is not a count of its %.0f images / %.0f",
                         c->string, v->string, n, n);
                st = inconsistent(path, index, what, err);
                break;
            }
            cJSON *t = cJSON_GetObjectItemCaseSensitive(totals, v->string);
            if (t)
                cJSON_SetNumberValue(t, t->valuedouble + count);
            else if (!cJSON_AddNumberToObject(totals, v->string, count))
                st = hfc_fail(err, HFC_ERR_NOMEM, path, "out of memory");
        }
        if (st)
            break;
    }
    if (!st && class_images != images)
        st = inconsistent(path, index, "the classes' \"images\" do not add up to \"images\"", err);
    if (!st)
        cJSON_ArrayForEach(c, totals)
    {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(correct, c->string);
        if (n && (!cJSON_IsNumber(n) || n->valuedouble != c->valuedouble)) {
            snprintf(what, sizeof what,
                     "the classes' \"%.40s\" counts add up to %.0f, \"correct\" says %.0f",
                     c->string, c->valuedouble, cJSON_IsNumber(n) ? n->valuedouble : -1.0);
            st = inconsistent(path, index, what, err);
            break;
        }
    }
    cJSON_Delete(totals);
    return st;
}

/* A shard whose counts have another form than the group's first shard's
 * (in first_path): either may be the damaged one, so both are named. */
static hfc_status form_differs(const char *path, int index, const char *what,
                               const char *first_path, hfc_error *err)
{
    return hfc_fail(err, HFC_ERR_DATA, path, "report %d: %s differs from the shard in %s", index,
                    what, first_path ? first_path : "the same file");
}

/* first_path: NULL for a group's first shard, whose own fractions become
 * counts; else the file of that first shard. */
static hfc_status add_counts(cJSON *sum, const cJSON *o, const char *first_path,
                             const char *path, int index, hfc_error *err)
{
    const int first_shard = !first_path;
    const cJSON *c;
    for (size_t k = 0; k < sizeof SUMMED / sizeof SUMMED[0]; k++) {
        const cJSON *cor = cJSON_GetObjectItemCaseSensitive(o, SUMMED[k]);
        cJSON *scor = cJSON_GetObjectItemCaseSensitive(sum, SUMMED[k]);
        if (!cor && !scor && k > 0)
            continue;  /* optional ones */
        if (!cJSON_IsObject(cor) || !cJSON_IsObject(scor))
            return hfc_fail(err, HFC_ERR_DATA, path, "report %d has no \"%s\" counts", index,
                            SUMMED[k]);
        cJSON_ArrayForEach(c, cor)
        {
            cJSON *s = cJSON_GetObjectItemCaseSensitive(scor, c->string);
            if (!is_count(c) || !s)
                return form_differs(path, index, SUMMED[k][0] == 'c' ? "\"correct\"'s form"
                                                                     : "\"rescale_skipped\"'s form",
                                    first_path, err);
            if (!first_shard)
                cJSON_SetNumberValue(s, s->valuedouble + c->valuedouble);
        }
    }
    const cJSON *per = cJSON_GetObjectItemCaseSensitive(o, "per_class");
    cJSON *sper = cJSON_GetObjectItemCaseSensitive(sum, "per_class");
    cJSON_ArrayForEach(c, per)
    {
        cJSON *sc = cJSON_GetObjectItemCaseSensitive(sper, c->string);
        const cJSON *ci = cJSON_GetObjectItemCaseSensitive(c, "images");
        if (!sc || !is_count(ci))
            return form_differs(path, index, "\"per_class\" (its classes or form)", first_path,
                                err);
        const cJSON *v;
        cJSON_ArrayForEach(v, c)
        {
            cJSON *sv = cJSON_GetObjectItemCaseSensitive(sc, v->string);
            if (!cJSON_IsNumber(v) || !sv)
                return form_differs(path, index, "\"per_class\"'s form", first_path, err);
            double count = strcmp(v->string, "images") ? round(v->valuedouble * ci->valuedouble)
                                                       : v->valuedouble;
            cJSON_SetNumberValue(sv, first_shard ? count : sv->valuedouble + count);
        }
    }
    if (cJSON_GetArraySize(per) != cJSON_GetArraySize(sper))
        return form_differs(path, index, "\"per_class\" (its classes)", first_path, err);
    return HFC_OK;
}

/* Counts back to fractions, as hfc_report_json computes them. */
static void finish(group *g)
{
    cJSON *o = g->sum;
    cJSON_DeleteItemFromObjectCaseSensitive(o, "shard");
    double images = (double)g->set_images;
    cJSON_SetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "images"), images);
    cJSON *acc = cJSON_GetObjectItemCaseSensitive(o, "accuracy");
    cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(o, "correct"))
    {
        cJSON *a = cJSON_GetObjectItemCaseSensitive(acc, c->string);
        if (a)
            cJSON_SetNumberValue(a, images ? c->valuedouble / images : 0.0);
    }
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(o, "per_class"))
    {
        double n = cJSON_GetObjectItemCaseSensitive(c, "images")->valuedouble;
        cJSON *v;
        cJSON_ArrayForEach(v, c) if (strcmp(v->string, "images"))
            cJSON_SetNumberValue(v, n ? v->valuedouble / n : 0.0);
    }
    cJSON_SetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "seconds"),
                         round(g->seconds * 1000.0) / 1000.0);
}

static char *key_of(const cJSON *o)
{
    cJSON *k = cJSON_Duplicate(o, 1);
    if (!k)
        return NULL;
    for (size_t i = 0; i < sizeof PER_SHARD / sizeof PER_SHARD[0]; i++)
        cJSON_DeleteItemFromObjectCaseSensitive(k, PER_SHARD[i]);
    char *text = cJSON_PrintUnformatted(k);
    cJSON_Delete(k);
    return text;
}

/* A report whose key is new, but whose model and radius some group has:
 * name the first setting in which they differ. */
static hfc_status settings_differ(const merge_state *ms, const cJSON *o, const char *path,
                                  int index, hfc_error *err)
{
    const cJSON *sha = cJSON_GetObjectItemCaseSensitive(o, "model_sha256");
    const cJSON *rad = cJSON_GetObjectItemCaseSensitive(o, "radius");
    for (int i = 0; i < ms->n_groups; i++) {
        const cJSON *g = ms->groups[i].sum;
        if (!cJSON_Compare(sha, cJSON_GetObjectItemCaseSensitive(g, "model_sha256"), 1) ||
            !cJSON_Compare(rad, cJSON_GetObjectItemCaseSensitive(g, "radius"), 1))
            continue;
        const cJSON *f;
        const char *field = "?";
        cJSON_ArrayForEach(f, o)
        {
            int per_shard = 0;
            for (size_t p = 0; p < sizeof PER_SHARD / sizeof PER_SHARD[0]; p++)
                per_shard |= !strcmp(f->string, PER_SHARD[p]);
            if (!per_shard && !cJSON_Compare(f, cJSON_GetObjectItemCaseSensitive(g, f->string), 1)) {
                field = f->string;
                break;
            }
        }
        if (!strcmp(field, "?")) /* a field the group's report lacks */
            cJSON_ArrayForEach(f, g) if (!cJSON_GetObjectItemCaseSensitive(o, f->string))
            {
                field = f->string;
                break;
            }
        return hfc_fail(err, HFC_ERR_DATA, path,
                        "report %d differs in \"%s\" from the shard in %s of the same model and "
                        "radius: not shards of one run",
                        index, field, ms->groups[i].ranges[0].path);
    }
    return HFC_OK;
}

static hfc_status add_report(merge_state *ms, cJSON *o, const char *path, int index,
                             hfc_error *err)
{
    if (!cJSON_IsObject(o) || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "model_sha256")))
        return hfc_fail(err, HFC_ERR_DATA, path, "report %d is not an hfc-eval report", index);
    size_t first = 0, end = 0, set_images = 0;
    hfc_status st = read_range(o, &first, &end, &set_images, path, index, err);
    if (st || (st = check_report(o, path, index, err)))
        return st;
    char *key = key_of(o);
    if (!key)
        return hfc_fail(err, HFC_ERR_NOMEM, path, "out of memory");
    group *g = NULL;
    for (int i = 0; i < ms->n_groups && !g; i++)
        if (!strcmp(ms->groups[i].key, key))
            g = &ms->groups[i];
    const cJSON *secs = cJSON_GetObjectItemCaseSensitive(o, "seconds");
    if (!g) {
        if ((st = settings_differ(ms, o, path, index, err))) {
            free(key);
            return st;
        }
        if (ms->n_groups == ms->cap) {
            int cap = ms->cap ? 2 * ms->cap : 16;
            group *grown = realloc(ms->groups, (size_t)cap * sizeof *grown);
            if (!grown) {
                free(key);
                return hfc_fail(err, HFC_ERR_NOMEM, path, "out of memory");
            }
            ms->groups = grown;
            ms->cap = cap;
        }
        g = &ms->groups[ms->n_groups++];
        memset(g, 0, sizeof *g);
        g->key = key;
        g->sum = cJSON_Duplicate(o, 1);
        g->set_images = set_images;
        if (!g->sum)
            return hfc_fail(err, HFC_ERR_NOMEM, path, "out of memory");
        st = add_counts(g->sum, o, NULL, path, index, err);
    } else {
        free(key);
        if (set_images != g->set_images)
            return hfc_fail(err, HFC_ERR_DATA, path,
                            "report %d is a shard of a set of %zu images; the shard in %s, of %zu",
                            index, set_images, g->ranges[0].path, g->set_images);
        st = add_counts(g->sum, o, g->ranges[0].path, path, index, err);
    }
    if (st)
        return st;
    g->seconds += cJSON_IsNumber(secs) ? secs->valuedouble : 0;
    if (g->n_ranges == g->cap) {
        int cap = g->cap ? 2 * g->cap : 8;
        shard_range *grown = realloc(g->ranges, (size_t)cap * sizeof *grown);
        if (!grown)
            return hfc_fail(err, HFC_ERR_NOMEM, path, "out of memory");
        g->ranges = grown;
        g->cap = cap;
    }
    g->ranges[g->n_ranges++] = (shard_range){first, end, path, index};
    return HFC_OK;
}

static int by_first(const void *a, const void *b)
{
    const shard_range *x = a, *y = b;
    return x->first < y->first ? -1 : x->first > y->first ? 1 : (x->end > y->end) - (x->end < y->end);
}

/* The shards of g must cover [0, set_images) once each. */
static hfc_status check_tiling(const merge_state *ms, group *g, hfc_error *err)
{
    char what[300];
    describe(g->sum, what, sizeof what);
    int models = 0; /* distinct models among the groups: a likely cause of a gap */
    const group *other = NULL; /* the first group of another model than g's */
    const cJSON *sha = cJSON_GetObjectItemCaseSensitive(g->sum, "model_sha256");
    for (int i = 0; i < ms->n_groups; i++) {
        const cJSON *si = cJSON_GetObjectItemCaseSensitive(ms->groups[i].sum, "model_sha256");
        int seen = 0;
        for (int j = 0; j < i && !seen; j++)
            seen = cJSON_Compare(si, cJSON_GetObjectItemCaseSensitive(ms->groups[j].sum, "model_sha256"), 1);
        models += !seen;
        if (!other && !cJSON_Compare(si, sha, 1))
            other = &ms->groups[i];
    }
    /* Another group that is incomplete too may hold the missing shard under
     * a setting that differs (a damaged or edited key): name its file. */
    const group *partial = NULL;
    for (int i = 0; i < ms->n_groups && !partial; i++) {
        size_t covered = 0;
        for (int r = 0; r < ms->groups[i].n_ranges; r++)
            covered += ms->groups[i].ranges[r].end - ms->groups[i].ranges[r].first;
        if (&ms->groups[i] != g && covered != ms->groups[i].set_images)
            partial = &ms->groups[i];
    }
    char hint[2400] = "";
    if (models > 1)
        snprintf(hint, sizeof hint, "; the reports are of %d models (another in %.1000s)", models,
                 other->ranges[0].path);
    if (partial)
        snprintf(hint + strlen(hint), sizeof hint - strlen(hint),
                 "; report %d of %.1000s is incomplete too, with other settings",
                 partial->ranges[0].index, partial->ranges[0].path);
    qsort(g->ranges, (size_t)g->n_ranges, sizeof *g->ranges, by_first);
    size_t next = 0;
    for (int i = 0; i < g->n_ranges; i++) {
        const shard_range *r = &g->ranges[i];
        if (r->end == r->first && g->set_images) /* an empty shard covers nothing */
            continue;
        if (r->first > next)
            return hfc_fail(err, HFC_ERR_DATA, r->path,
                            "no shard covers images [%zu, %zu) of %zu (%s): a shard is missing%s",
                            next, r->first, g->set_images, what, hint);
        if (r->first < next)
            return hfc_fail(err, HFC_ERR_DATA, r->path,
                            "report %d covers images [%zu, %zu), overlapping the shard in %s that "
                            "ends at %zu (%s)",
                            r->index, r->first, r->end, g->ranges[i - 1].path, next, what);
        next = r->end;
    }
    if (next != g->set_images)
        return hfc_fail(err, HFC_ERR_DATA, g->ranges[g->n_ranges - 1].path,
                        "no shard covers images [%zu, %zu) of %zu (%s): a shard is missing%s", next,
                        g->set_images, g->set_images, what, hint);
    return HFC_OK;
}

/* Every report of one file (JSON Lines, or --pretty objects one after the
 * other), each read as strict JSON and added to its group. */
static hfc_status read_reports(merge_state *ms, const char *path, hfc_error *err)
{
    uint8_t *raw;
    size_t n;
    hfc_status st = hfc_read_file(path, &raw, &n, err);
    if (st)
        return st;
    const char *buf = (const char *)raw, *p = buf;
    if (memchr(buf, 0, n))
        st = hfc_fail(err, HFC_ERR_DATA, path, "not a JSON report (a NUL byte)");
    for (int index = 1; !st; index++) {
        while (p < buf + n && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
            p++;
        if (p == buf + n) {
            if (index == 1)
                st = hfc_fail(err, HFC_ERR_DATA, path, "no reports in the file");
            break;
        }
        size_t at = (size_t)(p - buf), used;
        char why[160];
        if (hfc_json_strict(p, n - at, &used, why, sizeof why)) {
            st = hfc_fail(err, HFC_ERR_DATA, path, "report %d is not valid JSON: %s "
                          "(counted from the report's first byte, file byte %zu)",
                          index, why, at);
            break;
        }
        cJSON *o = cJSON_ParseWithLength(p, used);
        const char *dup = o ? hfc_json_duplicate(o) : NULL;
        if (!o || dup)
            st = !o ? hfc_fail(err, HFC_ERR_NOMEM, path, "out of memory")
                    : hfc_fail(err, HFC_ERR_DATA, path, "report %d gives the key \"%.100s\" twice",
                               index, dup);
        else
            st = add_report(ms, o, path, index, err);
        cJSON_Delete(o);
        p += used;
    }
    free(raw);
    return st;
}

/* Each group checked to tile its set, finished, printed: *out (len bytes). */
static hfc_status print_groups(merge_state *ms, int pretty, char **out, hfc_error *err)
{
    size_t len = 0, cap = 0;
    for (int i = 0; i < ms->n_groups; i++) {
        group *g = &ms->groups[i];
        hfc_status st = check_tiling(ms, g, err);
        if (st)
            return st;
        finish(g);
        char *line = pretty ? cJSON_Print(g->sum) : cJSON_PrintUnformatted(g->sum);
        size_t need = line ? strlen(line) + 2 : 0;
        if (line && len + need > cap) {
            char *grown = realloc(*out, cap = 2 * (len + need));
            if (!grown) {
                cJSON_free(line);
                line = NULL;
            } else {
                *out = grown;
            }
        }
        if (!line)
            return hfc_fail(err, HFC_ERR_NOMEM, "", "out of memory");
        len += (size_t)sprintf(*out + len, "%s\n", line);
        cJSON_free(line);
    }
    return HFC_OK;
}

hfc_status hfc_merge(const char *const *paths, int n_paths, int pretty, char **text,
                     hfc_error *err)
{
    merge_state ms = {0};
    hfc_status st = HFC_OK;
    char *out = NULL;
    *text = NULL;
    for (int f = 0; f < n_paths && !st; f++)
        st = read_reports(&ms, paths[f], err);
    if (!st)
        st = print_groups(&ms, pretty, &out, err);
    for (int i = 0; i < ms.n_groups; i++) {
        free(ms.groups[i].key);
        cJSON_Delete(ms.groups[i].sum);
        free(ms.groups[i].ranges);
    }
    free(ms.groups);
    if (st) {
        free(out);
        return st;
    }
    *text = out ? out : calloc(1, 1);
    return *text ? HFC_OK : hfc_fail(err, HFC_ERR_NOMEM, "", "out of memory");
}
