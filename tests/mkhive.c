/*
 * mkhive - write a Windows registry hive file ("regf" primary file) from a
 * text description in a subset of the .reg format.
 *
 * It exists so the test suite can build small, realistic SOFTWARE and SYSTEM
 * hives from readable text instead of shipping binary files.  The layout
 * follows regf-format-specification.md: a 4096-byte base block, then hive
 * bins holding cells (nk, vk, sk, lh/lf, db, value lists, raw data).
 * Output is deterministic: every timestamp is one fixed constant and every
 * unused byte is zero, so the same input always gives the same bytes.
 *
 * Usage: mkhive [--minor N] [--seq P,S] [--bad-checksum] [--name NAME]
 *               INPUT.reg OUTPUT
 *
 * Input (UTF-8; the form `hivexregedit --export` writes, plus extensions):
 *   Windows Registry Editor Version 5.00     optional header (or REGEDIT4)
 *   ; comment                                ignored, as are blank lines
 *   [\Path\To\Key]                           key relative to the hive root;
 *                                            parents are created implicitly,
 *                                            [\] or [] is the root key
 *   "name"=dword:0000000a                    REG_DWORD (exactly 8 hex digits)
 *   "name"="text"                            REG_SZ (escapes \\ and \")
 *   "name"=str(N):"text"                     string data of type N
 *   "name"=hex:aa,bb,\                       REG_BINARY, continued on the
 *     cc,dd                                  next line after a backslash
 *   "name"=hex(N):aa,bb                      data of type N (hex)
 *   "name"=fill(N):COUNT,BB                  COUNT (decimal) bytes of value BB
 *   "name"=unset(N)                          type N, data size 0, data offset
 *                                            0xFFFFFFFF ("unset" value)
 *   @=...                                    the default (unnamed) value
 *   ;mkhive: class TEXT                      the current key's class name
 *                                            (ASCII, stored UTF-16LE)
 *   ;mkhive: own-sk                          the current key gets a security
 *                                            record of its own (count 1),
 *                                            linked into the sk list; the
 *                                            other keys share the root's
 *   (both are comments to every other reader)
 *
 * Errors: "mkhive: FILE:LINE: reason" on stderr and exit status 1;
 * usage errors exit with status 2.
 */

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Format constants ------------------------------------------------- */

#define BASE_BLOCK_SIZE 4096u
#define BIN_ALIGN 4096u
#define BIN_HEADER_SIZE 32u
#define BIG_CELL (BIN_ALIGN - BIN_HEADER_SIZE) /* larger cells get own bin */
#define DB_SEGMENT 16344u      /* max bytes in one big-data segment */
#define DB_MIN_MINOR 4u        /* big data ("db") exists from version 1.4 */
#define LH_MIN_MINOR 5u        /* hash leaves ("lh") exist from version 1.5 */
#define MAX_DATA_LEN (65535u * DB_SEGMENT) /* db segment count is 16-bit */
#define MAX_KEY_NAME 255u
#define MAX_VALUE_NAME 16383u
#define MAX_SUBKEYS 65535u     /* one lh/lf list has a 16-bit count */
#define MAX_FILE_NAME_CHARS 31u /* 64-byte UTF-16LE field, keep a NUL */
#define NO_CELL 0xFFFFFFFFu
#define INLINE_DATA 0x80000000u
#define CHECKSUM_SPOIL 0x5a5a5a5au

/* 2021-01-01 00:00:00 UTC as a FILETIME: fixed so output is reproducible. */
#define FIXED_FILETIME UINT64_C(132539328000000000)

#define KEY_HIVE_ENTRY 0x0004u
#define KEY_NO_DELETE 0x0008u
#define KEY_COMP_NAME 0x0020u
#define VALUE_COMP_NAME 0x0001u

#define NK_FIXED_SIZE 76u      /* nk record without the name */
#define VK_FIXED_SIZE 20u      /* vk record without the name */
#define SK_FIXED_SIZE 20u      /* sk record without the descriptor */
#define ROOT_NAME "ROOT"

/*
 * The one security descriptor every key shares (self-relative):
 * control SE_SELF_RELATIVE | SE_DACL_PRESENT, a DACL with one
 * ACCESS_ALLOWED ACE (object+container inherit) giving KEY_ALL_ACCESS to
 * Everyone (S-1-1-0), owner BUILTIN\Administrators (S-1-5-32-544), group
 * SYSTEM (S-1-5-18).  Same layout Windows uses: DACL first, then SIDs.
 */
static const uint8_t security_descriptor[] = {
    0x01, 0x00, 0x04, 0x80,             /* revision 1, control 0x8004 */
    0x30, 0x00, 0x00, 0x00,             /* owner at 48 */
    0x40, 0x00, 0x00, 0x00,             /* group at 64 */
    0x00, 0x00, 0x00, 0x00,             /* no SACL */
    0x14, 0x00, 0x00, 0x00,             /* DACL at 20 */
    /* ACL: revision 2, size 28, one ACE */
    0x02, 0x00, 0x1c, 0x00, 0x01, 0x00, 0x00, 0x00,
    /* ACE: ACCESS_ALLOWED, OI|CI, size 20, mask KEY_ALL_ACCESS, S-1-1-0 */
    0x00, 0x03, 0x14, 0x00, 0x3f, 0x00, 0x0f, 0x00,
    0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
    /* owner S-1-5-32-544 */
    0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05,
    0x20, 0x00, 0x00, 0x00, 0x20, 0x02, 0x00, 0x00,
    /* group S-1-5-18 */
    0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x12, 0x00, 0x00, 0x00,
};

/* ---- Small utilities -------------------------------------------------- */

