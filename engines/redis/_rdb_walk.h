/* The RDB walk's internal interface: the types and functions its C files share (one
   extension, engines.redis._rdb_walk; what each file holds: _rdb_walk.c). Nothing here is
   exported from the extension: only PyInit__rdb_walk is. */

#ifndef RDB_WALK_H
#define RDB_WALK_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TYPES 26

#define PIECE_ITEMS 1000       /* items in a line at most */
#define PIECE_BYTES (1 << 20)  /* a line is full once its items' raw bytes reach this; a
                                  string's piece */
#define BLOCK_BYTES (1 << 20)  /* lines handed to emit together */
#define LZF_MAX_RATIO 128      /* an original length beyond this many times the compressed
                                  one is damage */
#define LZF_SLACK 32           /* room after LZF output for whole-word copies */

typedef struct {
    uint64_t db;
    int64_t counts[TYPES];
} DbCounts;

/* Numbers in the order first seen, found again through `slots` (open addressing, each
   slot the index + 1 of its number, 0 when free, at most half full): a damaged stream
   can select many thousands of databases or name as many modules, and a scan of them
   all for each would make the walk quadratic. */
typedef struct {
    uint64_t *keys;
    size_t n, cap;
    size_t *slots, nslots;
} Seen;

typedef struct {
    char name[10]; /* 9 characters and a NUL */
    int64_t keys, with_expiry;
} ModuleCount;

/* A growing byte buffer (the lines for emit, a key's line start, decoded strings). */
typedef struct {
    unsigned char *data;
    size_t len, cap;
} Bytes;

/* The lines of the key being written: the open line's items and their raw bytes. */
typedef struct {
    size_t items;
    uint64_t bytes;
    uint64_t part; /* of the open line: 0 for the first */
    int stream;    /* the value is {"entries":[...]...}, not [...] */
} Lines;

typedef struct {
    PyObject *read;
    PyThreadState *save;
    unsigned char *buf;
    size_t start, end, cap;
    uint64_t offset; /* stream offset of buf[start] */
    int eof, failed;  /* failed: a Python error is set */
    char message[200];
    Seen db_numbers;
    DbCounts *dbs; /* one for each of db_numbers, in its order, room for dbs_cap */
    Seen module_ids;  /* the name part of each module id (id >> 10) */
    ModuleCount *modules; /* one for each of module_ids, room for modules_cap */
    size_t dbs_cap, modules_cap;
    uint64_t module_id; /* of the module key just read */
    PyObject *emit;     /* NULL: counting only */
    Bytes out;          /* whole lines not yet handed to emit, then the open line */
    Bytes prefix;       /* the key's line up to and including "value": */
    Bytes tail;         /* a stream's fields after its entries, for its last line */
    Bytes decoded;      /* an LZF string decompressed */
    Lines lines;
    PyObject *aux; /* list, touched only with the GIL */
} Walk;

enum { OK = 0, FAIL = -1 };

/* One element: bytes (p, n) or an integer. */
typedef struct {
    const unsigned char *p;
    size_t n;
    int is_int;
    int64_t value;
} Elem;

enum { ZIPLIST, LISTPACK, INTSET, ZIPMAP }; /* the kinds of encoded blob */

/* An encoded blob checked whole, then read element by element (blob_next). */
typedef struct {
    int kind;
    const unsigned char *p;
    size_t n, at, last;
    size_t count, index; /* elements in all, and read so far */
    int width;           /* intset */
} Blob;

#define APPEND_TEXT(w, b, text) append(w, b, text, sizeof text - 1)

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* _rdb_walk_read.c: reading the stream (framing, strings, skipping values) */
int fail(Walk *w, const char *format, ...);
int refill(Walk *w, size_t n);
int skip(Walk *w, uint64_t n);
int length(Walk *w, uint64_t *value);
int lengths(Walk *w, int n);
int lzf_string_size(Walk *w, int *encoding, uint64_t *size, uint64_t *original);
int skip_string(Walk *w);
PyObject *aux_string(Walk *w);
int skip_module_values(Walk *w);
int skip_pending_and_consumers(Walk *w, unsigned type);
int skip_value(Walk *w, unsigned type);

/* _rdb_walk_blobs.c: LZF and the encoded blobs (ziplist, listpack, intset, zipmap) */
extern const char *const BLOB_NAMES[];
int lzf_decompress(const unsigned char *in, size_t n, unsigned char *out, size_t size);
int blob_check(Blob *b, int kind, const unsigned char *p, size_t n);
void blob_next(Blob *b, Elem *e);

/* _rdb_walk_json.c: JSON text and the key lines */
extern locale_t c_numeric;
void fill_byte_class(void);
void bytes_free(Bytes *b);
size_t format_signed(char *to, int64_t v);
int append_unsigned(Walk *w, Bytes *to, uint64_t v);
int append_id(Walk *w, Bytes *to, uint64_t ms, uint64_t seq);
size_t score_text(double x, char *to /* 32 bytes */);
int flush(Walk *w);
int lines_begin(Walk *w, int stream);
int line_close(Walk *w, int more);
int item_begin(Walk *w);
int json_element(Walk *w, Bytes *to, const Elem *e, size_t *size);
int key_prefix(Walk *w, uint64_t db, const Elem *key, unsigned type, int has_expiry,
               int64_t expiry);
int element(Walk *w, const Elem *e);
int string_element(Walk *w, const unsigned char *p, size_t n);
int single_item(Walk *w, const Elem *e);
int pair_item(Walk *w, const Elem *a, const Elem *b);
int string_piece(Walk *w, const unsigned char *p, size_t n, int more);

/* _rdb_walk_values.c: each value type read into key lines */
int emit_key(Walk *w, uint64_t db, unsigned type, int has_expiry, int64_t expiry);

/* Small or hot: defined here, so that every file inlines them. */

static inline void take(Walk *w, size_t n) {
    w->start += n;
    w->offset += n;
}

static inline uint64_t big_endian(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

static inline uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* `width` bytes little-endian, sign-extended. */
static inline int64_t le_signed(const unsigned char *p, int width) {
    uint64_t v = 0;
    for (int i = width - 1; i >= 0; i--)
        v = v << 8 | p[i];
    int shift = 64 - 8 * width;
    return shift ? (int64_t)(v << shift) >> shift : (int64_t)v;
}

static inline void set_bytes(Elem *e, const unsigned char *p, size_t n) {
    e->p = p;
    e->n = n;
    e->is_int = 0;
}

static inline void set_int(Elem *e, int64_t value) {
    e->is_int = 1;
    e->value = value;
}

/* Make at least `n` bytes available at buf[start] (n small), reading more with the GIL. */
static inline int need(Walk *w, size_t n) {
    return w->end - w->start >= n ? OK : refill(w, n);
}

static inline int byte(Walk *w, unsigned *value) {
    if (need(w, 1))
        return FAIL;
    *value = w->buf[w->start];
    take(w, 1);
    return OK;
}

/* Room in `b` for `extra` more bytes. */
static inline int grow(Walk *w, Bytes *b, size_t extra) {
    if (b->cap - b->len >= extra)
        return OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < extra) {
        if (cap > SIZE_MAX / 2)
            return fail(w, "out of memory");
        cap *= 2;
    }
    unsigned char *data = PyMem_RawRealloc(b->data, cap);
    if (!data)
        return fail(w, "out of memory");
    b->data = data;
    b->cap = cap;
    return OK;
}

static inline int append(Walk *w, Bytes *b, const void *data, size_t n) {
    if (grow(w, b, n))
        return FAIL;
    memcpy(b->data + b->len, data, n);
    b->len += n;
    return OK;
}

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
