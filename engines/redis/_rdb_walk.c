/* engines/redis/rdb_format.read_summary in C: walk an RDB stream as it arrives, count its
   keys and, when asked, write the JSON export's key lines of every key (the one-pass backup
   of issue #18; the rules: engines/redis/rdb_json_rules.md, the JSON format:
   engines/redis/json_format.py).

   Hand-written rather than generated or bound to a library: the walk must keep up with a
   snapshot streaming from the server (a million keys in well under a second), never hold
   a big value whole, never trust a length in a damaged or hostile file, and give exactly
   the lines and the error messages of the Python twin (rdb_format.walk_in_python with
   rdb_values, rdb_keys, rdb_json), which the oracle tests hold side by side with it.
   It runs without the GIL and takes it back only to call `read` and `emit` and to build
   the results, so a backup's other threads keep going.

   walk(read, now_ms, offset, emit=None)
     -> (aux, dbs, counts, expires, expired_before, modules, end)
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
     end: the stream offset just after the EOF opcode (the walk reads ahead, so what
       `read` returned tells nothing of where the RDB ended: trailing bytes are found so)
   Damage, a cut or a type this walker does not know raise ValueError with the message
   the Python walk gives.

   The files, one part each (what they share: _rdb_walk.h):
     _rdb_walk.c         this entry point, the record loop, the counts per database and
                         module type
     _rdb_walk_read.c    reading the stream: framing, strings, values skipped (counting)
     _rdb_walk_values.c  each value type read into key lines (emitting)
     _rdb_walk_json.c    JSON text, and the key lines: big keys split, blocks for emit
     _rdb_walk_blobs.c   LZF and the encoded blobs (ziplist, listpack, intset, zipmap) */

#include "_rdb_walk.h"

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
            result = Py_BuildValue("(OOOLLOK)", w.aux, dbs, counts, (long long)expires,
                                   (long long)expired, modules, (unsigned long long)w.offset);
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
     "walk(read, now_ms, offset, emit=None) -> (aux, dbs, counts, expires, expired, modules, end)"},
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