static void fatal(const char *fmt, ...)
{
    va_list ap;

    fputs("mkhive: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);

    if (!q)
        fatal("out of memory");
    return q;
}

static char *xstrndup(const char *s, size_t n)
{
    char *d = xrealloc(NULL, n + 1);

    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* Grow a dynamic array of `*cap` elements so that it can hold `need`. */
static void *grow_array(void *p, size_t *cap, size_t need, size_t elem)
{
    size_t n = *cap ? *cap : 8;

    if (need <= *cap)
        return p;
    while (n < need) {
        if (n > SIZE_MAX / 2 / elem)
            fatal("out of memory");
        n *= 2;
    }
    *cap = n;
    return xrealloc(p, n * elem);
}

static void put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, v & 0xffffu);
    put16(p + 2, v >> 16);
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static size_t align_up(size_t n, size_t a)
{
    return (n + a - 1) / a * a;
}

/* Registry names compare case-insensitively; ours are ASCII only. */
static int ascii_upper(int c)
{
    return c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c;
}

static int ascii_casecmp(const char *a, const char *b)
{
    while (*a && ascii_upper((unsigned char)*a) ==
                     ascii_upper((unsigned char)*b)) {
        a++;
        b++;
    }
    return ascii_upper((unsigned char)*a) - ascii_upper((unsigned char)*b);
}

static int hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int is_space(int c)
{
    return c == ' ' || c == '\t';
}

static char *skip_space(char *s)
{
    while (is_space((unsigned char)*s))
        s++;
    return s;
}

static void strip_trailing_space(char *s)
{
    size_t n = strlen(s);

    while (n > 0 && (is_space((unsigned char)s[n - 1]) || s[n - 1] == '\r'))
        s[--n] = '\0';
}

/* ---- Growable byte buffer --------------------------------------------- */

struct bytes {
    uint8_t *p;
    size_t len, cap;
};

/* Make room for `extra` more bytes; new space is zeroed. */
static void bytes_reserve(struct bytes *b, size_t extra)
{
    size_t old = b->cap;

    if (extra > SIZE_MAX - b->len)
        fatal("out of memory");
    b->p = grow_array(b->p, &b->cap, b->len + extra, 1);
    memset(b->p + old, 0, b->cap - old);
}

static void bytes_push(struct bytes *b, uint8_t c)
{
    bytes_reserve(b, 1);
    b->p[b->len++] = c;
}

static void bytes_append(struct bytes *b, const void *src, size_t n)
{
    bytes_reserve(b, n);
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void bytes_push_utf16(struct bytes *b, uint32_t unit)
{
    bytes_push(b, (uint8_t)unit);
    bytes_push(b, (uint8_t)(unit >> 8));
}

/* ---- The key tree ----------------------------------------------------- */

struct value {
    char *name;      /* ASCII; "" is the default value */
    uint32_t type;
    uint8_t *data;
    size_t len;
    int unset;       /* stored as data size 0, data offset 0xFFFFFFFF */
};

struct key {
    char *name;
    const struct key *parent;
    size_t id;       /* creation number, used by the child index */
    struct key **kids;
    size_t nkids, capkids;
    struct value *vals;
    size_t nvals, capvals;
    uint32_t cell;   /* offset of this key's nk cell, set by the layout */
    char *class_name; /* ;mkhive: class TEXT, or NULL */
    int own_sk;       /* ;mkhive: own-sk */
};

/* Every non-root key, hashed by (parent, upper-cased name): finding a child
 * stays fast even under a key with tens of thousands of subkeys (a linear
 * search made 65535 siblings take 10 seconds). */
struct key_index {
    struct key **slots;  /* open addressing, linear probing */
    size_t cap, count, next_id;
};

static struct key *key_new(const struct key *parent, size_t id,
                           const char *name, size_t len)
{
    struct key *k = xrealloc(NULL, sizeof *k);

    memset(k, 0, sizeof *k);
    k->name = xstrndup(name, len);
    k->parent = parent;
    k->id = id;
    return k;
}

static void key_free(struct key *k)
{
    free(k->class_name);
    for (size_t i = 0; i < k->nkids; i++)
        key_free(k->kids[i]);
    for (size_t i = 0; i < k->nvals; i++) {
        free(k->vals[i].name);
        free(k->vals[i].data);
    }
    free(k->kids);
    free(k->vals);
    free(k->name);
    free(k);
}

/* FNV-1a over the upper-cased name, seeded with the parent's id. */
static size_t child_hash(const struct key *parent, const char *name,
                         size_t len)
{
    uint64_t h = UINT64_C(14695981039346656037) ^ parent->id;

    for (size_t i = 0; i < len; i++) {
        h ^= (uint64_t)ascii_upper((unsigned char)name[i]);
        h *= UINT64_C(1099511628211);
    }
    return (size_t)h;
}

static int is_child_named(const struct key *k, const struct key *parent,
                          const char *name, size_t len)
{
    if (k->parent != parent || strlen(k->name) != len)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (ascii_upper((unsigned char)k->name[i]) !=
            ascii_upper((unsigned char)name[i]))
            return 0;
    }
    return 1;
}

/* The slot holding that child, or the empty slot where it would go. */
static struct key **index_slot(struct key_index *ix, const struct key *parent,
                               const char *name, size_t len)
{
    size_t i = child_hash(parent, name, len) & (ix->cap - 1);

    while (ix->slots[i] && !is_child_named(ix->slots[i], parent, name, len))
        i = (i + 1) & (ix->cap - 1);
    return &ix->slots[i];
}

/* Keep the table at most half full (capacity is a power of two). */
static void index_grow(struct key_index *ix)
{
    struct key **old = ix->slots;
    size_t oldcap = ix->cap;

    if (2 * (ix->count + 1) <= ix->cap)
        return;
    ix->cap = oldcap ? 2 * oldcap : 64;
    ix->slots = xrealloc(NULL, ix->cap * sizeof *ix->slots);
    memset(ix->slots, 0, ix->cap * sizeof *ix->slots);
    for (size_t i = 0; i < oldcap; i++) {
        const struct key *k = old[i];

        if (k)
            *index_slot(ix, k->parent, k->name, strlen(k->name)) = old[i];
    }
    free(old);
}

/* Find the child named `name` (case-insensitively) or create it.
 * NULL when the key already has the most subkeys one list can hold. */
static struct key *key_child(struct key_index *ix, struct key *k,
                             const char *name, size_t len)
{
    struct key **slot;

    index_grow(ix);
    slot = index_slot(ix, k, name, len);
    if (*slot)
        return *slot;
    if (k->nkids >= MAX_SUBKEYS)
        return NULL;
    *slot = key_new(k, ++ix->next_id, name, len);
    ix->count++;
    k->kids = grow_array(k->kids, &k->capkids, k->nkids + 1, sizeof *k->kids);
    k->kids[k->nkids++] = *slot;
    return *slot;
}

static size_t key_count(const struct key *k)
{
    size_t n = 1;

    for (size_t i = 0; i < k->nkids; i++)
        n += key_count(k->kids[i]);
    return n;
}

/* ---- Parser ----------------------------------------------------------- */

struct parser {
    const char *file;
    char **lines;
    size_t nlines;
    size_t lineno;       /* 1-based line of the statement being parsed */
    struct key *root;
    struct key *cur;     /* key of the current [section], NULL before one */
    struct key_index index;
};

static void parse_error(const struct parser *p, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "mkhive: %s:%zu: ", p->file, p->lineno);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static char *read_whole_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    struct bytes b = {0};
    size_t n;

    if (!f)
        fatal("%s: %s", path, strerror(errno));
    do {
        bytes_reserve(&b, 65536);
        n = fread(b.p + b.len, 1, 65536, f);
        b.len += n;
    } while (n > 0);
    if (ferror(f))
        fatal("%s: read error", path);
    fclose(f);
    bytes_push(&b, '\0');
    *len = b.len - 1;
    return (char *)b.p;
}

