/* engines/redis/rdb_format.read_summary in C: walk an RDB stream as it arrives, count its
   keys and, when asked, write the JSON export's key lines of every key (the one-pass backup
   of issue #18; the rules: /work/notes/rdb_json_spec.md, the JSON format:
   engines/redis/json_format.py).

   Hand-written rather than generated or bound to a library: the walk must keep up with a
   snapshot streaming from the server (a million keys in well under a second), never hold
   a big value whole, never trust a length in a damaged or hostile file, and give exactly
   the lines and the error messages of the Python twin (rdb_format.walk_in_python with
   rdb_values, rdb_keys, rdb_json), which the oracle tests hold side by side with it.
   It runs without the GIL and takes it back only to call `read` and `emit` and to build
   the results, so a backup's other threads keep going.

   walk(read, now_ms, offset, emit=None)
     -> (aux, dbs, counts, expires, expired_before, modules)
     read: a callable (size) -> bytes, b"" at the end of the stream, which is read from
       just after the 9-byte header (`offset` bytes in, for the messages)
     now_ms: keys with an earlier expiry are counted in expired_before (-1: none)
     emit: None to count only (values skipped unread); else a callable given the key
       lines in blocks of whole lines of about 1 MiB (every value decoded and checked)
     aux: [(name, value)] as stored (integer-encoded values as their digits)
     dbs: the databases selected, in order, starting with 0
     counts: [(db, rdb type byte, keys)]
     modules: [(module type name, keys, keys with an expiry)] for the keys of module types
       (type 7: skipped, never written), first seen first
   Damage, a cut or a type this walker does not know raise ValueError with the message
   the Python walk gives.

   The parts, in order: counting (reading the framing, skipping values), emitting's buffers,
   JSON text, the encoded blobs (LZF, ziplist, listpack, intset, zipmap), key lines (the
   splitting of big keys), reading each value type into lines, and the record loop. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define READ_SIZE (1 << 20)
#define TYPES 26

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

static int fail(Walk *w, const char *format, ...) {
    if (!w->message[0] && !w->failed) {
        va_list args;
        va_start(args, format);
        vsnprintf(w->message, sizeof w->message, format, args);
        va_end(args);
    }
    return FAIL;
}

static size_t slot_of(uint64_t key, size_t nslots) {
    key ^= key >> 33; /* murmur3's finish: nearby numbers land far apart */
    key *= 0xff51afd7ed558ccdULL;
    key ^= key >> 33;
    return (size_t)key & (nslots - 1);
}

/* Room for one more number: the keys doubled, the slots rebuilt twice as many. */
static int seen_grow(Seen *seen) {
    size_t cap = seen->cap ? seen->cap * 2 : 16;
    uint64_t *keys = PyMem_RawRealloc(seen->keys, cap * sizeof(uint64_t));
    if (!keys)
        return FAIL;
    seen->keys = keys;
    size_t *slots = PyMem_RawCalloc(2 * cap, sizeof(size_t));
    if (!slots)
        return FAIL;
    seen->cap = cap;
    PyMem_RawFree(seen->slots);
    seen->slots = slots;
    seen->nslots = 2 * cap;
    for (size_t n = 0; n < seen->n; n++) {
        size_t at = slot_of(seen->keys[n], seen->nslots);
        while (seen->slots[at])
            at = (at + 1) & (seen->nslots - 1);
        seen->slots[at] = n + 1;
    }
    return OK;
}

/* The index of `key` in first-seen order, added when new (*added set); FAIL: no memory. */
static int seen_index(Seen *seen, uint64_t key, size_t *index, int *added) {
    size_t mask = seen->nslots - 1, i = seen->nslots ? slot_of(key, seen->nslots) : 0;
    for (; seen->nslots && seen->slots[i]; i = (i + 1) & mask)
        if (seen->keys[seen->slots[i] - 1] == key) {
            *index = seen->slots[i] - 1;
            *added = 0;
            return OK;
        }
    if (seen->n == seen->cap) {
        if (seen_grow(seen))
            return FAIL;
        mask = seen->nslots - 1;
        for (i = slot_of(key, seen->nslots); seen->slots[i]; i = (i + 1) & mask)
            ;
    }
    seen->keys[seen->n] = key;
    seen->slots[i] = ++seen->n;
    *index = seen->n - 1;
    *added = 1;
    return OK;
}

static void seen_free(Seen *seen) {
    PyMem_RawFree(seen->keys);
    PyMem_RawFree(seen->slots);
}

/* The counts of database `db`. */
static DbCounts *select_db(Walk *w, uint64_t db) {
    size_t index;
    int added;
    if (seen_index(&w->db_numbers, db, &index, &added)) {
        fail(w, "out of memory");
        return NULL;
    }
    if (added && w->dbs_cap < w->db_numbers.cap) {
        DbCounts *grown = PyMem_RawRealloc(w->dbs, w->db_numbers.cap * sizeof(DbCounts));
        if (!grown) {
            fail(w, "out of memory");
            return NULL;
        }
        w->dbs = grown;
        w->dbs_cap = w->db_numbers.cap;
    }
    if (added) {
        memset(&w->dbs[index], 0, sizeof w->dbs[index]);
        w->dbs[index].db = db;
    }
    return &w->dbs[index];
}

