/* json_strict.c - JSON as RFC 8259 writes it, nothing more.
 *
 * cJSON is lenient: it skips every byte below 0x21 as whitespace, reads
 * numbers with strtod, keeps both members of a duplicated key (and finds
 * the first), and stops at the end of the first value whatever follows.
 * A model header or a report damaged by one byte can then still parse, to
 * other values. Files hfc-eval trusts for results are therefore checked
 * here first: hfc_json_strict scans one value by the grammar (whitespace
 * only space, tab, LF, CR; no control characters in strings; escapes and
 * UTF-8 well formed; numbers as the grammar spells them), and
 * hfc_json_duplicate finds a key given twice in any object of a parsed tree. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hfc/core.h"

#define MAX_DEPTH 512

typedef struct {
    const unsigned char *s;
    size_t len, pos;
    char *why;
    size_t cap;
} scanner;

static int fail(scanner *sc, const char *what)
{
    unsigned c = sc->pos < sc->len ? sc->s[sc->pos] : 0;
    if (sc->pos >= sc->len)
        snprintf(sc->why, sc->cap, "byte %zu: %s (the text ends)", sc->pos, what);
    else if (c < 0x20 || c >= 0x7f)
        snprintf(sc->why, sc->cap, "byte %zu: %s (byte 0x%02x)", sc->pos, what, c);
    else
        snprintf(sc->why, sc->cap, "byte %zu: %s ('%c')", sc->pos, what, (char)c);
    return -1;
}

static int peek(const scanner *sc) { return sc->pos < sc->len ? sc->s[sc->pos] : -1; }

static void skip_space(scanner *sc)
{
    while (sc->pos < sc->len) {
        unsigned char c = sc->s[sc->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            return;
        sc->pos++;
    }
}

static int literal(scanner *sc, const char *word)
{
    size_t n = strlen(word);
    if (sc->len - sc->pos < n || memcmp(sc->s + sc->pos, word, n))
        return fail(sc, "not a JSON value");
    sc->pos += n;
    return 0;
}

static int digits(scanner *sc)
{
    size_t start = sc->pos;
    while (peek(sc) >= '0' && peek(sc) <= '9')
        sc->pos++;
    return sc->pos > start ? 0 : fail(sc, "a number needs a digit here");
}

static int number(scanner *sc)
{
    if (peek(sc) == '-')
        sc->pos++;
    if (peek(sc) == '0')
        sc->pos++;
    else if (digits(sc))
        return -1;
    if (peek(sc) == '.') {
        sc->pos++;
        if (digits(sc))
            return -1;
    }
    if (peek(sc) == 'e' || peek(sc) == 'E') {
        sc->pos++;
        if (peek(sc) == '+' || peek(sc) == '-')
            sc->pos++;
        if (digits(sc))
            return -1;
    }
    return 0;
}

static int hex4(scanner *sc, unsigned *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++, sc->pos++) {
        int c = peek(sc), d = c >= '0' && c <= '9'   ? c - '0'
                              : c >= 'a' && c <= 'f' ? c - 'a' + 10
                              : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                     : -1;
        if (d < 0)
            return fail(sc, "\\u needs four hex digits");
        *v = *v << 4 | (unsigned)d;
    }
    return 0;
}

/* One UTF-8 sequence of 2-4 bytes starting at a lead byte >= 0x80:
 * shortest form, no surrogates, at most U+10FFFF. */
static int utf8(scanner *sc)
{
    unsigned c = sc->s[sc->pos];
    int n = c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : -1;
    if (n < 0)
        return fail(sc, "not UTF-8");
    unsigned lo = 0x80, hi = 0xbf; /* the second byte's range */
    if (c == 0xe0)
        lo = 0xa0;
    else if (c == 0xed)
        hi = 0x9f;
    else if (c == 0xf0)
        lo = 0x90;
    else if (c == 0xf4)
        hi = 0x8f;
    for (int i = 1; i <= n; i++) {
        size_t p = sc->pos + (size_t)i;
        unsigned b = p < sc->len ? sc->s[p] : 0;
        if (b < (i == 1 ? lo : 0x80) || b > (i == 1 ? hi : 0xbf))
            return fail(sc, "not UTF-8");
    }
    sc->pos += (size_t)n + 1;
    return 0;
}