/* Split the text into NUL-terminated lines in place. */
static void split_lines(struct parser *p, char *text, size_t len)
{
    size_t cap = 0;
    char *s = text;

    if (len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
        s += 3;                          /* UTF-8 byte order mark */
    while (*s) {
        char *nl = strchr(s, '\n');

        p->lines = grow_array(p->lines, &cap, p->nlines + 1, sizeof *p->lines);
        p->lines[p->nlines++] = s;
        if (!nl)
            break;
        *nl = '\0';
        s = nl + 1;
    }
}

static void check_ascii_name(const struct parser *p, const char *what,
                             const char *s, size_t len, size_t max)
{
    if (len > max)
        parse_error(p, "%s longer than %zu characters", what, max);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c < 0x20 || c > 0x7e)
            parse_error(p, "%s must be printable ASCII (byte 0x%02x)", what,
                        c);
    }
}

/* [\Path\To\Key]: make p->cur that key, creating missing parents. */
static void parse_section(struct parser *p, char *s)
{
    size_t n = strlen(s);
    struct key *k = p->root;

    if (s[n - 1] != ']')
        parse_error(p, "key line must end with ']'");
    s[n - 1] = '\0';
    s++;
    if (*s == '-')
        parse_error(p, "key deletion ([-...]) is not supported");
    if (*s == '\\')
        s++;
    while (*s) {
        char *end = strchr(s, '\\');
        size_t len = end ? (size_t)(end - s) : strlen(s);

        if (len == 0)
            parse_error(p, "empty key name in path");
        check_ascii_name(p, "key name", s, len, MAX_KEY_NAME);
        k = key_child(&p->index, k, s, len);
        if (!k)
            parse_error(p, "more than %u subkeys under one key", MAX_SUBKEYS);
        if (!end)
            break;
        s = end + 1;
        if (*s == '\0')
            parse_error(p, "key path ends with a backslash");
    }
    p->cur = k;
}

/* Parse "..." at s (which points at the opening quote); \\ and \" are the
 * only escapes.  Returns the position after the closing quote. */
static char *parse_quoted(const struct parser *p, char *s, struct bytes *out)
{
    for (s++; *s != '"'; s++) {
        if (*s == '\0')
            parse_error(p, "missing closing quote");
        if (*s == '\\') {
            s++;
            if (*s != '\\' && *s != '"')
                parse_error(p, "unsupported escape '\\%c' (only \\\\ and "
                            "\\\" are allowed)", *s ? *s : ' ');
        }
        bytes_push(out, (uint8_t)*s);
    }
    return s + 1;
}

/* Decode one UTF-8 sequence at s[*i] into a code point, or -1. */
static long utf8_next(const uint8_t *s, size_t len, size_t *i)
{
    static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
    uint32_t c = s[*i];
    size_t n = c < 0x80 ? 1 : c >= 0xc2 && c < 0xe0 ? 2
             : c >= 0xe0 && c < 0xf0 ? 3 : c >= 0xf0 && c < 0xf5 ? 4 : 0;

    if (n == 0 || *i + n > len)
        return -1;
    c &= n == 1 ? 0x7f : 0x7fu >> n;
    for (size_t k = 1; k < n; k++) {
        if ((s[*i + k] & 0xc0) != 0x80)
            return -1;
        c = c << 6 | (s[*i + k] & 0x3fu);
    }
    if (c < min[n] || c > 0x10ffff || (c >= 0xd800 && c < 0xe000))
        return -1;
    *i += n;
    return (long)c;
}

/* Registry strings are UTF-16LE with a terminating NUL. */
static void utf8_to_utf16le(const struct parser *p, const struct bytes *in,
                            struct bytes *out)
{
    size_t i = 0;

    while (i < in->len) {
        long c = utf8_next(in->p, in->len, &i);

        if (c < 0)
            parse_error(p, "string is not valid UTF-8");
        if (c >= 0x10000) {
            c -= 0x10000;
            bytes_push_utf16(out, 0xd800u + ((uint32_t)c >> 10));
            bytes_push_utf16(out, 0xdc00u + ((uint32_t)c & 0x3ffu));
        } else {
            bytes_push_utf16(out, (uint32_t)c);
        }
    }
    bytes_push_utf16(out, 0);
}

