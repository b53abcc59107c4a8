/* engines/redis/rdb_format.read_summary in C: walk an RDB stream's structure and count
   its keys, skipping every value. The walk runs without the GIL and takes it back only
   to call `read` for the next block, so a backup's other threads keep going.

   walk(read, now_ms, offset, emit=None)
     -> (aux, dbs, counts, expires, expired_before, modules)
     read: a callable (size) -> bytes, b"" at the end of the stream, which is read from
       just after the 9-byte header (`offset` bytes in, for the messages)
     now_ms: keys with an earlier expiry are counted in expired_before (-1: none)
     aux: [(name, value)] as stored (integer-encoded values as their digits)
     dbs: the databases selected, in order, starting with 0
     counts: [(db, rdb type byte, keys)]
     modules: [(module type name, keys)] for the keys of module types (type 7), first seen first
   Damage, a cut or a type this walker does not know raise ValueError with the message
   the Python reader gives (rdb_format), which a test holds side by side. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
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
    int64_t keys;
} ModuleCount;

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

/* One more key of the module type whose id (a 9-character name and a 10-bit version) is `id`. */
static int count_module(Walk *w, uint64_t id) {
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
    }
    w->modules[index].keys++;
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

/* The next string's encoding (-1 plain, 0-2 integer, 3 LZF) and payload size. */
static int string_size(Walk *w, int *encoding, uint64_t *size) {
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
        uint64_t original;
        *encoding = 3;
        if (length(w, size) || length(w, &original))
            return FAIL;
        return OK;
    }
    return fail(w, "unknown string encoding %u at byte %llu", code,
                (unsigned long long)(w->offset - 1));
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
        uint64_t pending, consumers;
        if (skip_string(w) || lengths(w, 2))
            return FAIL;
        if (type >= 19 && lengths(w, 1))
            return FAIL;
        if (length(w, &pending) || skip_records(w, pending, 16 + 8))
            return FAIL;
        for (uint64_t p = 0; p < pending; p++)
            if (lengths(w, 1))
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
        if (length(w, &n) || count_module(w, n))
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
            return OK;
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
        case MODULE_AUX:
            if (lengths(w, 2) || skip_module_values(w))
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
            if (skip_string(w) || skip_value(w, opcode))
                return FAIL;
            db->counts[opcode]++;
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

/* [(module type name, keys)] in the order first seen. */
static PyObject *modules_list(Walk *w) {
    PyObject *modules = PyList_New(0);
    for (size_t i = 0; modules && i < w->module_ids.n; i++) {
        PyObject *item = Py_BuildValue("(sL)", w->modules[i].name, (long long)w->modules[i].keys);
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
    if (emit != Py_None) {
        PyErr_SetString(PyExc_NotImplementedError, "emit is not implemented yet");
        return NULL;
    }
    Walk w = {.read = read, .offset = offset};
    PyObject *result = NULL;
    if (!(w.aux = PyList_New(0)))
        return NULL;
    int64_t expires = 0, expired = 0;
    w.save = PyEval_SaveThread();
    int status = walk_records(&w, now_ms, &expires, &expired);
    PyEval_RestoreThread(w.save);
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

PyMODINIT_FUNC PyInit__rdb_walk(void) { return PyModule_Create(&module); }
