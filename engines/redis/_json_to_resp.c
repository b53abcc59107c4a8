/* The restore's compile step in C: whole-key lines of a JSON export straight to RESP.

   compile_run(block, start, now_ms, only_db, delete_first, max_keys, max_bytes) reads the
   lines of `block` from offset `start` for as long as each is a whole key in exactly the
   shape the exporter writes (keys in its order, plain JSON strings, no base64, no parts),
   all of one database, and builds one spool batch of their commands. It stops before the
   first line it does not take; Python then handles that line with the full parser, whose
   errors name the line. So this accepts a subset of what the parser accepts and must give
   the same commands as engines/redis/json_compile.compile_document (a test holds them side
   by side). Returns
     (end, lines, db, frames, replies, commands, index, kind_counts, with_ttl, past, expired)
   where `index` is the spool's columnar frame index (json_spool) and kind_counts follows
   json_format.TYPES. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

enum { STRING, LIST, SET, ZSET, HASH, STREAM, KINDS };
static const char *const KIND_NAMES[KINDS] = {"string", "list", "set", "zset", "hash", "stream"};
static const char *const COMMAND_NAMES[KINDS] = {"SET", "RPUSH", "SADD", "ZADD", "HSET", "XADD"};
enum { FIRST = 1, FINAL = 2, AGGREGATE = 4 };

typedef struct {
    char *data;
    size_t len, cap;
} Buf;

typedef struct {
    size_t offset, len;
} Span;

typedef struct {
    Span *items;
    size_t len, cap;
} Spans;

static int reserve(Buf *buf, size_t extra) {
    if (buf->len + extra <= buf->cap)
        return 0;
    size_t cap = buf->cap ? buf->cap : 65536;
    while (cap < buf->len + extra)
        cap *= 2;
    char *data = PyMem_Realloc(buf->data, cap);
    if (!data) {
        PyErr_NoMemory();
        return -1;
    }
    buf->data = data;
    buf->cap = cap;
    return 0;
}

static int put(Buf *buf, const void *bytes, size_t n) {
    if (n == 0) /* an empty buffer has no block yet: memcpy must not see its NULL */
        return 0;
    if (reserve(buf, n))
        return -1;
    memcpy(buf->data + buf->len, bytes, n);
    buf->len += n;
    return 0;
}

static int put_u32(Buf *buf, uint32_t value) { return put(buf, &value, sizeof value); }

/* `items` (`len` of `*cap` in use, each `size` bytes) with room for one more: the same
   pointer, a bigger block (`*cap` updated), or NULL with MemoryError set. */
static void *room_for_one(void *items, size_t len, size_t *cap, size_t size, size_t first) {
    if (len < *cap)
        return items;
    size_t grown_cap = *cap ? *cap * 2 : first;
    void *grown = PyMem_Realloc(items, grown_cap * size);
    if (!grown)
        return PyErr_NoMemory();
    *cap = grown_cap;
    return grown;
}

static int push_span(Spans *spans, size_t offset, size_t len) {
    Span *items = room_for_one(spans->items, spans->len, &spans->cap, sizeof(Span), 64);
    if (!items)
        return -1;
    spans->items = items;
    spans->items[spans->len++] = (Span){offset, len};
    return 0;
}

/* --- parsing: 1 taken, 0 not this shape (the line goes to Python), -1 error set ---------- */

typedef struct {
    const unsigned char *at, *end;
} Cursor;

static int literal_n(Cursor *c, const char *text, size_t n) {
    if ((size_t)(c->end - c->at) < n || memcmp(c->at, text, n) != 0)
        return 0;
    c->at += n;
    return 1;
}
#define literal(c, text) literal_n((c), (text), sizeof(text) - 1)