static void expect_end(const struct parser *p, const char *s)
{
    if (*s != '\0')
        parse_error(p, "unexpected text after value: \"%s\"", s);
}

/* "text" -> UTF-16LE string data. */
static void parse_string_data(const struct parser *p, char *s,
                              struct bytes *out)
{
    struct bytes utf8 = {0};

    if (*s != '"')
        parse_error(p, "expected a quoted string");
    s = parse_quoted(p, s, &utf8);
    expect_end(p, s);
    utf8_to_utf16le(p, &utf8, out);
    free(utf8.p);
}

/* aa,bb,cc (spaces allowed around bytes; empty means no data). */
static void parse_hex_bytes(const struct parser *p, char *s, struct bytes *out)
{
    s = skip_space(s);
    if (*s == '\0')
        return;
    for (;;) {
        int hi, lo;

        s = skip_space(s);
        hi = hex_digit((unsigned char)s[0]);
        lo = hi < 0 ? -1 : hex_digit((unsigned char)s[1]);
        if (lo < 0)
            parse_error(p, "expected two hex digits at \"%.10s\"", s);
        bytes_push(out, (uint8_t)(hi << 4 | lo));
        s = skip_space(s + 2);
        if (*s == '\0')
            return;
        if (*s != ',')
            parse_error(p, "expected ',' between hex bytes at \"%.10s\"", s);
        s++;
    }
}

/* "N)" with N hexadecimal: the value type of hex(N), str(N), ... */
static char *parse_type(const struct parser *p, char *s, uint32_t *type)
{
    size_t n = 0;

    *type = 0;
    for (; hex_digit((unsigned char)*s) >= 0; s++, n++)
        *type = *type << 4 | (uint32_t)hex_digit((unsigned char)*s);
    if (n == 0 || n > 8 || *s != ')')
        parse_error(p, "bad type number: expected 1 to 8 hex digits and ')'");
    return s + 1;
}

static char *expect_prefix(const struct parser *p, char *s, const char *pre)
{
    size_t n = strlen(pre);

    if (strncmp(s, pre, n) != 0)
        parse_error(p, "expected \"%s\" at \"%.10s\"", pre, s);
    return s + n;
}

static void parse_dword(const struct parser *p, char *s, struct bytes *out)
{
    uint32_t v = 0;

    for (int i = 0; i < 8; i++) {
        int d = hex_digit((unsigned char)s[i]);

        if (d < 0)
            parse_error(p, "dword: needs exactly 8 hex digits");
        v = v << 4 | (uint32_t)d;
    }
    expect_end(p, s + 8);
    for (int i = 0; i < 4; i++)
        bytes_push(out, (uint8_t)(v >> (8 * i)));
}

/* fill(N):COUNT,BB -> COUNT bytes equal to BB; makes big values cheaply. */
static void parse_fill(const struct parser *p, char *s, struct bytes *out)
{
    uint64_t count = 0;
    int hi, lo;

    if (*s < '0' || *s > '9')
        parse_error(p, "fill: expected a decimal byte count");
    for (; *s >= '0' && *s <= '9'; s++) {
        count = count * 10 + (uint64_t)(*s - '0');
        if (count > MAX_DATA_LEN)
            parse_error(p, "fill: count larger than %u", MAX_DATA_LEN);
    }
    s = expect_prefix(p, s, ",");
    hi = hex_digit((unsigned char)s[0]);
    lo = hi < 0 ? -1 : hex_digit((unsigned char)s[1]);
    if (lo < 0)
        parse_error(p, "fill: expected a two-digit hex byte");
    expect_end(p, s + 2);
    bytes_reserve(out, (size_t)count);
    memset(out->p + out->len, hi << 4 | lo, (size_t)count);
    out->len += (size_t)count;
}

/* Right-hand side of a value line: fills v->type, v->data, v->len. */
static void parse_data(const struct parser *p, char *s, struct value *v)
{
    struct bytes data = {0};

    if (*s == '"') {
        v->type = 1;
        parse_string_data(p, s, &data);
    } else if (strncmp(s, "dword:", 6) == 0) {
        v->type = 4;
        parse_dword(p, s + 6, &data);
    } else if (strncmp(s, "hex:", 4) == 0) {
        v->type = 3;
        parse_hex_bytes(p, s + 4, &data);
    } else if (strncmp(s, "hex(", 4) == 0) {
        s = expect_prefix(p, parse_type(p, s + 4, &v->type), ":");
        parse_hex_bytes(p, s, &data);
    } else if (strncmp(s, "str(", 4) == 0) {
        s = expect_prefix(p, parse_type(p, s + 4, &v->type), ":");
        parse_string_data(p, s, &data);
    } else if (strncmp(s, "fill(", 5) == 0) {
        s = expect_prefix(p, parse_type(p, s + 5, &v->type), ":");
        parse_fill(p, s, &data);
    } else if (strncmp(s, "unset(", 6) == 0) {
        expect_end(p, parse_type(p, s + 6, &v->type));
        v->unset = 1;
    } else if (*s == '-') {
        parse_error(p, "value deletion (=-) is not supported");
    } else {
        parse_error(p, "unrecognised value data \"%.20s\"", s);
    }
    if (data.len > MAX_DATA_LEN)
        parse_error(p, "value data longer than %u bytes", MAX_DATA_LEN);
    v->data = data.p;
    v->len = data.len;
}

static void add_value(const struct parser *p, struct key *k, struct value *v)
{
    for (size_t i = 0; i < k->nvals; i++) {
        if (ascii_casecmp(k->vals[i].name, v->name) == 0)
            parse_error(p, "duplicate value name \"%s\" in key %s", v->name,
                        k->name);
    }
    k->vals = grow_array(k->vals, &k->capvals, k->nvals + 1, sizeof *k->vals);
    k->vals[k->nvals++] = *v;
}

