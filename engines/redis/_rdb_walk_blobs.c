/* The compact encodings Redis keeps a value in, each a blob held whole: LZF-compressed
   strings, ziplists, listpacks, intsets and zipmaps. A blob is checked whole
   (blob_check: any damage is FAIL, the caller names it) before its elements are read
   (blob_next). No Python and no walk state here. */

#include "_rdb_walk.h"

/* LZF (liblzf's format, as Redis writes it): `n` bytes into exactly `size` at `out`, which
   has LZF_SLACK bytes of room beyond `size`: a short copy is done as one fixed-size copy of
   LZF_SLACK bytes (a few instructions, not a call) whose excess the next copy overwrites. */
int lzf_decompress(const unsigned char *in, size_t n, unsigned char *out, size_t size) {
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

const char *const BLOB_NAMES[] = {"ziplist", "listpack", "intset", "zipmap"};

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
int blob_check(Blob *b, int kind, const unsigned char *p, size_t n) {
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
void blob_next(Blob *b, Elem *e) {
    size_t next = b->at;
    blob_entry(b, e, &next); /* checked before: cannot fail */
    b->at = next;
    b->index++;
}
