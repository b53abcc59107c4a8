/* Reading an RDB stream as it arrives: the bytes in a buffer refilled from `read` (with
   the GIL), lengths and strings in Redis's encodings, and the values skipped unread when
   the walk only counts. */

#include "_rdb_walk.h"

#define READ_SIZE (1 << 20)

int fail(Walk *w, const char *format, ...) {
    if (!w->message[0] && !w->failed) {
        va_list args;
        va_start(args, format);
        vsnprintf(w->message, sizeof w->message, format, args);
        va_end(args);
    }
    return FAIL;
}

/* need() when fewer than `n` bytes are buffered: read until they are (n small), with
   the GIL. */
int refill(Walk *w, size_t n) {
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

int skip(Walk *w, uint64_t n) {
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

int length(Walk *w, uint64_t *value) {
    unsigned first;
    if (byte(w, &first))
        return FAIL;
    return length_from(w, first, value, "length encoding");
}

/* The next string's encoding (-1 plain, 0-2 integer, 3 LZF), payload size and (LZF) the
   original size. */
int lzf_string_size(Walk *w, int *encoding, uint64_t *size, uint64_t *original) {
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

int skip_string(Walk *w) {
    int encoding;
    uint64_t size;
    if (string_size(w, &encoding, &size))
        return FAIL;
    return skip(w, size);
}

/* An aux field's string, as bytes (needs the GIL to build: done by the caller). */
PyObject *aux_string(Walk *w) {
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

int skip_module_values(Walk *w) {
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

int lengths(Walk *w, int n) {
    uint64_t ignored;
    for (int i = 0; i < n; i++)
        if (length(w, &ignored))
            return FAIL;
    return OK;
}

/* A consumer group's pending entries and consumers (the JSON has no place for them). */
int skip_pending_and_consumers(Walk *w, unsigned type) {
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

int skip_value(Walk *w, unsigned type) {
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
