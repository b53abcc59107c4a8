/* The JSON export's text as json_format.dumps writes it (strings, base64, numbers, scores)
   and the key lines: a big key split into lines of at most PIECE_ITEMS items or
   PIECE_BYTES raw bytes, the lines handed to emit in blocks of about BLOCK_BYTES. */

#include "_rdb_walk.h"

#define JSON_STRETCH (64 << 10) /* bytes of a string escaped per reservation */

void bytes_free(Bytes *b) { PyMem_RawFree(b->data); }

/* What a byte needs in a JSON string: 0 as it is, 1 an escape, 2 a UTF-8 sequence starts
   (or the byte is invalid); filled in at import. */
static unsigned char byte_class[256];
static const char HEX[] = "0123456789abcdef";
static const char BASE64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void fill_byte_class(void) {
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

size_t format_signed(char *to, int64_t v) {
    if (v >= 0)
        return format_unsigned(to, (uint64_t)v);
    to[0] = '-';
    return 1 + format_unsigned(to + 1, -(uint64_t)v);
}

int append_unsigned(Walk *w, Bytes *to, uint64_t v) {
    char digits[24];
    return append(w, to, digits, format_unsigned(digits, v));
}

/* "ms-seq" */
int append_id(Walk *w, Bytes *to, uint64_t ms, uint64_t seq) {
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
locale_t c_numeric;

/* A binary double score as the shortest %.{1..17}g that strtod reads back as the same. */
size_t score_text(double x, char *to /* 32 bytes */) {
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

/* ---- The key lines --------------------------------------------------------------------- */

/* Hand the whole lines gathered to emit (with the GIL). */
int flush(Walk *w) {
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
int line_close(Walk *w, int more) {
    if (APPEND_TEXT(w, &w->out, "]"))
        return FAIL;
    if (w->lines.stream && ((!more && append(w, &w->out, w->tail.data, w->tail.len)) ||
                            APPEND_TEXT(w, &w->out, "}")))
        return FAIL;
    return line_end(w, more);
}

int lines_begin(Walk *w, int stream) {
    w->lines.part = 0;
    w->lines.stream = stream;
    w->tail.len = 0;
    return line_open(w);
}

/* Before an item: a full line is written and another opened; the separator. */
int item_begin(Walk *w) {
    if (w->lines.items >= PIECE_ITEMS || w->lines.bytes >= PIECE_BYTES) {
        if (line_close(w, 1) || line_open(w))
            return FAIL;
    }
    w->lines.items++;
    return w->lines.items > 1 ? APPEND_TEXT(w, &w->out, ",") : OK;
}

/* An element as a JSON string (an integer: its digits) into `to`; *size its raw size. */
int json_element(Walk *w, Bytes *to, const Elem *e, size_t *size) {
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
int key_prefix(Walk *w, uint64_t db, const Elem *key, unsigned type, int has_expiry,
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
int element(Walk *w, const Elem *e) {
    size_t size;
    if (json_element(w, &w->out, e, &size))
        return FAIL;
    w->lines.bytes += size;
    return OK;
}

int string_element(Walk *w, const unsigned char *p, size_t n) {
    Elem e;
    set_bytes(&e, p, n);
    return element(w, &e);
}

/* One item of a list or set. */
int single_item(Walk *w, const Elem *e) {
    return item_begin(w) || element(w, e);
}

/* One item of a hash or zset: [a,b]. */
int pair_item(Walk *w, const Elem *a, const Elem *b) {
    return item_begin(w) || APPEND_TEXT(w, &w->out, "[") || element(w, a) ||
           APPEND_TEXT(w, &w->out, ",") || element(w, b) || APPEND_TEXT(w, &w->out, "]");
}

/* One line of a string value: its piece p, n. */
int string_piece(Walk *w, const unsigned char *p, size_t n, int more) {
    return append(w, &w->out, w->prefix.data, w->prefix.len) ||
           json_bytes(w, &w->out, p, n) || line_end(w, more);
}