/* "name"=data or @=data. */
static void parse_value_line(struct parser *p, char *s)
{
    struct value v = {0};

    if (!p->cur)
        parse_error(p, "value line before any [key] line");
    if (*s == '@') {
        s++;
    } else {
        struct bytes name = {0};

        s = parse_quoted(p, s, &name);
        check_ascii_name(p, "value name", (char *)name.p, name.len,
                         MAX_VALUE_NAME);
        v.name = xstrndup(name.p ? (char *)name.p : "", name.len);
        free(name.p);
    }
    if (!v.name)
        v.name = xstrndup("", 0);
    if (*s != '=')
        parse_error(p, "expected '=' after the value name");
    parse_data(p, s + 1, &v);
    add_value(p, p->cur, &v);
}

/* ";mkhive: class TEXT" or ";mkhive: own-sk" for the current key. */
static void parse_directive(struct parser *p, char *s)
{
    if (!p->cur)
        parse_error(p, "mkhive directive before any [key] line");
    if (strncmp(s, "class ", 6) == 0) {
        check_ascii_name(p, "class name", s + 6, strlen(s + 6), MAX_KEY_NAME);
        free(p->cur->class_name);
        p->cur->class_name = xstrndup(s + 6, strlen(s + 6));
    } else if (strcmp(s, "own-sk") == 0 && p->cur != p->root) {
        p->cur->own_sk = 1;
    } else {
        parse_error(p, "unknown mkhive directive (class TEXT, own-sk)");
    }
}

/* A value line ending in a backslash continues on the next line (regedit
 * wraps long hex data that way).  Returns the joined statement. */
static char *join_continuations(struct parser *p, size_t *i)
{
    struct bytes text = {0};
    char *line = p->lines[*i];

    for (;;) {
        size_t n = strlen(line);

        if (n == 0 || line[n - 1] != '\\' || *i + 1 >= p->nlines) {
            bytes_append(&text, line, n);
            break;
        }
        line[n - 1] = '\0';
        strip_trailing_space(line);
        bytes_append(&text, line, strlen(line));
        ++*i;
        line = skip_space(p->lines[*i]);
        strip_trailing_space(line);
    }
    bytes_push(&text, '\0');
    return (char *)text.p;
}

static int is_header(const char *s)
{
    return strcmp(s, "Windows Registry Editor Version 5.00") == 0 ||
           strcmp(s, "REGEDIT4") == 0;
}

static void parse_file(struct parser *p, const char *path)
{
    size_t len;
    char *text = read_whole_file(path, &len);

    p->file = path;
    if (memchr(text, '\0', len))
        fatal("%s: contains a NUL byte (UTF-16 .reg files are not "
              "supported, convert to UTF-8)", path);
    split_lines(p, text, len);
    for (size_t i = 0; i < p->nlines; i++) {
        char *s = skip_space(p->lines[i]);

        p->lineno = i + 1;
        strip_trailing_space(s);
        if (strncmp(s, ";mkhive:", 8) == 0) {
            parse_directive(p, skip_space(s + 8));
            continue;
        }
        if (*s == '\0' || *s == ';' || is_header(s))
            continue;
        if (*s == '[') {
            parse_section(p, s);
        } else if (*s == '"' || *s == '@') {
            p->lines[i] = s;
            char *stmt = join_continuations(p, &i);
            parse_value_line(p, stmt);
            free(stmt);
        } else {
            parse_error(p, "expected [key], \"name\"=value or @=value");
        }
    }
    free(p->lines);
    free(p->index.slots);
    free(text);
}

/* ---- Hive bins and cells ---------------------------------------------- */

struct hive {
    struct bytes bins;   /* hive bins data; offsets below are into this */
    size_t bin_end;      /* end of the bin currently being filled */
    unsigned minor;
};

/* The rest of the current bin becomes one unallocated cell. */
static void close_bin(struct hive *h)
{
    size_t left = h->bin_end - h->bins.len;

    if (left > 0)
        put32(h->bins.p + h->bins.len, (uint32_t)left);
    h->bins.len = h->bin_end;
}

static void open_bin(struct hive *h, size_t cell_size)
{
    size_t size = align_up(cell_size + BIN_HEADER_SIZE, BIN_ALIGN);
    size_t off = h->bins.len;
    uint8_t *b;

    if (size > 0x7fffffffu - off)
        fatal("hive too large");
    bytes_reserve(&h->bins, size);
    b = h->bins.p + off;
    memcpy(b, "hbin", 4);
    put32(b + 4, (uint32_t)off);
    put32(b + 8, (uint32_t)size);
    if (off == 0)                /* backup of the base block timestamp */
        put64(b + 20, FIXED_FILETIME);
    h->bin_end = off + size;
    h->bins.len = off + BIN_HEADER_SIZE;
}

/* Allocate a zeroed cell with room for `payload` bytes; returns its offset
 * relative to the start of the hive bins data.  Cells never cross a bin
 * boundary, and one too big for an ordinary bin gets a bin of its own. */
static uint32_t alloc_cell(struct hive *h, size_t payload)
{
    size_t size = align_up(payload + 4, 8);
    int big = size > BIG_CELL;
    uint32_t off;

    if (big || size > h->bin_end - h->bins.len) {
        close_bin(h);
        open_bin(h, size);
    }
    off = (uint32_t)h->bins.len;
    put32(h->bins.p + off, 0u - (uint32_t)size);   /* negative: allocated */
    h->bins.len += size;
    if (big)
        close_bin(h);
    return off;
}

/* Pointer to a cell's data.  Only valid until the next alloc_cell(). */
static uint8_t *cell(struct hive *h, uint32_t off)
{
    return h->bins.p + off + 4;
}

/* ---- Records ---------------------------------------------------------- */

static uint32_t write_sk(struct hive *h, size_t nkeys)
{
    uint32_t off = alloc_cell(h, SK_FIXED_SIZE + sizeof security_descriptor);
    uint8_t *c = cell(h, off);

    memcpy(c, "sk", 2);
    put32(c + 4, off);                 /* flink and blink: the list holds */
    put32(c + 8, off);                 /* only this descriptor */
    put32(c + 12, (uint32_t)nkeys);    /* reference count */
    put32(c + 16, (uint32_t)sizeof security_descriptor);
    memcpy(c + 20, security_descriptor, sizeof security_descriptor);
    return off;
}