/* A non-negative JSON integer of at most 18 digits (no sign, no leading zero). */
static int integer(Cursor *c, int64_t *value) {
    const unsigned char *start = c->at;
    int64_t n = 0;
    /* 18 digits at most, so that n never overflows; a 19th is refused below */
    while (c->at < c->end && *c->at >= '0' && *c->at <= '9' && c->at - start < 18)
        n = n * 10 + (*c->at++ - '0');
    size_t digits = (size_t)(c->at - start);
    if (digits == 0 || (digits > 1 && *start == '0'))
        return 0;
    if (c->at < c->end && (*c->at == '.' || *c->at == 'e' || *c->at == 'E' ||
                           (*c->at >= '0' && *c->at <= '9')))
        return 0;
    *value = n;
    return 1;
}

/* Length of the well-formed UTF-8 sequence at `p` (no overlong forms, no surrogates, at
   most U+10FFFF), or 0. */
static size_t utf8_sequence(const unsigned char *p, const unsigned char *end) {
    unsigned char b = p[0];
    size_t n;
    if (b >= 0xC2 && b <= 0xDF)
        n = 2;
    else if (b >= 0xE0 && b <= 0xEF)
        n = 3;
    else if (b >= 0xF0 && b <= 0xF4)
        n = 4;
    else
        return 0;
    if ((size_t)(end - p) < n)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    if (b == 0xE0 && p[1] < 0xA0)
        return 0;
    if (b == 0xED && p[1] >= 0xA0)
        return 0;
    if (b == 0xF0 && p[1] < 0x90)
        return 0;
    if (b == 0xF4 && p[1] >= 0x90)
        return 0;
    return n;
}

/* A JSON string decoded into `text`, its place pushed on `spans`. \u escapes are left to
   Python (surrogates need its rules). */
static int string(Cursor *c, Buf *text, Spans *spans) {
    if (c->at >= c->end || *c->at != '"')
        return 0;
    c->at++;
    size_t offset = text->len;
    for (;;) {
        const unsigned char *run = c->at;
        while (c->at < c->end && *c->at >= 0x20 && *c->at != '"' && *c->at != '\\' &&
               *c->at < 0x80)
            c->at++;
        if (c->at > run && put(text, run, (size_t)(c->at - run)))
            return -1;
        if (c->at >= c->end || *c->at < 0x20)
            return 0;
        unsigned char b = *c->at;
        if (b == '"') {
            c->at++;
            return push_span(spans, offset, text->len - offset) ? -1 : 1;
        }
        if (b == '\\') {
            if (c->end - c->at < 2)
                return 0;
            char plain;
            switch (c->at[1]) {
            case '"': plain = '"'; break;
            case '\\': plain = '\\'; break;
            case '/': plain = '/'; break;
            case 'b': plain = '\b'; break;
            case 'f': plain = '\f'; break;
            case 'n': plain = '\n'; break;
            case 'r': plain = '\r'; break;
            case 't': plain = '\t'; break;
            default: return 0;
            }
            if (put(text, &plain, 1))
                return -1;
            c->at += 2;
            continue;
        }
        size_t n = utf8_sequence(c->at, c->end);
        if (n == 0)
            return 0;
        if (put(text, c->at, n))
            return -1;
        c->at += n;
    }
}

/* [ "a", "b", ... ] with at least one item, or [["a","b"], ...] pairs when `pairs`. */
static int string_array(Cursor *c, Buf *text, Spans *spans, int pairs) {
    if (!literal(c, "["))
        return 0;
    for (;;) {
        int ok;
        if (pairs) {
            if (!literal(c, "["))
                return 0;
            if ((ok = string(c, text, spans)) != 1)
                return ok;
            if (!literal(c, ","))
                return 0;
            if ((ok = string(c, text, spans)) != 1)
                return ok;
            if (!literal(c, "]"))
                return 0;
        } else if ((ok = string(c, text, spans)) != 1) {
            return ok;
        }
        if (literal(c, "]"))
            return 1;
        if (!literal(c, ","))
            return 0;
    }
}

static int digits(const char *p, const char *end) {
    const char *start = p;
    while (p < end && *p >= '0' && *p <= '9')
        p++;
    return (int)(p - start);
}

/* What Redis prints for a score, in a form float() reads and which is not NaN:
   [-+]?(inf|D+(.D*)?|.D+)([eE][-+]?D+)? */
