/* Emitting: the key and each value type read off the stream and written as key lines,
   whatever encoding Redis stored it in. */

#include "_rdb_walk.h"

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
int emit_key(Walk *w, uint64_t db, unsigned type, int has_expiry, int64_t expiry) {
    Elem key;
    if (value_string(w, &key))
        return FAIL;
    if (type == 7)
        return length(w, &w->module_id) || skip_module_values(w);
    return key_prefix(w, db, &key, type, has_expiry, expiry) || key_lines(w, type);
}