/* A key's own security record, inserted last in the list that the
 * shared record `head` starts (flink: next, blink: previous). */
static uint32_t write_own_sk(struct hive *h, uint32_t head)
{
    uint32_t off = alloc_cell(h, SK_FIXED_SIZE + sizeof security_descriptor);
    uint32_t last = get32(cell(h, head) + 8);
    uint8_t *c = cell(h, off);

    memcpy(c, "sk", 2);
    put32(c + 4, head);
    put32(c + 8, last);
    put32(c + 12, 1);
    put32(c + 16, (uint32_t)sizeof security_descriptor);
    memcpy(c + 20, security_descriptor, sizeof security_descriptor);
    put32(cell(h, last) + 4, off);
    put32(cell(h, head) + 8, off);
    return off;
}

/* Keys with a security record of their own. */
static size_t own_sk_count(const struct key *k)
{
    size_t n = k->own_sk ? 1 : 0;

    for (size_t i = 0; i < k->nkids; i++)
        n += own_sk_count(k->kids[i]);
    return n;
}

/* Big data: a "db" cell -> a list of segment offsets -> segments of at most
 * DB_SEGMENT bytes, all but the last one full. */
static uint32_t write_big_data(struct hive *h, const struct value *v)
{
    size_t nseg = (v->len + DB_SEGMENT - 1) / DB_SEGMENT;
    uint32_t db = alloc_cell(h, 8);
    uint32_t list = alloc_cell(h, 4 * nseg);

    for (size_t i = 0; i < nseg; i++) {
        size_t start = i * DB_SEGMENT;
        size_t n = v->len - start < DB_SEGMENT ? v->len - start : DB_SEGMENT;
        uint32_t seg = alloc_cell(h, n);

        memcpy(cell(h, seg), v->data + start, n);
        put32(cell(h, list) + 4 * i, seg);
    }
    memcpy(cell(h, db), "db", 2);
    put16(cell(h, db) + 2, (uint32_t)nseg);
    put32(cell(h, db) + 4, list);
    return db;
}

/* Store a value's data; set the vk's data size and data offset fields. */
static void write_value_data(struct hive *h, const struct value *v,
                             uint32_t *size_field, uint32_t *offset_field)
{
    uint8_t inline_bytes[4] = {0};

    if (v->unset) {
        *size_field = 0;
        *offset_field = NO_CELL;
    } else if (v->len <= 4) {
        /* Small data lives in the offset field itself. */
        if (v->len > 0)
            memcpy(inline_bytes, v->data, v->len);
        *size_field = (uint32_t)v->len | INLINE_DATA;
        *offset_field = get32(inline_bytes);
    } else if (h->minor >= DB_MIN_MINOR && v->len > DB_SEGMENT) {
        *size_field = (uint32_t)v->len;
        *offset_field = write_big_data(h, v);
    } else {
        uint32_t off = alloc_cell(h, v->len);

        memcpy(cell(h, off), v->data, v->len);
        *size_field = (uint32_t)v->len;
        *offset_field = off;
    }
}

static uint32_t write_vk(struct hive *h, const struct value *v)
{
    size_t namelen = strlen(v->name);
    uint32_t off = alloc_cell(h, VK_FIXED_SIZE + namelen);
    uint32_t size, data;
    uint8_t *c;

    write_value_data(h, v, &size, &data);
    c = cell(h, off);
    memcpy(c, "vk", 2);
    put16(c + 2, (uint32_t)namelen);
    put32(c + 4, size);
    put32(c + 8, data);
    put32(c + 12, v->type);
    /* Windows leaves the flags 0 on the unnamed default value. */
    put16(c + 16, namelen > 0 ? VALUE_COMP_NAME : 0);
    memcpy(c + VK_FIXED_SIZE, v->name, namelen);
    return off;
}

/* Key values list, in input order.  NO_CELL when the key has no values. */
static uint32_t write_values(struct hive *h, const struct key *k)
{
    uint32_t list;

    if (k->nvals == 0)
        return NO_CELL;
    list = alloc_cell(h, 4 * k->nvals);
    for (size_t i = 0; i < k->nvals; i++) {
        uint32_t vk = write_vk(h, &k->vals[i]);

        put32(cell(h, list) + 4 * i, vk);
    }
    return list;
}

/* lh element hash: H = 37 * H + upper(c) over the name. */
static uint32_t name_hash(const char *name)
{
    uint32_t hash = 0;

    for (; *name; name++)
        hash = 37u * hash + (uint32_t)ascii_upper((unsigned char)*name);
    return hash;
}

/* lf element hint: the first 4 characters, NUL padded. */
static uint32_t name_hint(const char *name)
{
    uint8_t hint[4] = {0};

    for (size_t i = 0; i < 4 && name[i]; i++)
        hint[i] = (uint8_t)name[i];
    return get32(hint);
}

static int compare_keys(const void *a, const void *b)
{
    const struct key *ka = *(const struct key *const *)a;
    const struct key *kb = *(const struct key *const *)b;

    return ascii_casecmp(ka->name, kb->name);
}

/* Subkeys list ("lh", or "lf" before version 1.5), sorted by uppercase
 * name as Windows requires.  NO_CELL when the key has no subkeys. */