static int valid_score(const char *p, size_t len) {
    const char *end = p + len;
    if (p < end && (*p == '-' || *p == '+'))
        p++;
    if ((size_t)(end - p) == 3 && memcmp(p, "inf", 3) == 0)
        return 1;
    int whole = digits(p, end);
    p += whole;
    int fraction = 0;
    if (p < end && *p == '.') {
        p++;
        fraction = digits(p, end);
        p += fraction;
    }
    if (whole + fraction == 0)
        return 0;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '-' || *p == '+'))
            p++;
        int exponent = digits(p, end);
        if (exponent == 0)
            return 0;
        p += exponent;
    }
    return p == end;
}

static int valid_stream_id(const char *p, size_t len) {
    const char *end = p + len;
    int ms = digits(p, end);
    if (ms == 0 || p + ms >= end || p[ms] != '-')
        return 0;
    int seq = digits(p + ms + 1, end);
    return seq > 0 && p + ms + 1 + seq == end;
}

/* A stream value with no consumer groups. Spans: for each entry its id then its fields
   (entry_fields[i] of them), then last_id and max_deleted_id. */
typedef struct {
    size_t *fields; /* per entry */
    size_t entries, cap;
    int64_t added;
} StreamShape;

static int stream(Cursor *c, Buf *text, Spans *spans, StreamShape *shape) {
    shape->entries = 0;
    if (!literal(c, "{\"entries\":["))
        return 0;
    for (;;) {
        int ok;
        if (!literal(c, "["))
            return 0;
        size_t before = spans->len;
        if ((ok = string(c, text, spans)) != 1)
            return ok;
        Span id = spans->items[before];
        if (!valid_stream_id(text->data + id.offset, id.len))
            return 0;
        if (!literal(c, ","))
            return 0;
        if ((ok = string_array(c, text, spans, 0)) != 1)
            return ok;
        size_t fields = spans->len - before - 1;
        if (fields % 2)
            return 0;
        if (!literal(c, "]"))
            return 0;
        size_t *grown =
            room_for_one(shape->fields, shape->entries, &shape->cap, sizeof(size_t), 16);
        if (!grown)
            return -1;
        shape->fields = grown;
        shape->fields[shape->entries++] = fields;
        if (literal(c, "]"))
            break;
        if (!literal(c, ","))
            return 0;
    }
    int ok;
    if (!literal(c, ",\"last_id\":"))
        return 0;
    if ((ok = string(c, text, spans)) != 1)
        return ok;
    if (!literal(c, ",\"entries_added\":") || !integer(c, &shape->added))
        return 0;
    if (!literal(c, ",\"max_deleted_id\":"))
        return 0;
    if ((ok = string(c, text, spans)) != 1)
        return ok;
    for (size_t i = spans->len - 2; i < spans->len; i++)
        if (!valid_stream_id(text->data + spans->items[i].offset, spans->items[i].len))
            return 0;
    return literal(c, ",\"groups\":[]}") ? 1 : 0;
}

typedef struct {
    int64_t db, expires;
    int kind, has_expires;
    Span key;
} Line;

/* One whole-key line, up to and including its newline. */
static int key_line(Cursor *c, Buf *text, Spans *spans, StreamShape *shape, Line *line) {
    int ok;
    if (!literal(c, "{\"db\":") || !integer(c, &line->db))
        return 0;
    if (!literal(c, ",\"key\":"))
        return 0;
    if ((ok = string(c, text, spans)) != 1)
        return ok;
    line->key = spans->items[0];
    if (!literal(c, ",\"type\":\""))
        return 0;
    line->kind = -1;
    for (int kind = 0; kind < KINDS; kind++) {
        const char *name = KIND_NAMES[kind];
        size_t n = strlen(name);
        if ((size_t)(c->end - c->at) > n && memcmp(c->at, name, n) == 0 && c->at[n] == '"') {
            line->kind = kind;
            c->at += n + 1;
            break;
        }
    }
    if (line->kind < 0)
        return 0;
    line->has_expires = literal(c, ",\"expires_at_ms\":");
    if (line->has_expires && !integer(c, &line->expires))
        return 0;
    if (!literal(c, ",\"value\":"))
        return 0;
    switch (line->kind) {
    case STRING: ok = string(c, text, spans); break;
    case LIST:
    case SET: ok = string_array(c, text, spans, 0); break;
    case ZSET:
    case HASH: ok = string_array(c, text, spans, 1); break;
    default: ok = stream(c, text, spans, shape); break;
    }
    if (ok != 1)
        return ok;
    if (line->kind == ZSET)
        for (size_t i = 2; i < spans->len; i += 2)
            if (!valid_score(text->data + spans->items[i].offset, spans->items[i].len))
                return 0;
    return literal(c, "}\n") ? 1 : 0;
}