static const char MODULE_CHARSET[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* One more key (with an expiry or not) of the module type whose id (a 9-character name and a 10-bit version) is `id`. */
static int count_module(Walk *w, uint64_t id, int has_expiry) {
    size_t index;
    int added;
    if (seen_index(&w->module_ids, id >> 10, &index, &added))
        return fail(w, "out of memory");
    if (added && w->modules_cap < w->module_ids.cap) {
        ModuleCount *grown =
            PyMem_RawRealloc(w->modules, w->module_ids.cap * sizeof(ModuleCount));
        if (!grown)
            return fail(w, "out of memory");
        w->modules = grown;
        w->modules_cap = w->module_ids.cap;
    }
    if (added) {
        for (int j = 0; j < 9; j++)
            w->modules[index].name[j] = MODULE_CHARSET[(id >> (10 + 6 * (8 - j))) & 63];
        w->modules[index].name[9] = 0;
        w->modules[index].keys = 0;
        w->modules[index].with_expiry = 0;
    }
    w->modules[index].keys++;
    w->modules[index].with_expiry += has_expiry;
    return OK;
}

/* Make at least `n` bytes available at buf[start] (n small), reading more with the GIL. */
static int need(Walk *w, size_t n) {
    while (w->end - w->start < n) {
        if (w->eof)
            return fail(w, "the RDB ends early at byte %llu (truncated)",
                        (unsigned long long)(w->offset + (w->end - w->start)));
        size_t left = w->end - w->start;
        if (left && w->start) /* never with the NULL buffer of the first call */
            memmove(w->buf, w->buf + w->start, left);
        w->start = 0;
        w->end = left;
        PyEval_RestoreThread(w->save);
        PyObject *block = PyObject_CallFunction(w->read, "n", (Py_ssize_t)READ_SIZE);
        int status = OK;
        if (!block || !PyBytes_Check(block)) {
            if (block)
                PyErr_SetString(PyExc_TypeError, "read() must return bytes");
            w->failed = 1;
            status = FAIL;
        } else {
            size_t size = (size_t)PyBytes_GET_SIZE(block);
            if (size == 0) {
                w->eof = 1;
            } else {
                if (left + size > w->cap) {
                    /* doubling: a long string (an aux field) may arrive in many reads */
                    size_t cap = left + size > 2 * w->cap ? left + size : 2 * w->cap;
                    unsigned char *grown = PyMem_RawRealloc(w->buf, cap);
                    if (!grown) {
                        PyErr_NoMemory();
                        w->failed = 1;
                        status = FAIL;
                    } else {
                        w->buf = grown;
                        w->cap = cap;
                    }
                }
                if (status == OK) {
                    memcpy(w->buf + left, PyBytes_AS_STRING(block), size);
                    w->end += size;
                }
            }
        }
        Py_XDECREF(block);
        w->save = PyEval_SaveThread();
        if (status == FAIL)
            return FAIL;
    }
    return OK;
}

static void take(Walk *w, size_t n) {
    w->start += n;
    w->offset += n;
}

static int skip(Walk *w, uint64_t n) {
    while (n) {
        if (w->start == w->end && need(w, 1))
            return fail(w, "the RDB ends early at byte %llu (truncated)",
                        (unsigned long long)w->offset);
        size_t have = w->end - w->start;
        size_t step = n < have ? (size_t)n : have;
        take(w, step);
        n -= step;
    }
    return OK;
}

/* `count` records of `size` bytes; a count too big to add up runs into the end. */
static int skip_records(Walk *w, uint64_t count, uint64_t size) {
    return skip(w, count > UINT64_MAX / size ? UINT64_MAX : count * size);
}

static int byte(Walk *w, unsigned *value) {
    if (need(w, 1))
        return FAIL;
    *value = w->buf[w->start];
    take(w, 1);
    return OK;
}

static uint64_t big_endian(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* The rest of a length whose first byte is `first` (6, 14, 32 or 64 bits); `what`
   names it in the error. */
static int length_from(Walk *w, unsigned first, uint64_t *value, const char *what) {
    unsigned kind = first >> 6;
    if (kind == 0) {
        *value = first & 0x3F;
        return OK;
    }
    if (kind == 1) {
        unsigned next;
        if (byte(w, &next))
            return FAIL;
        *value = ((uint64_t)(first & 0x3F) << 8) | next;
        return OK;
    }
    int n = first == 0x80 ? 4 : first == 0x81 ? 8 : 0;
    if (!n)
        return fail(w, "bad %s 0x%02x at byte %llu", what, first,
                    (unsigned long long)(w->offset - 1));
    if (need(w, (size_t)n))
        return FAIL;
    *value = big_endian(w->buf + w->start, n);
    take(w, (size_t)n);
    return OK;
}

static int length(Walk *w, uint64_t *value) {
    unsigned first;
    if (byte(w, &first))
        return FAIL;
    return length_from(w, first, value, "length encoding");
}

/* The next string's encoding (-1 plain, 0-2 integer, 3 LZF), payload size and (LZF) the
   original size. */
static int lzf_string_size(Walk *w, int *encoding, uint64_t *size, uint64_t *original) {
    unsigned first;
    if (byte(w, &first))
        return FAIL;
    *encoding = -1;
    if (first >> 6 != 3)
        return length_from(w, first, size, "string length");
    unsigned code = first & 0x3F;
    if (code <= 2) {
        *encoding = (int)code;
        *size = 1u << code;
        return OK;
    }
    if (code == 3) {
        *encoding = 3;
        if (length(w, size) || length(w, original))
            return FAIL;
        return OK;
    }
    return fail(w, "unknown string encoding %u at byte %llu", code,
                (unsigned long long)(w->offset - 1));
}

static int string_size(Walk *w, int *encoding, uint64_t *size) {
    uint64_t original;
    return lzf_string_size(w, encoding, size, &original);
}

static int skip_string(Walk *w) {
    int encoding;
    uint64_t size;
    if (string_size(w, &encoding, &size))
        return FAIL;
    return skip(w, size);
}

/* An aux field's string, as bytes (needs the GIL to build: done by the caller). */
static PyObject *aux_string(Walk *w) {
    int encoding;
    uint64_t size;
    if (string_size(w, &encoding, &size))
        return NULL;
    if (encoding == 3) {
        fail(w, "compressed strings are not expected in aux fields");
        return NULL;
    }
    if (need(w, (size_t)size))
        return NULL;
    const unsigned char *p = w->buf + w->start;
    char digits[32];
    const char *text = (const char *)p;
    size_t n = (size_t)size;
    if (encoding >= 0) {
        int64_t v = 0;
        if (encoding == 0)
            v = (int8_t)p[0];
        else if (encoding == 1)
            v = (int16_t)(p[0] | (p[1] << 8));
        else
            v = (int32_t)((uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
                          ((uint32_t)p[3] << 24));
        n = (size_t)snprintf(digits, sizeof digits, "%lld", (long long)v);
        text = digits;
    }
    PyEval_RestoreThread(w->save);
    PyObject *value = PyBytes_FromStringAndSize(text, (Py_ssize_t)n);
    w->save = PyEval_SaveThread();
    if (!value)
        w->failed = 1;
    take(w, (size_t)size);
    return value;
}

static int skip_module_values(Walk *w) {
    for (;;) {
        uint64_t opcode, ignored;
        if (length(w, &opcode))
            return FAIL;
        if (opcode == 0)
            return OK;
        if (opcode == 1 || opcode == 2) {
            if (length(w, &ignored))
                return FAIL;
        } else if (opcode == 3 || opcode == 4) {
            if (skip(w, opcode == 3 ? 4 : 8))
                return FAIL;
        } else if (opcode == 5) {
            if (skip_string(w))
                return FAIL;
        } else {
            return fail(w, "unknown module value opcode %llu at byte %llu",
                        (unsigned long long)opcode, (unsigned long long)w->offset);
        }
    }
}

static int lengths(Walk *w, int n) {
    uint64_t ignored;
    for (int i = 0; i < n; i++)
        if (length(w, &ignored))
            return FAIL;
    return OK;
}

/* A consumer group's pending entries and consumers (the JSON has no place for them). */
static int skip_pending_and_consumers(Walk *w, unsigned type) {
    uint64_t pending, consumers;
    if (length(w, &pending))
        return FAIL;
    for (uint64_t p = 0; p < pending; p++) /* raw id, delivery time, delivery count */
        if (skip(w, 16 + 8) || lengths(w, 1))
            return FAIL;
    if (length(w, &consumers))
        return FAIL;
    for (uint64_t c = 0; c < consumers; c++) {
        uint64_t ids;
        if (skip_string(w) || skip(w, 8))
            return FAIL;
        if (type >= 21 && skip(w, 8))
            return FAIL;
        if (length(w, &ids) || skip_records(w, ids, 16))
            return FAIL;
    }
    return OK;
}

static int skip_stream(Walk *w, unsigned type) {
    uint64_t nodes, groups;
    if (length(w, &nodes))
        return FAIL;
    for (uint64_t i = 0; i < nodes; i++)
        if (skip_string(w) || skip_string(w))
            return FAIL;
    if (lengths(w, 3))  /* entries, last id */
        return FAIL;
    if (type >= 19 && lengths(w, 5))  /* first id, max deleted id, entries added */
        return FAIL;
    if (length(w, &groups))
        return FAIL;
    for (uint64_t g = 0; g < groups; g++) {
        if (skip_string(w) || lengths(w, 2))
            return FAIL;
        if (type >= 19 && lengths(w, 1))
            return FAIL;
        if (skip_pending_and_consumers(w, type))
            return FAIL;
    }
    return OK;
}

static int skip_value(Walk *w, unsigned type) {
    uint64_t n;
    switch (type) {
    case 0: case 9: case 10: case 11: case 12: case 13: case 16: case 17: case 20:
        return skip_string(w);
    case 1: case 2: case 14:
        if (length(w, &n))
            return FAIL;
        for (uint64_t i = 0; i < n; i++)
            if (skip_string(w))
                return FAIL;
        return OK;
    case 18:
        if (length(w, &n))
            return FAIL;
        for (uint64_t i = 0; i < n; i++)
            if (lengths(w, 1) || skip_string(w))
                return FAIL;
        return OK;
    case 4:
        if (length(w, &n))
            return FAIL;
        for (uint64_t i = 0; i < n; i++)
            if (skip_string(w) || skip_string(w))
                return FAIL;
        return OK;
    case 3:
        if (length(w, &n))
            return FAIL;
        for (uint64_t i = 0; i < n; i++) {
            unsigned size;
            if (skip_string(w) || byte(w, &size))
                return FAIL;
            if (size < 253 && skip(w, size))
                return FAIL;
        }
        return OK;
    case 5:
        if (length(w, &n))
            return FAIL;
        for (uint64_t i = 0; i < n; i++)
            if (skip_string(w) || skip(w, 8))
                return FAIL;
        return OK;
    case 15: case 19: case 21:
        return skip_stream(w, type);
    case 7:
        if (length(w, &w->module_id))
            return FAIL;
        return skip_module_values(w);
    case 22: case 24:
        if (type == 24 && skip(w, 8))
            return FAIL;
        if (length(w, &n))
            return FAIL;
        for (uint64_t i = 0; i < n; i++)
            if (lengths(w, 1) || skip_string(w) || skip_string(w))
                return FAIL;
        return OK;
    case 23: case 25:
        if (type == 25 && skip(w, 8))
            return FAIL;
        return skip_string(w);
    default:
        return fail(w,
                    "value type %u at byte %llu is not known to this version of jarvis-tui "
                    "(the RDB comes from a newer Redis or a module that needs loading)",
                    type, (unsigned long long)w->offset);
    }
}

/* ---- Emitting: buffers ------------------------------------------------------------- */

#define PIECE_ITEMS 1000       /* items in a line at most */
#define PIECE_BYTES (1 << 20)  /* a line is full once its items' raw bytes reach this; a
                                  string's piece */
#define BLOCK_BYTES (1 << 20)  /* lines handed to emit together */
#define LZF_MAX_RATIO 128      /* an original length beyond this many times the compressed
                                  one is damage */
#define JSON_STRETCH (64 << 10) /* bytes of a string escaped per reservation */
#define LZF_SLACK 32           /* room after LZF output for whole-word copies */

/* Room in `b` for `extra` more bytes. */
static int grow(Walk *w, Bytes *b, size_t extra) {
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

static int append(Walk *w, Bytes *b, const void *data, size_t n) {
    if (grow(w, b, n))
        return FAIL;
    memcpy(b->data + b->len, data, n);
    b->len += n;
    return OK;
}

#define APPEND_TEXT(w, b, text) append(w, b, text, sizeof text - 1)

static void bytes_free(Bytes *b) { PyMem_RawFree(b->data); }

/* ---- Emitting: JSON text ------------------------------------------------------------- */

/* What a byte needs in a JSON string: 0 as it is, 1 an escape, 2 a UTF-8 sequence starts
   (or the byte is invalid); filled in at import. */
static unsigned char byte_class[256];
static const char HEX[] = "0123456789abcdef";
static const char BASE64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void fill_byte_class(void) {
    for (int c = 0; c < 256; c++)
        byte_class[c] = c < 0x20 || c == '"' || c == '\\' ? 1 : c >= 0x80 ? 2 : 0;
}

/* The length of the UTF-8 sequence at p (n bytes left) as Python's strict decoder takes
   it (no overlong forms, no surrogates, nothing above U+10FFFF), 0 when invalid. */
static size_t utf8_sequence(const unsigned char *p, size_t n) {
    unsigned c = p[0];
    unsigned low = 0x80, high = 0xBF;
    size_t size;
    if (c >= 0xC2 && c <= 0xDF)
        size = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        size = 3;
        if (c == 0xE0)
            low = 0xA0;
        else if (c == 0xED)
            high = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        size = 4;
        if (c == 0xF0)
            low = 0x90;
        else if (c == 0xF4)
            high = 0x8F;
    } else
        return 0;
    if (n < size || p[1] < low || p[1] > high)
        return 0;
    for (size_t i = 2; i < size; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return size;
}

/* Whether none of 8 bytes needs more than copying into a JSON string (no byte < 0x20,
   '"', '\\' or >= 0x80): the usual case, tested a word at a time. */
static int plain_word(const unsigned char *p) {
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t x;
    memcpy(&x, p, 8);
    uint64_t quote = x ^ (ones * '"'), backslash = x ^ (ones * '\\');
    uint64_t special = (x - ones * 0x20) | (quote - ones) | (backslash - ones);
    /* a byte's high bit in `special` without it in x: below 0x20, or '"' or '\\' */
    return ((special & ~x) | x) & highs ? 0 : 1;
}

/* One escaped byte as json.dumps writes it; returns the end of what was written. */
static unsigned char *escape(unsigned char *o, unsigned c) {
    *o++ = '\\';
    switch (c) {
    case '"': *o++ = '"'; break;
    case '\\': *o++ = '\\'; break;
    case '\n': *o++ = 'n'; break;
    case '\r': *o++ = 'r'; break;
    case '\t': *o++ = 't'; break;
    case '\b': *o++ = 'b'; break;
    case '\f': *o++ = 'f'; break;
    default:
        memcpy(o, "u00", 3);
        o[3] = (unsigned char)HEX[c >> 4];
        o[4] = (unsigned char)HEX[c & 15];
        o += 5;
    }
    return o;
}

static int json_base64(Walk *w, Bytes *to, const unsigned char *p, size_t n) {
    if (grow(w, to, (n + 2) / 3 * 4 + 16))
        return FAIL;
    unsigned char *o = to->data + to->len;
    memcpy(o, "{\"base64\":\"", 11);
    o += 11;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        o[0] = (unsigned char)BASE64[v >> 18];
        o[1] = (unsigned char)BASE64[(v >> 12) & 63];
        o[2] = (unsigned char)BASE64[(v >> 6) & 63];
        o[3] = (unsigned char)BASE64[v & 63];
        o += 4;
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        o[0] = (unsigned char)BASE64[v >> 18];
        o[1] = (unsigned char)BASE64[(v >> 12) & 63];
        o[2] = i + 1 < n ? (unsigned char)BASE64[(v >> 6) & 63] : '=';
        o[3] = '=';
        o += 4;
    }
    memcpy(o, "\"}", 2);
    to->len = (size_t)(o + 2 - to->data);
    return OK;
}

/* Bytes as json_format.encode_bytes and json.dumps(ensure_ascii=False) write them: a JSON
   string when they are UTF-8, else {"base64":"..."}. Written a stretch at a time, with
   room for the worst case of each (every byte \u00XX), so that a long ASCII string does
   not ask for six times its size. */
static int json_bytes(Walk *w, Bytes *to, const unsigned char *p, size_t n) {
    size_t started = to->len;
    if (APPEND_TEXT(w, to, "\""))
        return FAIL;
    for (size_t i = 0; i < n;) {
        size_t stop = n - i > JSON_STRETCH ? i + JSON_STRETCH : n;
        if (grow(w, to, 6 * (stop - i) + 4)) /* + the rest of a sequence begun before stop */
            return FAIL;
        unsigned char *o = to->data + to->len;
        while (i < stop) {
            unsigned c = p[i];
            if (stop - i >= 8 && plain_word(p + i)) {
                memcpy(o, p + i, 8);
                o += 8;
                i += 8;
            } else if (byte_class[c] == 0) {
                *o++ = (unsigned char)c;
                i++;
            } else if (byte_class[c] == 1) {
                o = escape(o, c);
                i++;
            } else {
                size_t size = utf8_sequence(p + i, n - i);
                if (!size) {
                    to->len = started;
                    return json_base64(w, to, p, n);
                }
                memcpy(o, p + i, size);
                o += size;
                i += size;
            }
        }
        to->len = (size_t)(o - to->data);
    }
    return APPEND_TEXT(w, to, "\"");
}

/* The decimal digits of v into `to` (at least 21 bytes); returns their count. */
static size_t format_unsigned(char *to, uint64_t v) {
    char digits[20];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        to[i] = digits[n - 1 - i];
    return n;
}

static size_t format_signed(char *to, int64_t v) {
    if (v >= 0)
        return format_unsigned(to, (uint64_t)v);
    to[0] = '-';
    return 1 + format_unsigned(to + 1, -(uint64_t)v);
}

static int append_unsigned(Walk *w, Bytes *to, uint64_t v) {
    char digits[24];
    return append(w, to, digits, format_unsigned(digits, v));
}

/* "ms-seq" */
static int append_id(Walk *w, Bytes *to, uint64_t ms, uint64_t seq) {
    char text[48];
    size_t n = 0;
    text[n++] = '"';
    n += format_unsigned(text + n, ms);
    text[n++] = '-';
    n += format_unsigned(text + n, seq);
    text[n++] = '"';
    return append(w, to, text, n);
}

/* The "C" numeric locale, which the walk's thread uses while it runs: snprintf and strtod
   follow LC_NUMERIC (a comma in some), Python's float formatting does not. */
static locale_t c_numeric;

/* A binary double score as the shortest %.{1..17}g that strtod reads back as the same. */
static size_t score_text(double x, char *to /* 32 bytes */) {
    if (isnan(x)) {
        memcpy(to, "nan", 4);
        return 3;
    }
    int n = 0;
    for (int precision = 1; precision <= 17; precision++) {
        n = snprintf(to, 32, "%.*g", precision, x);
        if (strtod(to, NULL) == x)
            break;
    }
    return (size_t)n;
}

/* ---- Emitting: the values of encoded blobs ----------------------------------------- */

/* One element: bytes (p, n) or an integer. */
typedef struct {
    const unsigned char *p;
    size_t n;
    int is_int;
    int64_t value;
} Elem;

static uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* `width` bytes little-endian, sign-extended. */
static int64_t le_signed(const unsigned char *p, int width) {
    uint64_t v = 0;
    for (int i = width - 1; i >= 0; i--)
        v = v << 8 | p[i];
    int shift = 64 - 8 * width;
    return shift ? (int64_t)(v << shift) >> shift : (int64_t)v;
}

static void set_bytes(Elem *e, const unsigned char *p, size_t n) {
    e->p = p;
    e->n = n;
    e->is_int = 0;
}

static void set_int(Elem *e, int64_t value) {
    e->is_int = 1;
    e->value = value;
}

/* LZF (liblzf's format, as Redis writes it): `n` bytes into exactly `size` at `out`, which
   has LZF_SLACK bytes of room beyond `size`: a short copy is done as one fixed-size copy of
   LZF_SLACK bytes (a few instructions, not a call) whose excess the next copy overwrites. */
static int lzf_decompress(const unsigned char *in, size_t n, unsigned char *out, size_t size) {
    size_t at = 0, made = 0;
    while (at < n) {
        size_t control = in[at++];
        if (control < 32) { /* a run of control + 1 (at most LZF_SLACK) literal bytes */
            size_t run = control + 1;
            if (run > n - at || run > size - made)
                return FAIL;
            if (n - at >= LZF_SLACK)
                memcpy(out + made, in + at, LZF_SLACK);
            else
                memcpy(out + made, in + at, run);
            at += run;
            made += run;
            continue;
        }
        size_t count = control >> 5;
        if (count == 7) {
            if (at >= n)
                return FAIL;
            count += in[at++];
        }
        if (at >= n)
            return FAIL;
        size_t distance = ((control & 0x1F) << 8) + in[at++] + 1;
        count += 2;
        if (distance > made || count > size - made)
            return FAIL;
        unsigned char *to = out + made;
        const unsigned char *from = to - distance;
        if (distance >= LZF_SLACK && count <= LZF_SLACK)
            memcpy(to, from, LZF_SLACK);
        else if (distance >= count)
            memcpy(to, from, count);
        else /* it overlaps what it writes: the pattern repeats */
            for (size_t i = 0; i < count; i++)
                to[i] = from[i];
        made += count;
    }
    return made == size ? OK : FAIL;
}

/* A ziplist entry at `at` (its prevlen); `last` is where the end byte must be. */
static int ziplist_entry(const unsigned char *b, size_t at, size_t last, Elem *e, size_t *next) {
    at += b[at] == 0xFE ? 5 : 1;
    if (at >= last)
        return FAIL;
    unsigned encoding = b[at], kind = encoding >> 6;
    if (kind < 3) {
        size_t size;
        if (kind == 0) {
            size = encoding & 0x3F;
            at += 1;
        } else if (kind == 1) {
            if (at + 2 > last)
                return FAIL;
            size = (size_t)(encoding & 0x3F) << 8 | b[at + 1];
            at += 2;
        } else if (encoding == 0x80) {
            if (at + 5 > last)
                return FAIL;
            size = (size_t)big_endian(b + at + 1, 4);
            at += 5;
        } else {
            return FAIL;
        }
        if (size > last - at)
            return FAIL;
        set_bytes(e, b + at, size);
        *next = at + size;
        return OK;
    }
    int width = encoding == 0xC0 ? 2 : encoding == 0xD0 ? 4 : encoding == 0xE0 ? 8
              : encoding == 0xF0 ? 3 : encoding == 0xFE ? 1 : 0;
    if (!width) {
        if (encoding < 0xF1 || encoding > 0xFD)
            return FAIL;
        set_int(e, (int64_t)(encoding & 0x0F) - 1);
        *next = at + 1;
        return OK;
    }
    at += 1;
    if ((size_t)width > last - at)
        return FAIL;
    set_int(e, le_signed(b + at, width));
    *next = at + (size_t)width;
    return OK;
}

static size_t backlen_size(size_t size) {
    /* as Redis's lpEncodeBacklen (one less than the powers of 128 in the spec) */
    return size <= 127 ? 1 : size < 16383 ? 2 : size < 2097151 ? 3 : size < 268435455 ? 4 : 5;
}

/* A listpack entry at `at` and where the next starts (after its backlen); `last` is the
   position of the final 0xFF, which no entry may reach. */
static int listpack_entry(const unsigned char *b, size_t at, size_t last, Elem *e, size_t *next) {
    unsigned first = b[at];
    size_t header, size = 0;
    if (first < 0x80) {
        set_int(e, first);
        header = 1;
    } else if (first < 0xC0) {
        header = 1;
        size = first & 0x3F;
    } else if (first < 0xE0) {
        if (at + 2 > last)
            return FAIL;
        int64_t v = (int64_t)((first & 0x1F) << 8 | b[at + 1]);
        set_int(e, v >= 1 << 12 ? v - (1 << 13) : v);
        header = 2;
    } else if (first < 0xF0) {
        if (at + 2 > last)
            return FAIL;
        header = 2;
        size = (size_t)(first & 0x0F) << 8 | b[at + 1];
    } else if (first == 0xF0) {
        if (at + 5 > last)
            return FAIL;
        header = 5;
        size = le32(b + at + 1);
    } else {
        int width = first == 0xF1 ? 2 : first == 0xF2 ? 3 : first == 0xF3 ? 4 : first == 0xF4 ? 8 : 0;
        if (!width || at + 1 + (size_t)width > last)
            return FAIL;
        set_int(e, le_signed(b + at + 1, width));
        header = 1 + (size_t)width;
    }
    if (first >= 0x80 && (first < 0xC0 || (first >= 0xE0 && first <= 0xF0))) {
        if (at + header + size > last)
            return FAIL;
        set_bytes(e, b + at + header, size);
    }
    size_t following = at + header + size + backlen_size(header + size);
    if (following > last)
        return FAIL;
    *next = following;
    return OK;
}

/* A zipmap length at `at`: a byte < 254, or 254 and a u32 LE; `last` as above. */
static int zipmap_length(const unsigned char *b, size_t at, size_t last, size_t *size, size_t *next) {
    unsigned first = b[at];
    if (first < 254) {
        *size = first;
        *next = at + 1;
        return OK;
    }
    if (first == 255 || at + 5 > last)
        return FAIL;
    *size = le32(b + at + 1);
    *next = at + 5;
    return OK;
}

/* A zipmap's field (at a key position, `value` 0) or value (`value` 1, then `free` bytes). */
static int zipmap_entry(const unsigned char *b, size_t at, size_t last, int value, Elem *e,
                        size_t *next) {
    size_t size;
    if (zipmap_length(b, at, last, &size, &at))
        return FAIL;
    if (!value) {
        if (at > last || size > last - at)
            return FAIL;
        set_bytes(e, b + at, size);
        *next = at + size;
        return *next >= last ? FAIL : OK; /* a value must follow */
    }
    if (at >= last)
        return FAIL;
    size_t free = b[at++];
    if (size > last - at || free > last - at - size)
        return FAIL;
    set_bytes(e, b + at, size);
    *next = at + size + free;
    return OK;
}

enum { ZIPLIST, LISTPACK, INTSET, ZIPMAP };
static const char *const BLOB_NAMES[] = {"ziplist", "listpack", "intset", "zipmap"};

/* An encoded blob checked whole, then read element by element (blob_next). */
typedef struct {
    int kind;
    const unsigned char *p;
    size_t n, at, last;
    size_t count, index; /* elements in all, and read so far */
    int width;           /* intset */
} Blob;

/* The element at b->at and where the next starts (a damaged one: FAIL). */
static int blob_entry(Blob *b, Elem *e, size_t *next) {
    switch (b->kind) {
    case ZIPLIST:
        return ziplist_entry(b->p, b->at, b->last, e, next);
    case LISTPACK:
        return listpack_entry(b->p, b->at, b->last, e, next);
    case ZIPMAP:
        return zipmap_entry(b->p, b->at, b->last, (int)(b->index & 1), e, next);
    default:
        set_int(e, le_signed(b->p + b->at, b->width));
        *next = b->at + (size_t)b->width;
        return OK;
    }
}

/* Where the elements start, and the end checks of each kind's header. */
static int blob_header(Blob *b, uint64_t *claimed) {
    const unsigned char *p = b->p;
    size_t n = b->n;
    *claimed = 0xFFFF;
    switch (b->kind) {
    case ZIPLIST:
        if (n < 11 || le32(p) != n || le32(p + 4) >= n)
            return FAIL;
        *claimed = (uint64_t)p[8] | (uint64_t)p[9] << 8;
        b->at = 10;
        return OK;
    case LISTPACK:
        if (n < 7 || le32(p) != n)
            return FAIL;
        *claimed = (uint64_t)p[4] | (uint64_t)p[5] << 8;
        b->at = 6;
        return OK;
    case ZIPMAP:
        if (n < 2)
            return FAIL;
        b->at = 1; /* past zmlen, a hint only */
        return OK;
    default: {
        if (n < 8)
            return FAIL;
        uint64_t width = le32(p), count = le32(p + 4);
        if ((width != 2 && width != 4 && width != 8) || n != 8 + width * count)
            return FAIL;
        b->width = (int)width;
        b->count = (size_t)count;
        b->at = 8;
        return OK;
    }
    }
}

/* Checks the blob (p, n) whole as a `kind` and counts its elements; FAIL: damaged. */
static int blob_check(Blob *b, int kind, const unsigned char *p, size_t n) {
    uint64_t claimed;
    b->kind = kind;
    b->p = p;
    b->n = n;
    b->last = n - 1;
    b->index = 0;
    if (blob_header(b, &claimed))
        return FAIL;
    size_t start = b->at;
    if (kind != INTSET) {
        b->count = 0;
        for (;;) {
            if (b->at > b->last)
                return FAIL;
            if (p[b->at] == 0xFF) {
                if (b->at != b->last || (kind == ZIPMAP && (b->index & 1)))
                    return FAIL;
                break;
            }
            Elem e;
            if (blob_entry(b, &e, &b->at))
                return FAIL;
            b->count++;
            b->index++;
        }
        if (claimed != 0xFFFF && claimed != b->count)
            return FAIL;
    }
    b->at = start;
    b->index = 0;
    return OK;
}

/* The next element of a checked blob (there must be one). */
static void blob_next(Blob *b, Elem *e) {
    size_t next = b->at;
    blob_entry(b, e, &next); /* checked before: cannot fail */
    b->at = next;
    b->index++;
}

/* ---- Emitting: lines ----------------------------------------------------------------- */

/* Hand the whole lines gathered to emit (with the GIL). */
static int flush(Walk *w) {
    if (!w->out.len)
        return OK;
    PyEval_RestoreThread(w->save);
    PyObject *block = PyBytes_FromStringAndSize((const char *)w->out.data, (Py_ssize_t)w->out.len);
    PyObject *answer = block ? PyObject_CallOneArg(w->emit, block) : NULL;
    Py_XDECREF(block);
    Py_XDECREF(answer);
    w->save = PyEval_SaveThread();
    w->out.len = 0;
    if (!answer) {
        w->failed = 1;
        return FAIL;
    }
    return OK;
}

static const char *const TYPE_NAMES[TYPES] = {
    "string", "list", "set", "zset", "hash", "zset", "module", "module", NULL, "hash",
    "list", "set", "zset", "hash", "list", "stream", "hash", "zset", "list", "stream",
    "set", "stream", "hash", "hash", "hash", "hash",
};

/* The end of a line: [,"part":n][,"more":true]}\n; the block handed on once big enough. */
static int line_end(Walk *w, int more) {
    Bytes *out = &w->out;
    if (w->lines.part && (APPEND_TEXT(w, out, ",\"part\":") ||
                          append_unsigned(w, out, w->lines.part)))
        return FAIL;
    if (more && APPEND_TEXT(w, out, ",\"more\":true"))
        return FAIL;
    if (APPEND_TEXT(w, out, "}\n"))
        return FAIL;
    w->lines.part++;
    return out->len >= BLOCK_BYTES ? flush(w) : OK;
}

/* A line of items begins: the prefix and the opening of the value. */
static int line_open(Walk *w) {
    w->lines.items = 0;
    w->lines.bytes = 0;
    if (append(w, &w->out, w->prefix.data, w->prefix.len))
        return FAIL;
    return w->lines.stream ? APPEND_TEXT(w, &w->out, "{\"entries\":[")
                           : APPEND_TEXT(w, &w->out, "[");
}

/* The open line of items written: with "more" (another follows) or as the key's last (a
   stream's then with its tail). */
static int line_close(Walk *w, int more) {
    if (APPEND_TEXT(w, &w->out, "]"))
        return FAIL;
    if (w->lines.stream && ((!more && append(w, &w->out, w->tail.data, w->tail.len)) ||
                            APPEND_TEXT(w, &w->out, "}")))
        return FAIL;
    return line_end(w, more);
}

static int lines_begin(Walk *w, int stream) {
    w->lines.part = 0;
    w->lines.stream = stream;
    w->tail.len = 0;
    return line_open(w);
}

/* Before an item: a full line is written and another opened; the separator. */
static int item_begin(Walk *w) {
    if (w->lines.items >= PIECE_ITEMS || w->lines.bytes >= PIECE_BYTES) {
        if (line_close(w, 1) || line_open(w))
            return FAIL;
    }
    w->lines.items++;
    return w->lines.items > 1 ? APPEND_TEXT(w, &w->out, ",") : OK;
}

/* An element as a JSON string (an integer: its digits) into `to`; *size its raw size. */
static int json_element(Walk *w, Bytes *to, const Elem *e, size_t *size) {
    if (e->is_int) {
        char text[24];
        size_t n = format_signed(text + 1, e->value);
        text[0] = '"';
        text[n + 1] = '"';
        *size = n;
        return append(w, to, text, n + 2);
    }
    *size = e->n;
    return json_bytes(w, to, e->p, e->n);
}

/* {"db":D,"key":K,"type":T[,"expires_at_ms":E],"value": into w->prefix. */
static int key_prefix(Walk *w, uint64_t db, const Elem *key, unsigned type, int has_expiry,
                      int64_t expiry) {
    Bytes *to = &w->prefix;
    size_t size;
    to->len = 0;
    if (APPEND_TEXT(w, to, "{\"db\":") || append_unsigned(w, to, db) ||
        APPEND_TEXT(w, to, ",\"key\":") || json_element(w, to, key, &size) ||
        APPEND_TEXT(w, to, ",\"type\":\"") ||
        append(w, to, TYPE_NAMES[type], strlen(TYPE_NAMES[type])) || APPEND_TEXT(w, to, "\""))
        return FAIL;
    if (has_expiry) {
        char digits[24];
        if (APPEND_TEXT(w, to, ",\"expires_at_ms\":") ||
            append(w, to, digits, format_signed(digits, expiry)))
            return FAIL;
    }
    return APPEND_TEXT(w, to, ",\"value\":");
}

/* An element into the open line, its raw size added to the line's. */
static int element(Walk *w, const Elem *e) {
    size_t size;
    if (json_element(w, &w->out, e, &size))
        return FAIL;
    w->lines.bytes += size;
    return OK;
}

static int string_element(Walk *w, const unsigned char *p, size_t n) {
    Elem e;
    set_bytes(&e, p, n);
    return element(w, &e);
}

/* One item of a list or set. */
static int single_item(Walk *w, const Elem *e) {
    return item_begin(w) || element(w, e);
}

/* One item of a hash or zset: [a,b]. */
static int pair_item(Walk *w, const Elem *a, const Elem *b) {
    return item_begin(w) || APPEND_TEXT(w, &w->out, "[") || element(w, a) ||
           APPEND_TEXT(w, &w->out, ",") || element(w, b) || APPEND_TEXT(w, &w->out, "]");
}

/* One line of a string value: its piece p, n. */
static int string_piece(Walk *w, const unsigned char *p, size_t n, int more) {
    return append(w, &w->out, w->prefix.data, w->prefix.len) ||
           json_bytes(w, &w->out, p, n) || line_end(w, more);
}

/* ---- Emitting: reading values ------------------------------------------------------ */

static int damaged(Walk *w, const char *what) {
    return fail(w, "damaged %s in the value of a key at byte %llu", what,
                (unsigned long long)w->offset);
}

/* LZF data of `compressed` bytes decompressed into w->decoded. */
static int lzf_string(Walk *w, uint64_t compressed, uint64_t original, Elem *s) {
    Bytes *out = &w->decoded;
    if (need(w, (size_t)compressed))
        return FAIL;
    const unsigned char *in = w->buf + w->start;
    take(w, (size_t)compressed);
    if (compressed <= UINT64_MAX / LZF_MAX_RATIO && original > LZF_MAX_RATIO * compressed)
        return damaged(w, "LZF data");
    out->len = 0;
    if (grow(w, out, (size_t)original + LZF_SLACK))
        return FAIL;
    if (lzf_decompress(in, (size_t)compressed, out->data, (size_t)original))
        return damaged(w, "LZF data");
    set_bytes(s, out->data, (size_t)original);
    return OK;
}

/* The next string of a value decoded whole: a plain one in place (valid until the next
   read), an integer as its value, an LZF one decompressed into w->decoded (valid until
   the next LZF string). */
static int value_string(Walk *w, Elem *s) {
    int encoding;
    uint64_t size, original = 0;
    if (lzf_string_size(w, &encoding, &size, &original))
        return FAIL;
    if (encoding == 3)
        return lzf_string(w, size, original, s);
    if (need(w, (size_t)size))
        return FAIL;
    const unsigned char *p = w->buf + w->start;
    take(w, (size_t)size);
    if (encoding < 0)
        set_bytes(s, p, (size_t)size);
    else
        set_int(s, le_signed(p, 1 << encoding));
    return OK;
}

/* A string value: 1 MiB pieces, a plain one longer than that read a piece at a time. */
static int string_lines(Walk *w) {
    int encoding;
    uint64_t size, original = 0;
    w->lines.part = 0;
    if (lzf_string_size(w, &encoding, &size, &original))
        return FAIL;
    if (encoding == -1 && size > PIECE_BYTES) {
        while (size) {
            size_t piece = size < PIECE_BYTES ? (size_t)size : PIECE_BYTES;
            if (need(w, piece))
                return FAIL;
            const unsigned char *p = w->buf + w->start;
            take(w, piece);
            size -= piece;
            if (string_piece(w, p, piece, size > 0))
                return FAIL;
        }
        return OK;
    }
    Elem s;
    char digits[24];
    if (encoding == 3) {
        if (lzf_string(w, size, original, &s))
            return FAIL;
    } else {
        if (need(w, (size_t)size))
            return FAIL;
        const unsigned char *p = w->buf + w->start;
        take(w, (size_t)size);
        if (encoding < 0)
            set_bytes(&s, p, (size_t)size);
        else
            set_bytes(&s, (const unsigned char *)digits,
                      format_signed(digits, le_signed(p, 1 << encoding)));
    }
    size_t start = 0;
    do {
        size_t piece = s.n - start < PIECE_BYTES ? s.n - start : PIECE_BYTES;
        if (string_piece(w, s.p + start, piece, start + piece < s.n))
            return FAIL;
        start += piece;
    } while (start < s.n);
    return OK;
}

/* A blob string of `kind`, checked whole. */
static int blob_string(Walk *w, int kind, Blob *b) {
    Elem s;
    if (value_string(w, &s))
        return FAIL;
    /* an integer-encoded string: its digits are never a valid blob of any kind */
    if (s.is_int || blob_check(b, kind, s.p, s.n))
        return damaged(w, BLOB_NAMES[kind]);
    return OK;
}

/* Every element of a blob as an item of a list or set. */
static int blob_items(Walk *w, int kind) {
    Blob b;
    if (blob_string(w, kind, &b))
        return FAIL;
    for (size_t i = 0; i < b.count; i++) {
        Elem e;
        blob_next(&b, &e);
        if (single_item(w, &e))
            return FAIL;
    }
    return OK;
}

/* The elements of a blob in pairs (hash, zset) or triples (field, value, ttl). */
static int blob_pairs(Walk *w, int kind, size_t group) {
    Blob b;
    if (blob_string(w, kind, &b))
        return FAIL;
    if (b.count % group)
        return damaged(w, BLOB_NAMES[kind]);
    for (size_t i = 0; i < b.count; i += group) {
        Elem first, second, ignored;
        blob_next(&b, &first);
        blob_next(&b, &second);
        if (group == 3)
            blob_next(&b, &ignored);
        if (pair_item(w, &first, &second))
            return FAIL;
    }
    return OK;
}

/* `n` strings, each an item of a list or set. */
static int string_items(Walk *w) {
    uint64_t n;
    if (length(w, &n))
        return FAIL;
    for (uint64_t i = 0; i < n; i++) {
        Elem e;
        if (value_string(w, &e) || single_item(w, &e))
            return FAIL;
    }
    return OK;
}

/* One pair of strings: the first written before the second is read (which moves the
   read buffer). */
static int string_pair(Walk *w) {
    Elem a, b;
    if (value_string(w, &a) || item_begin(w) || APPEND_TEXT(w, &w->out, "[") ||
        element(w, &a) || value_string(w, &b) ||
        APPEND_TEXT(w, &w->out, ",") || element(w, &b))
        return FAIL;
    return APPEND_TEXT(w, &w->out, "]");
}

/* A hash stored field by field; with_ttls: each field's expiry length first (dropped). */
static int string_pairs(Walk *w, int with_ttls) {
    uint64_t n;
    if (length(w, &n))
        return FAIL;
    for (uint64_t i = 0; i < n; i++)
        if ((with_ttls && lengths(w, 1)) || string_pair(w))
            return FAIL;
    return OK;
}

static const char *const SCORE_WORDS[] = {"nan", "inf", "-inf"}; /* type 3: 253, 254, 255 */

/* A zset stored member by member: score as binary double (type 5) or text (type 3). */
static int zset_pairs(Walk *w, unsigned type) {
    uint64_t n;
    if (length(w, &n))
        return FAIL;
    for (uint64_t i = 0; i < n; i++) {
        Elem member;
        if (value_string(w, &member) || item_begin(w) ||
            APPEND_TEXT(w, &w->out, "[") || element(w, &member) || APPEND_TEXT(w, &w->out, ","))
            return FAIL;
        if (type == 5) {
            if (need(w, 8))
                return FAIL;
            uint64_t bits = 0;
            for (int b = 7; b >= 0; b--)
                bits = bits << 8 | w->buf[w->start + b];
            take(w, 8);
            double score;
            char text[32];
            memcpy(&score, &bits, 8);
            if (string_element(w, (const unsigned char *)text, score_text(score, text)))
                return FAIL;
        } else {
            unsigned size;
            if (byte(w, &size))
                return FAIL;
            if (size >= 253) {
                const char *word = SCORE_WORDS[size - 253];
                if (string_element(w, (const unsigned char *)word, strlen(word)))
                    return FAIL;
            } else {
                if (need(w, size))
                    return FAIL;
                const unsigned char *p = w->buf + w->start;
                take(w, size);
                if (string_element(w, p, size))
                    return FAIL;
            }
        }
        if (APPEND_TEXT(w, &w->out, "]"))
            return FAIL;
    }
    return OK;
}

/* Quicklist 1 (type 14): ziplist nodes. */
static int ziplist_nodes(Walk *w) {
    uint64_t n;
    if (length(w, &n))
        return FAIL;
    for (uint64_t i = 0; i < n; i++)
        if (blob_items(w, ZIPLIST))
            return FAIL;
    return OK;
}

/* Quicklist 2 (type 18): nodes that are one plain element or a listpack. */
static int quicklist_nodes(Walk *w) {
    uint64_t n, container;
    if (length(w, &n))
        return FAIL;
    for (uint64_t i = 0; i < n; i++) {
        if (length(w, &container))
            return FAIL;
        if (container == 1) {
            Elem e;
            if (value_string(w, &e) || single_item(w, &e))
                return FAIL;
        } else if (container == 2) {
            if (blob_items(w, LISTPACK))
                return FAIL;
        } else {
            return damaged(w, "quicklist");
        }
    }
    return OK;
}

/* The next element of a stream node's listpack, which must be an integer (counts, flags,
   id differences). */
static int stream_integer(Blob *b, int64_t *value) {
    Elem e;
    if (b->index >= b->count)
        return FAIL;
    blob_next(b, &e);
    if (!e.is_int)
        return FAIL;
    *value = e.value;
    return OK;
}

/* One entry of a stream node after its flags and id: [id,[f,v,...]] unless deleted (then
   read and not written). `names` is a cursor at the node's master fields. FAIL without a
   message: damaged. */
static int stream_entry(Walk *w, Blob *b, Blob names, int64_t width, int64_t flags,
                        uint64_t ms, uint64_t seq) {
    int same_fields = (flags & 2) != 0, live = !(flags & 1);
    int64_t fields = width;
    if (!same_fields && (stream_integer(b, &fields) || fields < 0))
        return FAIL;
    size_t left = b->count - b->index;
    if ((uint64_t)fields > (same_fields ? left : left / 2))
        return FAIL;
    if (live && (item_begin(w) || APPEND_TEXT(w, &w->out, "[") ||
                 append_id(w, &w->out, ms, seq) || APPEND_TEXT(w, &w->out, ",[")))
        return FAIL;
    size_t values = same_fields ? (size_t)width : 2 * (size_t)fields;
    for (size_t i = 0; i < values; i++) {
        Elem e;
        if (live && i && APPEND_TEXT(w, &w->out, ","))
            return FAIL;
        if (same_fields) { /* the master field's name, then this entry's value */
            blob_next(&names, &e);
            if (live && (element(w, &e) || APPEND_TEXT(w, &w->out, ",")))
                return FAIL;
        }
        blob_next(b, &e);
        if (live && element(w, &e))
            return FAIL;
    }
    int64_t lp_count;
    if (stream_integer(b, &lp_count) || lp_count != (same_fields ? width + 3 : 2 * fields + 4))
        return FAIL;
    return live ? APPEND_TEXT(w, &w->out, "]]") : OK;
}

/* The entries of one stream node (its listpack next in the stream), whose master id is
   master_ms-master_seq. */
static int stream_node(Walk *w, uint64_t master_ms, uint64_t master_seq) {
    Blob b;
    if (blob_string(w, LISTPACK, &b))
        return FAIL;
    int64_t count, deleted, width, zero;
    if (stream_integer(&b, &count) || stream_integer(&b, &deleted) ||
        stream_integer(&b, &width) || count < 0 || deleted < 0 || width < 0 ||
        (uint64_t)width >= b.count - b.index)
        return damaged(w, "stream");
    Blob names = b;
    for (int64_t i = 0; i < width; i++) {
        Elem ignored;
        blob_next(&b, &ignored);
    }
    if (stream_integer(&b, &zero) || zero != 0)
        return damaged(w, "stream");
    uint64_t walked = 0;
    while (b.index < b.count) {
        int64_t flags, ms, seq;
        if (stream_integer(&b, &flags) || stream_integer(&b, &ms) ||
            stream_integer(&b, &seq) ||
            stream_entry(w, &b, names, width, flags, master_ms + (uint64_t)ms,
                         master_seq + (uint64_t)seq))
            return w->message[0] || w->failed ? FAIL : damaged(w, "stream");
        walked++;
    }
    if (walked != (uint64_t)count + (uint64_t)deleted)
        return damaged(w, "stream");
    return OK;
}

/* A stream group's fields into the tail: {"name":..,"last_delivered_id":..,"entries_read":..} */
static int stream_group(Walk *w, unsigned type, int first) {
    Elem name;
    uint64_t ms, seq, entries_read = UINT64_MAX; /* Redis's "invalid" (-1) as a length */
    Bytes *tail = &w->tail;
    if (value_string(w, &name) || (!first && APPEND_TEXT(w, tail, ",")) ||
        APPEND_TEXT(w, tail, "{\"name\":"))
        return FAIL;
    size_t size;
    if (json_element(w, tail, &name, &size))
        return FAIL;
    if (length(w, &ms) || length(w, &seq) || (type >= 19 && length(w, &entries_read)) ||
        APPEND_TEXT(w, tail, ",\"last_delivered_id\":") || append_id(w, tail, ms, seq) ||
        APPEND_TEXT(w, tail, ",\"entries_read\":"))
        return FAIL;
    if (entries_read == UINT64_MAX ? APPEND_TEXT(w, tail, "null")
                                   : append_unsigned(w, tail, entries_read))
        return FAIL;
    return APPEND_TEXT(w, tail, "}") || skip_pending_and_consumers(w, type);
}

/* A stream's fields after its nodes, into the tail of its last line. */
static int stream_tail(Walk *w, unsigned type) {
    /* entries, last id; 19 and 21: first id, max deleted id, entries added */
    uint64_t ids[8], groups;
    int n = type >= 19 ? 8 : 3;
    Bytes *tail = &w->tail;
    for (int i = 0; i < n; i++)
        if (length(w, &ids[i]))
            return FAIL;
    if (APPEND_TEXT(w, tail, ",\"last_id\":") || append_id(w, tail, ids[1], ids[2]) ||
        APPEND_TEXT(w, tail, ",\"entries_added\":"))
        return FAIL;
    if (type >= 19 ? append_unsigned(w, tail, ids[7]) : APPEND_TEXT(w, tail, "null"))
        return FAIL;
    if (APPEND_TEXT(w, tail, ",\"max_deleted_id\":"))
        return FAIL;
    if (type >= 19 ? append_id(w, tail, ids[5], ids[6]) : APPEND_TEXT(w, tail, "null"))
        return FAIL;
    if (APPEND_TEXT(w, tail, ",\"groups\":[") || length(w, &groups))
        return FAIL;
    for (uint64_t g = 0; g < groups; g++)
        if (stream_group(w, type, g == 0))
            return FAIL;
    return APPEND_TEXT(w, tail, "]");
}

/* A stream (types 15, 19, 21): its nodes' entries, then its tail on the last line. */
static int stream_lines(Walk *w, unsigned type) {
    uint64_t nodes;
    if (lines_begin(w, 1) || length(w, &nodes))
        return FAIL;
    for (uint64_t i = 0; i < nodes; i++) {
        Elem key;
        if (value_string(w, &key))
            return FAIL;
        if (key.is_int || key.n != 16) /* an integer's digits are never 16 bytes */
            return damaged(w, "stream");
        if (stream_node(w, big_endian(key.p, 8), big_endian(key.p + 8, 8)))
            return FAIL;
    }
    return stream_tail(w, type) || line_close(w, 0);
}

/* The items of a list, set, hash or zset in any of its encodings. */
static int collection_items(Walk *w, unsigned type) {
    switch (type) {
    case 1: case 2:
        return string_items(w);
    case 4:
        return string_pairs(w, 0);
    case 3: case 5:
        return zset_pairs(w, type);
    case 9:
        return blob_pairs(w, ZIPMAP, 2);
    case 10:
        return blob_items(w, ZIPLIST);
    case 11:
        return blob_items(w, INTSET);
    case 12: case 13:
        return blob_pairs(w, ZIPLIST, 2);
    case 14:
        return ziplist_nodes(w);
    case 16: case 17:
        return blob_pairs(w, LISTPACK, 2);
    case 18:
        return quicklist_nodes(w);
    case 20:
        return blob_items(w, LISTPACK);
    case 22: case 24: /* hash with field expiry: the minimum expiry (24), per field its own */
        if (type == 24 && skip(w, 8))
            return FAIL;
        return string_pairs(w, 1);
    default: /* 23, 25: a listpack of field, value, expiry */
        if (type == 25 && skip(w, 8))
            return FAIL;
        return blob_pairs(w, LISTPACK, 3);
    }
}

/* A key (not a module's) and its value as JSON lines. */
static int key_lines(Walk *w, unsigned type) {
    if (type == 0)
        return string_lines(w);
    if (type == 15 || type == 19 || type == 21)
        return stream_lines(w, type);
    return lines_begin(w, 0) || collection_items(w, type) || line_close(w, 0);
}

/* Emitting: the key read whole and its lines written; a module's key read and skipped. */
static int emit_key(Walk *w, uint64_t db, unsigned type, int has_expiry, int64_t expiry) {
    Elem key;
    if (value_string(w, &key))
        return FAIL;
    if (type == 7)
        return length(w, &w->module_id) || skip_module_values(w);
    return key_prefix(w, db, &key, type, has_expiry, expiry) || key_lines(w, type);
}

enum {
    SLOT_INFO = 0xF4, FUNCTION2 = 0xF5, FUNCTION_PRE_GA = 0xF6, MODULE_AUX = 0xF7,
    IDLE = 0xF8, FREQ = 0xF9, AUX = 0xFA, RESIZEDB = 0xFB, EXPIRETIME_MS = 0xFC,
    EXPIRETIME = 0xFD, SELECTDB = 0xFE, EOF_OPCODE = 0xFF,
};

/* Every record after the header, up to and including the EOF opcode. */
static int walk_records(Walk *w, int64_t now_ms, int64_t *expires, int64_t *expired) {
    DbCounts *db = select_db(w, 0);
    int has_expiry = 0;
    int64_t expiry = 0;
    if (!db)
        return FAIL;
    for (;;) {
        unsigned opcode;
        uint64_t n;
        if (byte(w, &opcode))
            return FAIL;
        switch (opcode) {
        case EOF_OPCODE:
            return w->emit ? flush(w) : OK;
        case SELECTDB:
            if (length(w, &n) || !(db = select_db(w, n)))
                return FAIL;
            continue;
        case EXPIRETIME_MS:
            if (need(w, 8))
                return FAIL;
            expiry = 0;
            for (int i = 7; i >= 0; i--)
                expiry = (int64_t)(((uint64_t)expiry << 8) | w->buf[w->start + i]);
            take(w, 8);
            has_expiry = 1;
            continue;
        case EXPIRETIME: {
            if (need(w, 4))
                return FAIL;
            const unsigned char *p = w->buf + w->start;
            int32_t seconds = (int32_t)((uint32_t)p[0] | ((uint32_t)p[1] << 8) |
                                        ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24));
            expiry = (int64_t)seconds * 1000;
            take(w, 4);
            has_expiry = 1;
            continue;
        }
        case AUX: {
            PyObject *name = aux_string(w);
            PyObject *value = name ? aux_string(w) : NULL;
            int status = OK;
            PyEval_RestoreThread(w->save);
            if (!value) {
                status = FAIL;
            } else {
                PyObject *pair = PyTuple_Pack(2, name, value);
                if (!pair || PyList_Append(w->aux, pair)) {
                    w->failed = 1;
                    status = FAIL;
                }
                Py_XDECREF(pair);
            }
            Py_XDECREF(name);
            Py_XDECREF(value);
            w->save = PyEval_SaveThread();
            if (status)
                return FAIL;
            continue;
        }
        case RESIZEDB:
            if (lengths(w, 2))
                return FAIL;
            continue;
        case IDLE:
            if (lengths(w, 1))
                return FAIL;
            continue;
        case FREQ:
            if (skip(w, 1))
                return FAIL;
            continue;
        case SLOT_INFO:
            if (lengths(w, 3))
                return FAIL;
            continue;
        case FUNCTION2:
            if (skip_string(w))
                return FAIL;
            continue;
        case MODULE_AUX: /* module id, when opcode, when */
            if (lengths(w, 3) || skip_module_values(w))
                return FAIL;
            continue;
        case FUNCTION_PRE_GA:
            return fail(w, "functions from Redis 7.0 release candidates are not supported");
        default:
            if (opcode >= TYPES || opcode == 6 || opcode == 8)
                return fail(w,
                            "unknown record type %u at byte %llu (damaged, or written by a "
                            "Redis newer than this reader knows)",
                            opcode, (unsigned long long)(w->offset - 1));
            if (w->emit ? emit_key(w, db->db, opcode, has_expiry, expiry)
                        : skip_string(w) || skip_value(w, opcode))
                return FAIL;
            db->counts[opcode]++;
            if (opcode == 7 && count_module(w, w->module_id, has_expiry))
                return FAIL;
            if (has_expiry) {
                (*expires)++;
                if (now_ms >= 0 && expiry < now_ms)
                    (*expired)++;
                has_expiry = 0;
            }
        }
    }
}

/* [(db, type, keys)] for the types seen in each database, in the order selected. */
static PyObject *counts_list(Walk *w, PyObject **dbs_out) {
    PyObject *dbs = PyList_New(0), *counts = PyList_New(0);
    int ok = dbs && counts;
    for (size_t i = 0; ok && i < w->db_numbers.n; i++) {
        PyObject *db = PyLong_FromUnsignedLongLong(w->dbs[i].db);
        ok = db && PyList_Append(dbs, db) == 0;
        for (int t = 0; ok && t < TYPES; t++) {
            if (!w->dbs[i].counts[t])
                continue;
            PyObject *item = Py_BuildValue("(OiL)", db, t, (long long)w->dbs[i].counts[t]);
            ok = item && PyList_Append(counts, item) == 0;
            Py_XDECREF(item);
        }
        Py_XDECREF(db);
    }
    if (!ok) {
        Py_XDECREF(dbs);
        Py_XDECREF(counts);
        return NULL;
    }
    *dbs_out = dbs;
    return counts;
}

/* [(module type name, keys, keys with an expiry)] in the order first seen. */
static PyObject *modules_list(Walk *w) {
    PyObject *modules = PyList_New(0);
    for (size_t i = 0; modules && i < w->module_ids.n; i++) {
        PyObject *item = Py_BuildValue("(sLL)", w->modules[i].name, (long long)w->modules[i].keys,
                                       (long long)w->modules[i].with_expiry);
        if (!item || PyList_Append(modules, item)) {
            Py_XDECREF(item);
            Py_CLEAR(modules);
            break;
        }
        Py_DECREF(item);
    }
    return modules;
}

static PyObject *walk(PyObject *self, PyObject *args, PyObject *kwargs) {
    (void)self;
    static char *keywords[] = {"read", "now_ms", "offset", "emit", NULL};
    PyObject *read, *emit = Py_None;
    long long now_ms;
    unsigned long long offset;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OLK|O", keywords, &read, &now_ms, &offset,
                                     &emit))
        return NULL;
    Walk w = {.read = read, .offset = offset, .emit = emit == Py_None ? NULL : emit};
    PyObject *result = NULL;
    if (!(w.aux = PyList_New(0)))
        return NULL;
    int64_t expires = 0, expired = 0;
    locale_t previous = uselocale(c_numeric);
    w.save = PyEval_SaveThread();
    int status = walk_records(&w, now_ms, &expires, &expired);
    PyEval_RestoreThread(w.save);
    uselocale(previous);
    if (status == OK) {
        PyObject *dbs = NULL, *counts = counts_list(&w, &dbs), *modules = modules_list(&w);
        if (counts && modules)
            result = Py_BuildValue("(OOOLLO)", w.aux, dbs, counts, (long long)expires,
                                   (long long)expired, modules);
        Py_XDECREF(dbs);
        Py_XDECREF(counts);
        Py_XDECREF(modules);
    } else if (!w.failed) {
        PyErr_SetString(PyExc_ValueError, w.message);
    }
    Py_DECREF(w.aux);
    PyMem_RawFree(w.buf);
    PyMem_RawFree(w.dbs);
    PyMem_RawFree(w.modules);
    bytes_free(&w.out);
    bytes_free(&w.prefix);
    bytes_free(&w.tail);
    bytes_free(&w.decoded);
    seen_free(&w.db_numbers);
    seen_free(&w.module_ids);
    return result;
}

static PyMethodDef methods[] = {
    {"walk", (PyCFunction)(void (*)(void))walk, METH_VARARGS | METH_KEYWORDS,
     "walk(read, now_ms, offset, emit=None) -> (aux, dbs, counts, expires, expired, modules)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_rdb_walk",
    .m_doc = "The structure of an RDB stream, counted in C.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__rdb_walk(void) {
    fill_byte_class();
    c_numeric = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    if (!c_numeric)
        return PyErr_NoMemory();
    return PyModule_Create(&module);
}