static uint32_t write_subkey_list(struct hive *h, const struct key *k)
{
    struct key **sorted;
    uint32_t list;
    uint8_t *c;
    int lh = h->minor >= LH_MIN_MINOR;

    if (k->nkids == 0)
        return NO_CELL;
    sorted = xrealloc(NULL, k->nkids * sizeof *sorted);
    memcpy(sorted, k->kids, k->nkids * sizeof *sorted);
    qsort(sorted, k->nkids, sizeof *sorted, compare_keys);
    list = alloc_cell(h, 4 + 8 * k->nkids);
    c = cell(h, list);
    memcpy(c, lh ? "lh" : "lf", 2);
    put16(c + 2, (uint32_t)k->nkids);
    for (size_t i = 0; i < k->nkids; i++) {
        const char *name = sorted[i]->name;

        put32(c + 4 + 8 * i, sorted[i]->cell);
        put32(c + 8 + 8 * i, lh ? name_hash(name) : name_hint(name));
    }
    free(sorted);
    return list;
}

static uint32_t max_subkey_name(const struct key *k)
{
    size_t m = 0;

    for (size_t i = 0; i < k->nkids; i++) {
        size_t n = strlen(k->kids[i]->name);
        m = n > m ? n : m;
    }
    return (uint32_t)(2 * m);       /* counted as UTF-16 bytes */
}

static void max_value_sizes(const struct key *k, uint32_t *name,
                            uint32_t *data)
{
    size_t mn = 0, md = 0;

    for (size_t i = 0; i < k->nvals; i++) {
        size_t n = strlen(k->vals[i].name);
        mn = n > mn ? n : mn;
        md = k->vals[i].len > md ? k->vals[i].len : md;
    }
    *name = (uint32_t)(2 * mn);     /* counted as UTF-16 bytes */
    *data = (uint32_t)md;
}

/* Allocate every key's nk cell first (the root, then the shared sk right
 * after it as Windows does), so lists and parents can refer to them. */
static void alloc_nk_cells(struct hive *h, struct key *k)
{
    k->cell = alloc_cell(h, NK_FIXED_SIZE + strlen(k->name));
    for (size_t i = 0; i < k->nkids; i++)
        alloc_nk_cells(h, k->kids[i]);
}

/* A class name cell (UTF-16LE), or NO_CELL. */
static uint32_t write_class(struct hive *h, const struct key *k)
{
    size_t n = k->class_name ? strlen(k->class_name) : 0;
    uint32_t off;

    if (n == 0)
        return NO_CELL;
    off = alloc_cell(h, 2 * n);
    for (size_t i = 0; i < n; i++)
        put16(cell(h, off) + 2 * i, (unsigned char)k->class_name[i]);
    return off;
}

static uint32_t max_class(const struct key *k)
{
    size_t m = 0;

    for (size_t i = 0; i < k->nkids; i++) {
        size_t n = k->kids[i]->class_name ? strlen(k->kids[i]->class_name) : 0;
        m = n > m ? n : m;
    }
    return (uint32_t)(2 * m);
}

static void write_key(struct hive *h, struct key *k, uint32_t parent,
                      uint32_t sk, int is_root)
{
    uint32_t values = write_values(h, k);
    uint32_t subkeys = write_subkey_list(h, k);
    uint32_t class_off = write_class(h, k);
    uint32_t own = k->own_sk ? write_own_sk(h, sk) : sk;
    uint32_t max_vname, max_vdata;
    size_t namelen = strlen(k->name);
    uint8_t *c = cell(h, k->cell);

    max_value_sizes(k, &max_vname, &max_vdata);
    memcpy(c, "nk", 2);
    put16(c + 2, is_root ? KEY_HIVE_ENTRY | KEY_NO_DELETE | KEY_COMP_NAME
                         : KEY_COMP_NAME);
    put64(c + 4, FIXED_FILETIME);
    put32(c + 16, parent);
    put32(c + 20, (uint32_t)k->nkids);
    put32(c + 28, subkeys);
    put32(c + 32, NO_CELL);             /* volatile subkeys list */
    put32(c + 36, (uint32_t)k->nvals);
    put32(c + 40, values);
    put32(c + 44, own);
    put32(c + 48, class_off);           /* class name */
    put32(c + 52, max_subkey_name(k));
    put32(c + 56, max_class(k));
    put32(c + 60, max_vname);
    put32(c + 64, max_vdata);
    put16(c + 72, (uint32_t)namelen);
    put16(c + 74, class_off == NO_CELL ? 0 : 2 * (uint32_t)strlen(k->class_name));
    memcpy(c + NK_FIXED_SIZE, k->name, namelen);
    for (size_t i = 0; i < k->nkids; i++)
        write_key(h, k->kids[i], k->cell, sk, 0);
}

/* Lay the whole tree out into hive bins; returns the root cell offset. */
static uint32_t build_bins(struct hive *h, struct key *root)
{
    uint32_t sk;

    root->cell = alloc_cell(h, NK_FIXED_SIZE + strlen(root->name));
    sk = write_sk(h, key_count(root) - own_sk_count(root));
    for (size_t i = 0; i < root->nkids; i++)
        alloc_nk_cells(h, root->kids[i]);
    /* The root's parent field has no meaning on disk; point it nowhere. */
    write_key(h, root, NO_CELL, sk, 1);
    close_bin(h);
    return root->cell;
}

/* ---- Base block and output -------------------------------------------- */

struct options {
    unsigned minor;
    uint32_t seq1, seq2;
    int bad_checksum;
    const char *name;      /* NULL: derived from the output path */
    const char *input, *output;
};

/* XOR-32 of the first 508 bytes, with the two values Windows avoids. */
static uint32_t header_checksum(const uint8_t *bb)
{
    uint32_t sum = 0;

    for (size_t i = 0; i < 508; i += 4)
        sum ^= get32(bb + i);
    if (sum == 0xffffffffu)
        sum = 0xfffffffeu;
    if (sum == 0)
        sum = 1;
    return sum;
}

/* Windows records the tail of the hive's path, e.g.
 * "emRoot\System32\Config\SOFTWARE": keep the last 31 characters. */