/* --- RESP --------------------------------------------------------------------------- */

/* The decimal digits of a non-negative `value`, written backwards from `end`. */
static char *decimal(char *end, uint64_t value) {
    do {
        *--end = (char)('0' + value % 10);
        value /= 10;
    } while (value);
    return end;
}

static int put_number(Buf *buf, char prefix, int64_t value) {
    char text[24];
    char *end = text + sizeof text;
    end[-2] = '\r';
    end[-1] = '\n';
    char *at = decimal(end - 2, (uint64_t)value);
    *--at = prefix;
    return put(buf, at, (size_t)(end - at));
}

static int bulk(Buf *out, const char *bytes, size_t len) {
    if (put_number(out, '$', (int64_t)len) || put(out, bytes, len))
        return -1;
    return put(out, "\r\n", 2);
}

static int bulk_text(Buf *out, const char *text) { return bulk(out, text, strlen(text)); }

static int bulk_span(Buf *out, const Buf *text, Span span) {
    return bulk(out, text->data + span.offset, span.len);
}

static int bulk_number(Buf *out, int64_t value) {
    char text[24];
    char *at = decimal(text + sizeof text, (uint64_t)value);
    return bulk(out, at, (size_t)(text + sizeof text - at));
}

static int header(Buf *out, int64_t args, const char *name, const Buf *text, Span key) {
    if (put_number(out, '*', args) || bulk_text(out, name))
        return -1;
    return bulk_span(out, text, key);
}

static int spans_equal(const Buf *text, Span a, Span b) {
    return a.len == b.len && memcmp(text->data + a.offset, text->data + b.offset, a.len) == 0;
}

/* The commands of one parsed line; returns how many, or -1. */
static int64_t commands(Buf *out, const Buf *text, const Spans *spans, const StreamShape *shape,
                        const Line *line, int delete_first) {
    Span key = line->key;
    const Span *args = spans->items + 1;
    size_t nargs = spans->len - 1;
    int64_t count = 0;
    if (delete_first && line->kind != STRING) {
        if (header(out, 2, "DEL", text, key))
            return -1;
        count++;
    }
    if (line->kind == STREAM) {
        size_t at = 0;
        for (size_t e = 0; e < shape->entries; e++) {
            size_t fields = shape->fields[e];
            if (header(out, (int64_t)fields + 3, "XADD", text, key))
                return -1;
            for (size_t i = 0; i <= fields; i++)
                if (bulk_span(out, text, args[at + i]))
                    return -1;
            at += fields + 1;
            count++;
        }
        Span last_entry = args[at - shape->fields[shape->entries - 1] - 1];
        Span last = args[at], deleted = args[at + 1];
        int last_is_zero = last.len == 3 && memcmp(text->data + last.offset, "0-0", 3) == 0;
        int deleted_is_zero =
            deleted.len == 3 && memcmp(text->data + deleted.offset, "0-0", 3) == 0;
        int as_added = spans_equal(text, last, last_entry) &&
                       shape->added == (int64_t)shape->entries && deleted_is_zero;
        if (!last_is_zero && !as_added) {
            if (header(out, 7, "XSETID", text, key) || bulk_span(out, text, last) ||
                bulk_text(out, "ENTRIESADDED") || bulk_number(out, shape->added) ||
                bulk_text(out, "MAXDELETEDID") || bulk_span(out, text, deleted))
                return -1;
            count++;
        }
    } else {
        if (header(out, (int64_t)nargs + 2, COMMAND_NAMES[line->kind], text, key))
            return -1;
        for (size_t i = 0; i < nargs; i++) {
            /* ZADD wants score, member; the export has member, score */
            size_t pick = line->kind == ZSET ? (i % 2 ? i - 1 : i + 1) : i;
            if (bulk_span(out, text, args[pick]))
                return -1;
        }
        count++;
    }
    if (line->has_expires) {
        if (header(out, 3, "PEXPIREAT", text, key) || bulk_number(out, line->expires))
            return -1;
        count++;
    }
    return count;
}

