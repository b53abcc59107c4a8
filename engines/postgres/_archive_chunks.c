/* The chunk run inside a data block of a pg_dump custom-format archive, walked in C.

   With pg_dump's compression off a table's data block is one chunk per row: a length
   (a sign byte, then `int_size` bytes little-endian) and that many bytes of COPY text,
   ended by a zero length. At a million rows a second a Python loop over the headers
   would hold a backup or a restore back; this one runs without the GIL.

   chunks(data, pos, pending, int_size) -> (payload, pos, pending, ended)
     data: a bytes-like block of the archive; the walk starts at data[pos:]
     pending: bytes of the current chunk's payload still to come (0 at a chunk header)
     payload: the bytes of the chunks walked, without their headers
   It stops at the end of `data`, before a chunk header that does not fit whole (the
   caller carries those bytes over to the next block), or just after the zero length
   that ends the run (ended True). A negative length raises ValueError. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static PyObject *chunks(PyObject *Py_UNUSED(module), PyObject *args) {
    Py_buffer view;
    Py_ssize_t pos, pending;
    int int_size;
    if (!PyArg_ParseTuple(args, "y*nni", &view, &pos, &pending, &int_size))
        return NULL;
    if (int_size < 1 || int_size > 8 || pos < 0 || pos > view.len || pending < 0) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "chunks: position, pending or int_size out of range");
        return NULL;
    }
    const unsigned char *data = view.buf;
    Py_ssize_t size = view.len;
    PyObject *payload = PyBytes_FromStringAndSize(NULL, size - pos);
    if (!payload) {
        PyBuffer_Release(&view);
        return NULL;
    }
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(payload);
    Py_ssize_t kept = 0;
    int ended = 0, negative = 0;
    Py_BEGIN_ALLOW_THREADS
    for (;;) {
        if (pending > 0) {
            Py_ssize_t take = size - pos < pending ? size - pos : pending;
            memcpy(out + kept, data + pos, (size_t)take);
            kept += take;
            pos += take;
            pending -= take;
            if (pending > 0)
                break; /* the block ended inside the chunk */
        }
        if (size - pos < 1 + int_size)
            break;
        uint64_t length = 0;
        for (int i = int_size; i >= 1; i--)
            length = (length << 8) | data[pos + i];
        if (data[pos] != 0 && length != 0) {
            negative = 1;
            break;
        }
        pos += 1 + int_size;
        if (length == 0) {
            ended = 1;
            break;
        }
        if (length > (uint64_t)PY_SSIZE_T_MAX) {
            negative = 1;
            break;
        }
        pending = (Py_ssize_t)length;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    if (negative) {
        Py_DECREF(payload);
        PyErr_SetString(PyExc_ValueError, "a data chunk with a negative or impossible length");
        return NULL;
    }
    if (_PyBytes_Resize(&payload, kept) < 0)
        return NULL;
    PyObject *result = Py_BuildValue("(OnnO)", payload, pos, pending, ended ? Py_True : Py_False);
    Py_DECREF(payload);
    return result;
}

static PyMethodDef methods[] = {
    {"chunks", chunks, METH_VARARGS,
     "chunks(data, pos, pending, int_size) -> (payload, pos, pending, ended)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_archive_chunks",
    .m_doc = "The chunks of a pg_dump custom-format data block, walked in C.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__archive_chunks(void) { return PyModule_Create(&module); }