static void put_file_name(uint8_t *field, const struct options *o)
{
    char name[256];
    const char *base = strrchr(o->output, '/');
    size_t n, skip;

    base = base ? base + 1 : o->output;
    if (o->name)
        snprintf(name, sizeof name, "%s", o->name);
    else
        snprintf(name, sizeof name, "\\SystemRoot\\System32\\Config\\%s",
                 base);
    n = strlen(name);
    skip = n > MAX_FILE_NAME_CHARS ? n - MAX_FILE_NAME_CHARS : 0;
    for (size_t i = skip; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        put16(field + 2 * (i - skip), c < 0x80 ? c : '_');
    }
}

static void build_base_block(uint8_t *bb, const struct options *o,
                             uint32_t root, size_t bins_size)
{
    uint32_t sum;

    memset(bb, 0, BASE_BLOCK_SIZE);
    memcpy(bb, "regf", 4);
    put32(bb + 4, o->seq1);
    put32(bb + 8, o->seq2);
    put64(bb + 12, FIXED_FILETIME);
    put32(bb + 20, 1);                  /* major version */
    put32(bb + 24, o->minor);
    put32(bb + 28, 0);                  /* primary file */
    put32(bb + 32, 1);                  /* direct memory load */
    put32(bb + 36, root);
    put32(bb + 40, (uint32_t)bins_size);
    put32(bb + 44, 1);                  /* clustering factor */
    put_file_name(bb + 48, o);
    sum = header_checksum(bb);
    put32(bb + 508, o->bad_checksum ? sum ^ CHECKSUM_SPOIL : sum);
}

static void write_output(const char *path, const uint8_t *bb,
                         const struct bytes *bins)
{
    FILE *f = fopen(path, "wb");

    if (!f)
        fatal("%s: %s", path, strerror(errno));
    if (fwrite(bb, 1, BASE_BLOCK_SIZE, f) != BASE_BLOCK_SIZE ||
        fwrite(bins->p, 1, bins->len, f) != bins->len)
        fatal("%s: write error: %s", path, strerror(errno));
    if (fclose(f) != 0)
        fatal("%s: %s", path, strerror(errno));
}

/* ---- Command line ----------------------------------------------------- */

static void usage(void)
{
    fputs("usage: mkhive [--minor N] [--seq PRIMARY,SECONDARY] "
          "[--bad-checksum] [--name NAME] INPUT.reg OUTPUT\n"
          "  --minor N       base block minor version, 3..6 (default 5;\n"
          "                  below 5 subkey lists are \"lf\" instead of "
          "\"lh\",\n"
          "                  below 4 big values are one plain cell)\n"
          "  --seq P,S       primary and secondary sequence numbers "
          "(default 1,1;\n"
          "                  different numbers make a dirty hive)\n"
          "  --bad-checksum  store a wrong base block checksum\n"
          "  --name NAME     file name field (ASCII, at most 31 characters)\n",
          stderr);
    exit(2);
}

static int parse_u32(const char *s, char **end, uint32_t *out)
{
    unsigned long long v = 0;

    if (*s < '0' || *s > '9')
        return -1;
    for (; *s >= '0' && *s <= '9'; s++) {
        v = v * 10 + (unsigned long long)(*s - '0');
        if (v > 0xffffffffu)
            return -1;
    }
    *out = (uint32_t)v;
    *end = (char *)s;
    return 0;
}

static void parse_seq(const char *arg, struct options *o)
{
    char *end;

    if (parse_u32(arg, &end, &o->seq1) != 0 || *end != ',' ||
        parse_u32(end + 1, &end, &o->seq2) != 0 || *end != '\0') {
        fprintf(stderr, "mkhive: --seq wants PRIMARY,SECONDARY\n");
        usage();
    }
}

static void parse_minor(const char *arg, struct options *o)
{
    char *end;
    uint32_t v;

    if (parse_u32(arg, &end, &v) != 0 || *end != '\0' || v < 3 || v > 6) {
        fprintf(stderr, "mkhive: --minor must be 3, 4, 5 or 6\n");
        usage();
    }
    o->minor = v;
}

static void check_name_option(const char *name)
{
    size_t n = strlen(name);

    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)name[i] < 0x20 || (unsigned char)name[i] > 0x7e)
            n = SIZE_MAX;
    }
    if (n > MAX_FILE_NAME_CHARS) {
        fprintf(stderr, "mkhive: --name must be printable ASCII, at most "
                        "%u characters\n", MAX_FILE_NAME_CHARS);
        usage();
    }
}

static void parse_args(int argc, char **argv, struct options *o)
{
    int i, npos = 0;

    o->minor = 5;
    o->seq1 = o->seq2 = 1;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_arg = i + 1 < argc;

        if (strcmp(a, "--minor") == 0 && has_arg) {
            parse_minor(argv[++i], o);
        } else if (strcmp(a, "--seq") == 0 && has_arg) {
            parse_seq(argv[++i], o);
        } else if (strcmp(a, "--name") == 0 && has_arg) {
            o->name = argv[++i];
            check_name_option(o->name);
        } else if (strcmp(a, "--bad-checksum") == 0) {
            o->bad_checksum = 1;
        } else if (a[0] == '-' && a[1] == '-' && a[2] != '\0') {
            fprintf(stderr, "mkhive: unknown or incomplete option %s\n", a);
            usage();
        } else if (npos == 0) {
            o->input = a;
            npos++;
        } else if (npos == 1) {
            o->output = a;
            npos++;
        } else {
            usage();
        }
    }
    if (npos != 2)
        usage();
}

int main(int argc, char **argv)
{
    struct options opt = {0};
    struct parser p = {0};
    struct hive h = {0};
    uint8_t bb[BASE_BLOCK_SIZE];
    uint32_t root_cell;

    parse_args(argc, argv, &opt);
    p.root = key_new(NULL, 0, ROOT_NAME, strlen(ROOT_NAME));
    parse_file(&p, opt.input);

    h.minor = opt.minor;
    root_cell = build_bins(&h, p.root);
    build_base_block(bb, &opt, root_cell, h.bins.len);
    write_output(opt.output, bb, &h.bins);

    free(h.bins.p);
    key_free(p.root);
    return 0;
}