static int string(scanner *sc)
{
    sc->pos++; /* the opening quote */
    for (;;) {
        int c = peek(sc);
        if (c < 0)
            return fail(sc, "a string is not closed");
        if (c == '"') {
            sc->pos++;
            return 0;
        }
        if (c < 0x20)
            return fail(sc, "a control character in a string");
        if (c >= 0x80) {
            if (utf8(sc))
                return -1;
            continue;
        }
        sc->pos++;
        if (c != '\\')
            continue;
        c = peek(sc);
        if (c == 'u') {
            unsigned v, w;
            sc->pos++;
            if (hex4(sc, &v))
                return -1;
            if (v == 0)
                return fail(sc, "a NUL character (\\u0000) in a string");
            if (v >= 0xdc00 && v <= 0xdfff)
                return fail(sc, "a lone low surrogate");
            if (v >= 0xd800 && v <= 0xdbff) {
                if (peek(sc) != '\\' || sc->pos + 1 >= sc->len || sc->s[sc->pos + 1] != 'u')
                    return fail(sc, "a high surrogate without its low half");
                sc->pos += 2;
                if (hex4(sc, &w))
                    return -1;
                if (w < 0xdc00 || w > 0xdfff)
                    return fail(sc, "a high surrogate without its low half");
            }
        } else if (c >= 0 && strchr("\"\\/bfnrt", c) && c) {
            sc->pos++;
        } else {
            return fail(sc, "an unknown escape");
        }
    }
}

static int value(scanner *sc, int depth)
{
    if (depth > MAX_DEPTH)
        return fail(sc, "nested too deeply");
    skip_space(sc);
    int c = peek(sc);
    if (c == '"')
        return string(sc);
    if (c == '-' || (c >= '0' && c <= '9'))
        return number(sc);
    if (c == 't')
        return literal(sc, "true");
    if (c == 'f')
        return literal(sc, "false");
    if (c == 'n')
        return literal(sc, "null");
    if (c != '{' && c != '[')
        return fail(sc, "not a JSON value");
    int close = c == '{' ? '}' : ']';
    sc->pos++;
    skip_space(sc);
    if (peek(sc) == close) {
        sc->pos++;
        return 0;
    }
    for (;;) {
        if (close == '}') {
            skip_space(sc);
            if (peek(sc) != '"')
                return fail(sc, "an object's key must be a string");
            if (string(sc))
                return -1;
            skip_space(sc);
            if (peek(sc) != ':')
                return fail(sc, "':' must follow an object's key");
            sc->pos++;
        }
        if (value(sc, depth + 1))
            return -1;
        skip_space(sc);
        if (peek(sc) == close) {
            sc->pos++;
            return 0;
        }
        if (peek(sc) != ',')
            return fail(sc, close == '}' ? "',' or '}' expected" : "',' or ']' expected");
        sc->pos++;
    }
}

int hfc_json_strict(const char *text, size_t len, size_t *end, char *why, size_t cap)
{
    scanner sc = {(const unsigned char *)text, len, 0, why, cap};
    if (value(&sc, 0))
        return -1;
    *end = sc.pos;
    return 0;
}

int hfc_json_strict_whole(const char *text, size_t len, char *why, size_t cap)
{
    size_t end;
    if (hfc_json_strict(text, len, &end, why, cap))
        return -1;
    scanner sc = {(const unsigned char *)text, len, end, why, cap};
    skip_space(&sc);
    return sc.pos == len ? 0 : fail(&sc, "something follows the JSON value");
}

static int by_name(const void *a, const void *b)
{
    return strcmp((*(const cJSON *const *)a)->string, (*(const cJSON *const *)b)->string);
}

const char *hfc_json_duplicate(const cJSON *v)
{
    if (!cJSON_IsObject(v) && !cJSON_IsArray(v))
        return NULL;
    int n = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, v) n++;
    if (cJSON_IsObject(v) && n > 1) {
        const cJSON **names = malloc((size_t)n * sizeof *names);
        if (!names)
            return "(out of memory)";
        int i = 0;
        cJSON_ArrayForEach(c, v) names[i++] = c;
        qsort(names, (size_t)n, sizeof *names, by_name);
        const char *dup = NULL;
        for (i = 1; i < n && !dup; i++)
            if (!strcmp(names[i - 1]->string, names[i]->string))
                dup = names[i]->string;
        free(names);
        if (dup)
            return dup;
    }
    cJSON_ArrayForEach(c, v)
    {
        const char *dup = hfc_json_duplicate(c);
        if (dup)
            return dup;
    }
    return NULL;
}