/* --- the run ------------------------------------------------------------------------ */

typedef struct {
    Buf text, commands, flags, key_sizes, command_sizes, counts, keys;
    Spans spans;
    StreamShape shape;
} Work;

static void release(Work *w) {
    Buf *bufs[] = {&w->text, &w->commands, &w->flags, &w->key_sizes, &w->command_sizes,
                   &w->counts, &w->keys};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        PyMem_Free(bufs[i]->data);
    PyMem_Free(w->spans.items);
    PyMem_Free(w->shape.fields);
}

static PyObject *compile_run(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer block;
    Py_ssize_t start, max_keys, max_bytes;
    long long now_ms, only_db;
    int delete_first;
    if (!PyArg_ParseTuple(args, "y*nLLpnn", &block, &start, &now_ms, &only_db, &delete_first,
                          &max_keys, &max_bytes))
        return NULL;
    Work w = {0};
    PyObject *result = NULL;
    const unsigned char *base = block.buf;
    const unsigned char *at = base, *end = base + block.len;
    int64_t run_db = -1, replies = 0, with_ttl = 0, past = 0, expired = 0;
    int64_t kind_counts[KINDS] = {0};
    Py_ssize_t lines = 0, frames = 0;
    if (start < 0 || start > block.len) {
        PyErr_SetString(PyExc_ValueError, "start is outside the block");
        goto done;
    }
    at += start; /* only now: a pointer outside the block is undefined even unused */
    while (at < end && frames < max_keys && (Py_ssize_t)w.commands.len < max_bytes) {
        Cursor c = {at, end};
        Line line;
        w.text.len = 0;
        w.spans.len = 0;
        int ok = key_line(&c, &w.text, &w.spans, &w.shape, &line);
        if (ok < 0)
            goto done;
        if (ok == 0 || (run_db >= 0 && line.db != run_db) || line.db > INT32_MAX)
            break;
        run_db = line.db;
        at = c.at;
        lines++;
        kind_counts[line.kind]++;
        if (line.has_expires) {
            with_ttl++;
            if (line.expires <= now_ms) {
                past++;
                if (only_db < 0 || line.db == only_db) {
                    expired++;
                    continue;
                }
            }
        }
        if (only_db >= 0 && line.db != only_db)
            continue;
        size_t before = w.commands.len;
        int64_t count = commands(&w.commands, &w.text, &w.spans, &w.shape, &line, delete_first);
        if (count < 0)
            goto done;
        uint8_t flags = FIRST | FINAL | (line.kind == STRING ? 0 : AGGREGATE);
        if (put(&w.flags, &flags, 1) || put_u32(&w.key_sizes, (uint32_t)line.key.len) ||
            put_u32(&w.command_sizes, (uint32_t)(w.commands.len - before)) ||
            put_u32(&w.counts, (uint32_t)count) ||
            put(&w.keys, w.text.data + line.key.offset, line.key.len))
            goto done;
        frames++;
        replies += count;
    }
    {
        Buf index = {0};
        if (put(&index, w.flags.data, w.flags.len) ||
            put(&index, w.key_sizes.data, w.key_sizes.len) ||
            put(&index, w.command_sizes.data, w.command_sizes.len) ||
            put(&index, w.counts.data, w.counts.len) || put(&index, w.keys.data, w.keys.len)) {
            PyMem_Free(index.data);
            goto done;
        }
        result = Py_BuildValue(
            "nnLnLy#y#(LLLLLL)LLL", (Py_ssize_t)(at - base), lines, (long long)run_db, frames,
            (long long)replies, w.commands.data ? w.commands.data : "",
            (Py_ssize_t)w.commands.len, index.data ? index.data : "", (Py_ssize_t)index.len,
            (long long)kind_counts[0], (long long)kind_counts[1], (long long)kind_counts[2],
            (long long)kind_counts[3], (long long)kind_counts[4], (long long)kind_counts[5],
            (long long)with_ttl, (long long)past, (long long)expired);
        PyMem_Free(index.data);
    }
done:
    release(&w);
    PyBuffer_Release(&block);
    return result;
}

/* --- keys written twice ----------------------------------------------------------- */

static uint64_t key_hash(int64_t db, const unsigned char *key, size_t len) {
    uint64_t h = 0xcbf29ce484222325ULL ^ (uint64_t)db;
    for (size_t i = 0; i < len; i++)
        h = (h ^ key[i]) * 0x100000001b3ULL;
    h ^= h >> 30; /* splitmix64's finish: every input bit reaches every output bit */
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    return h ^ (h >> 31);
}

/* seen_before(seen, db, index, frames): the frames of a batch that start an aggregate
   key (list, set, ...) which may have started before, as any type. `seen` is a Bloom
   filter (a bytearray, a power of two in size) that remembers every key started: a key
   is reported when both its bits were set already, so a key seen before always is, and a
   new key rarely (the caller deletes it first, which costs a command, not data). A
   string needs no report: SET replaces whatever was there. */
static PyObject *seen_before(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer seen, index;
    long long db;
    Py_ssize_t frames;
    if (!PyArg_ParseTuple(args, "w*Ly*n", &seen, &db, &index, &frames))
        return NULL;
    PyObject *found = NULL;
    uint64_t bits = (uint64_t)seen.len * 8;
    if (seen.len == 0 || (bits & (bits - 1)) || bits > (1ULL << 32) || frames < 0 ||
        frames > index.len / 13) { /* frames * 13 could overflow */
        PyErr_SetString(PyExc_ValueError, "seen_before: a filter of 2**n bytes and an index");
        goto done;
    }
    if (!(found = PyList_New(0)))
        goto done;
    const unsigned char *flags = index.buf;
    const unsigned char *sizes = flags + frames;
    const unsigned char *key = flags + frames * 13;
    const unsigned char *end = (const unsigned char *)index.buf + index.len;
    unsigned char *filter = seen.buf;
    for (Py_ssize_t i = 0; i < frames; i++) {
        uint32_t size;
        memcpy(&size, sizes + 4 * i, sizeof size);
        if ((size_t)(end - key) < size) {
            PyErr_SetString(PyExc_ValueError, "seen_before: the index is cut short");
            Py_CLEAR(found);
            goto done;
        }
        if (flags[i] & FIRST) {
            uint64_t h = key_hash(db, key, size);
            uint64_t one = h & (bits - 1), two = (h >> 32) & (bits - 1);
            int known = (filter[one >> 3] >> (one & 7)) & (filter[two >> 3] >> (two & 7)) & 1;
            filter[one >> 3] |= (unsigned char)(1 << (one & 7));
            filter[two >> 3] |= (unsigned char)(1 << (two & 7));
            if (known && (flags[i] & AGGREGATE)) {
                PyObject *number = PyLong_FromSsize_t(i);
                if (!number || PyList_Append(found, number)) {
                    Py_XDECREF(number);
                    Py_CLEAR(found);
                    goto done;
                }
                Py_DECREF(number);
            }
        }
        key += size;
    }
done:
    PyBuffer_Release(&seen);
    PyBuffer_Release(&index);
    return found;
}

static PyMethodDef methods[] = {
    {"compile_run", compile_run, METH_VARARGS,
     "compile_run(block, start, now_ms, only_db, delete_first, max_keys, max_bytes)"},
    {"seen_before", seen_before, METH_VARARGS, "seen_before(seen, db, index, frames)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_json_to_resp",
    .m_doc = "Whole-key export lines to RESP, in C.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__json_to_resp(void) { return PyModule_Create(&module); }
