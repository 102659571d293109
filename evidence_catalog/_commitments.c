/* The salted commitments of a custody event's values, made in C: the walk that
 * evidence_catalog.sealing._committed_fast and evidence_catalog.stored_events._stored_fast make
 * over an event's members, for what JSON is made of -- objects, arrays, texts, nulls, booleans
 * and integers JSON carries exactly.  Everything else is handed back to Python, which decides
 * or refuses: a value of another type (`other`), a member committed whole (`whole`), a key that
 * is not plain ASCII text (`key_check`).
 *
 * A text value at JSON Pointer P of an event whose secret is K is committed as
 *     "sd:" + hex(SHA-256('["' + S + '",' + T + ']'))
 * where S is the first 32 hex digits of HMAC-SHA256(K, P) and T the value's JSON text as
 * Python's json writes it (its own `encode_basestring`, called from here: the very characters).
 * The pure-Python walks compute the same bytes and remain the reference; the test suite holds
 * the two equal on hostile input.
 *
 * `committed` makes the committed form (objects, arrays, digests); `committed_json` writes the
 * canonical JSON of that form instead, as the walk goes, without making it: what hashing an
 * event needs (sealing._seal, sealing.preseal, stored_events._stored_fast).
 *
 * Optional: when this cannot be compiled (no C compiler, no OpenSSL headers), the package
 * works the same in pure Python, more slowly.  SHA-256 is OpenSSL's (libcrypto), the library
 * Python's hashlib uses. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#define SAFE_INTEGER 9007199254740991LL /* 2**53 - 1: larger integers are left to Python */
#define SALT_HEX 32
/* Objects and arrays nested deeper than this are refused (RecursionError, as Python's own
 * limit would), whatever the interpreter's recursion limit: the C stack is not grown. */
#define MAX_DEPTH 2000
#ifndef EC_SOURCE_SHA256
#define EC_SOURCE_SHA256 "" /* set by the build: the SHA-256 of this file, checked at import */
#endif

typedef struct {
    SHA256_CTX inner, outer; /* HMAC-SHA256's two states, keyed once per event */
    PyObject *escape, *whole, *other, *key_check, *whole_names;
    PyObject *encode; /* committed_json: writes a value Python made, as serialize.plain_json */
    int tuples; /* an event's draft: arrays may be tuples, texts of a subclass of str (an enum's,
                 * as the converter leaves it); a stored event: only lists and exact texts */
    int depth;  /* objects and arrays being walked */
} Walk;

static const char HEX[] = "0123456789abcdef";

static void to_hex(const unsigned char *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = HEX[in[i] >> 4];
        out[2 * i + 1] = HEX[in[i] & 15];
    }
}

static void salt_of(const Walk *w, const char *pointer, size_t length, char salt[SALT_HEX])
{
    unsigned char mac[SHA256_DIGEST_LENGTH];
    SHA256_CTX c = w->inner;
    SHA256_Update(&c, pointer, length);
    SHA256_Final(mac, &c);
    c = w->outer;
    SHA256_Update(&c, mac, sizeof mac);
    SHA256_Final(mac, &c);
    to_hex(mac, SALT_HEX / 2, salt);
}

/* The salted digest of the text *value* at *pointer* (UTF-8 bytes), as "sd:" and 64 hex
 * digits written to *out*; -1 with an exception set on failure. */
static int digest_into(const Walk *w, PyObject *pointer, PyObject *value, char out[3 + 2 * SHA256_DIGEST_LENGTH])
{
    PyObject *escaped = PyObject_CallOneArg(w->escape, value);
    if (escaped == NULL)
        return -1;
    if (!PyUnicode_Check(escaped)) {
        Py_DECREF(escaped);
        PyErr_SetString(PyExc_TypeError, "the JSON text of a value is not text");
        return -1;
    }
    Py_ssize_t size;
    const char *text = PyUnicode_AsUTF8AndSize(escaped, &size); /* fails on a lone surrogate */
    if (text == NULL) {
        Py_DECREF(escaped);
        return -1;
    }
    char salt[SALT_HEX];
    salt_of(w, PyBytes_AS_STRING(pointer), (size_t)PyBytes_GET_SIZE(pointer), salt);
    unsigned char sum[SHA256_DIGEST_LENGTH];
    SHA256_CTX c;
    SHA256_Init(&c);
    SHA256_Update(&c, "[\"", 2);
    SHA256_Update(&c, salt, SALT_HEX);
    SHA256_Update(&c, "\",", 2);
    SHA256_Update(&c, text, (size_t)size);
    SHA256_Update(&c, "]", 1);
    SHA256_Final(sum, &c);
    Py_DECREF(escaped);
    memcpy(out, "sd:", 3);
    to_hex(sum, sizeof sum, out + 3);
    return 0;
}

/* The salted digest of the text *value* at *pointer*, as text. */
static PyObject *digest(const Walk *w, PyObject *pointer, PyObject *value)
{
    char out[3 + 2 * SHA256_DIGEST_LENGTH];
    if (digest_into(w, pointer, value, out) < 0)
        return NULL;
    return PyUnicode_FromStringAndSize(out, sizeof out);
}

/* *pointer* + "/" + *name*, "~" written "~0" and "/" written "~1" (RFC 6901). */
static PyObject *member_pointer(PyObject *pointer, PyObject *name)
{
    Py_ssize_t size;
    const char *text = PyUnicode_AsUTF8AndSize(name, &size);
    if (text == NULL)
        return NULL;
    Py_ssize_t extra = 0;
    for (Py_ssize_t i = 0; i < size; i++)
        if (text[i] == '~' || text[i] == '/')
            extra++;
    Py_ssize_t base = PyBytes_GET_SIZE(pointer);
    PyObject *out = PyBytes_FromStringAndSize(NULL, base + 1 + size + extra);
    if (out == NULL)
        return NULL;
    char *p = PyBytes_AS_STRING(out);
    memcpy(p, PyBytes_AS_STRING(pointer), (size_t)base);
    p += base;
    *p++ = '/';
    for (Py_ssize_t i = 0; i < size; i++) {
        if (text[i] == '~') {
            *p++ = '~';
            *p++ = '0';
        } else if (text[i] == '/') {
            *p++ = '~';
            *p++ = '1';
        } else {
            *p++ = text[i];
        }
    }
    return out;
}

static PyObject *index_pointer(PyObject *pointer, Py_ssize_t index)
{
    char number[32];
    int n = snprintf(number, sizeof number, "/%zd", index);
    if (n < 0 || (size_t)n >= sizeof number) {
        PyErr_SetString(PyExc_OverflowError, "an array index too long to write");
        return NULL;
    }
    Py_ssize_t base = PyBytes_GET_SIZE(pointer);
    PyObject *out = PyBytes_FromStringAndSize(NULL, base + n);
    if (out == NULL)
        return NULL;
    memcpy(PyBytes_AS_STRING(out), PyBytes_AS_STRING(pointer), (size_t)base);
    memcpy(PyBytes_AS_STRING(out) + base, number, (size_t)n);
    return out;
}

/* callable(value, pointer as text) */
static PyObject *hand_back(PyObject *callable, PyObject *pointer, PyObject *value)
{
    PyObject *text = PyUnicode_DecodeUTF8(PyBytes_AS_STRING(pointer), PyBytes_GET_SIZE(pointer), "strict");
    if (text == NULL)
        return NULL;
    PyObject *result = PyObject_CallFunctionObjArgs(callable, value, text, NULL);
    Py_DECREF(text);
    return result;
}

static PyObject *walk(Walk *w, PyObject *node, PyObject *pointer);

/* Whether *value* is committed as text: a str, or in a draft a subclass's (its characters, as
 * sealing._draft_value commits it: the same call writes its JSON). */
static int is_text(const Walk *w, PyObject *value)
{
    return PyUnicode_CheckExact(value) || (w->tuples && PyUnicode_Check(value));
}

/* A member's or an item's committed value: texts, nulls and booleans at once (most values). */
static PyObject *walk_value(Walk *w, PyObject *value, PyObject *pointer)
{
    if (is_text(w, value))
        return digest(w, pointer, value);
    if (value == Py_None || PyBool_Check(value))
        return Py_NewRef(value);
    return walk(w, value, pointer);
}

static int is_secret_member(PyObject *pointer, PyObject *name)
{
    return PyBytes_GET_SIZE(pointer) == 8 && memcmp(PyBytes_AS_STRING(pointer), "/details", 8) == 0 &&
           PyUnicode_CompareWithASCIIString(name, "salt") == 0;
}

/* A member's name, checked: a name that is not plain ASCII text is handed to `key_check`, which
 * refuses it or says whether it is plain; then it must be text (*exact*: a str itself).
 * 0, or -1 with an exception set. */
static int check_name(const Walk *w, PyObject *name, int exact)
{
    if (PyUnicode_CheckExact(name) && PyUnicode_IS_ASCII(name))
        return 0;
    PyObject *checked = PyObject_CallOneArg(w->key_check, name);
    if (checked == NULL)
        return -1;
    Py_DECREF(checked);
    if (exact ? !PyUnicode_CheckExact(name) : !PyUnicode_Check(name)) {
        PyErr_SetString(PyExc_TypeError, "a member's name is not text");
        return -1;
    }
    return 0;
}

/* Whether the exact int *node* is one JSON carries exactly (1, its value in *number*), not (0),
 * or -1 with an exception set. */
static int safe_integer(PyObject *node, long long *number)
{
    int overflow = 0;
    *number = PyLong_AsLongLongAndOverflow(node, &overflow);
    if (*number == -1 && PyErr_Occurred())
        return -1;
    return !overflow && *number >= -SAFE_INTEGER && *number <= SAFE_INTEGER;
}

/* One level deeper into objects and arrays: refused past MAX_DEPTH (whatever the recursion
 * limit: the C stack is not grown) and past the interpreter's limit.  0, or -1 with an
 * exception set; leave() after each 0. */
static int enter(Walk *w)
{
    if (w->depth >= MAX_DEPTH) {
        PyErr_SetString(PyExc_RecursionError, "a custody event's values are nested too deep to commit here");
        return -1;
    }
    if (Py_EnterRecursiveCall(" while committing a custody event's values"))
        return -1;
    w->depth++;
    return 0;
}

static void leave(Walk *w)
{
    w->depth--;
    Py_LeaveRecursiveCall();
}

static PyObject *walk_object(Walk *w, PyObject *node, PyObject *pointer)
{
    /* The members are taken first: nothing Python is handed back can change what is walked. */
    PyObject *items = PyDict_Items(node);
    if (items == NULL)
        return NULL;
    PyObject *out = PyDict_New();
    if (out == NULL) {
        Py_DECREF(items);
        return NULL;
    }
    Py_ssize_t count = PyList_GET_SIZE(items);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *pair = PyList_GET_ITEM(items, i);
        PyObject *name = PyTuple_GET_ITEM(pair, 0), *value = PyTuple_GET_ITEM(pair, 1);
        if (check_name(w, name, 0) < 0)
            goto fail;
        if (is_secret_member(pointer, name))
            continue;
        PyObject *inner = member_pointer(pointer, name);
        if (inner == NULL)
            goto fail;
        int whole = PySet_Contains(w->whole_names, name);
        PyObject *committed = whole < 0 ? NULL : whole ? hand_back(w->whole, inner, value) : walk_value(w, value, inner);
        Py_DECREF(inner);
        if (committed == NULL)
            goto fail;
        int set = PyDict_SetItem(out, name, committed);
        Py_DECREF(committed);
        if (set < 0)
            goto fail;
    }
    Py_DECREF(items);
    return out;
fail:
    Py_DECREF(items);
    Py_DECREF(out);
    return NULL;
}

static PyObject *walk_array(Walk *w, PyObject *node, PyObject *pointer)
{
    /* A tuple of the items as they are now (a list's own, copied): nothing handed back to
     * Python can change what is walked. */
    PyObject *items = PyTuple_CheckExact(node) ? Py_NewRef(node) : PyList_AsTuple(node);
    if (items == NULL)
        return NULL;
    Py_ssize_t count = PyTuple_GET_SIZE(items);
    PyObject *out = PyList_New(count);
    if (out == NULL) {
        Py_DECREF(items);
        return NULL;
    }
    for (Py_ssize_t index = 0; index < count; index++) {
        PyObject *inner = index_pointer(pointer, index);
        if (inner == NULL)
            goto fail;
        PyObject *committed = walk_value(w, PyTuple_GET_ITEM(items, index), inner);
        Py_DECREF(inner);
        if (committed == NULL)
            goto fail;
        PyList_SET_ITEM(out, index, committed);
    }
    Py_DECREF(items);
    return out;
fail:
    Py_DECREF(items);
    Py_DECREF(out);
    return NULL;
}

static PyObject *walk(Walk *w, PyObject *node, PyObject *pointer)
{
    if (is_text(w, node))
        return digest(w, pointer, node);
    if (node == Py_None || PyBool_Check(node))
        return Py_NewRef(node);
    if (PyLong_CheckExact(node)) {
        long long number;
        int safe = safe_integer(node, &number);
        return safe < 0 ? NULL : safe ? Py_NewRef(node) : hand_back(w->other, pointer, node);
    }
    int object = PyDict_CheckExact(node);
    if (object || PyList_CheckExact(node) || (w->tuples && PyTuple_CheckExact(node))) {
        if (enter(w) < 0)
            return NULL;
        PyObject *result = object ? walk_object(w, node, pointer) : walk_array(w, node, pointer);
        leave(w);
        return result;
    }
    return hand_back(w->other, pointer, node);
}

/* The committed form written at once as its canonical JSON: what
 *     json.dumps(form, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
 * writes of the form `walk` makes, UTF-8 encoded, without making the form.  The same walk, the
 * same values handed back to Python; members written in the order of their names (code
 * points, as sort_keys sorts), each digest written where it is made, and whatever Python
 * hands back written as `encode` (serialize.plain_json) writes it. */

typedef struct {
    char *data;
    size_t length, room;
} Text;

static int put(Text *t, const char *bytes, size_t n)
{
    if (n == 0)
        return 0;
    if (t->room - t->length < n) {
        size_t room = t->room ? t->room : 4096;
        while (room - t->length < n) {
            if (room > (size_t)PY_SSIZE_T_MAX / 2) {
                PyErr_NoMemory();
                return -1;
            }
            room *= 2;
        }
        char *grown = PyMem_Realloc(t->data, room);
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        t->data = grown;
        t->room = room;
    }
    memcpy(t->data + t->length, bytes, n);
    t->length += n;
    return 0;
}

/* *text* (a str) as UTF-8 (a lone surrogate fails, as encoding the form's text would). */
static int put_text(Text *t, PyObject *text)
{
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "the JSON text of a value is not text");
        return -1;
    }
    Py_ssize_t size;
    const char *bytes = PyUnicode_AsUTF8AndSize(text, &size);
    if (bytes == NULL)
        return -1;
    return put(t, bytes, (size_t)size);
}

/* What Python handed back (a committed value; a new reference, released here), as `encode`
 * writes it. */
static int put_encoded(const Walk *w, Text *t, PyObject *value)
{
    if (value == NULL)
        return -1;
    PyObject *text = PyObject_CallOneArg(w->encode, value);
    Py_DECREF(value);
    if (text == NULL)
        return -1;
    int done = put_text(t, text);
    Py_DECREF(text);
    return done;
}

/* A member's name as a JSON string: between quotes as it is when it is printable ASCII
 * without a quote or a backslash, else as `escape` writes it. */
static int put_name(const Walk *w, Text *t, PyObject *name)
{
    if (PyUnicode_IS_ASCII(name)) {
        const char *bytes = (const char *)PyUnicode_1BYTE_DATA(name);
        Py_ssize_t size = PyUnicode_GET_LENGTH(name), i = 0;
        while (i < size && bytes[i] >= 0x20 && bytes[i] < 0x7f && bytes[i] != '"' && bytes[i] != '\\')
            i++;
        if (i == size)
            return put(t, "\"", 1) < 0 || put(t, bytes, (size_t)size) < 0 || put(t, "\"", 1) < 0 ? -1 : 0;
    }
    PyObject *escaped = PyObject_CallOneArg(w->escape, name);
    if (escaped == NULL)
        return -1;
    int done = put_text(t, escaped);
    Py_DECREF(escaped);
    return done;
}

static int write_node(Walk *w, Text *t, PyObject *node, PyObject *pointer);

/* A member's or an item's committed value (walk_value's). */
static int write_value(Walk *w, Text *t, PyObject *value, PyObject *pointer)
{
    if (is_text(w, value)) {
        char out[2 + 3 + 2 * SHA256_DIGEST_LENGTH];
        if (digest_into(w, pointer, value, out + 1) < 0)
            return -1;
        out[0] = out[sizeof out - 1] = '"';
        return put(t, out, sizeof out);
    }
    if (value == Py_None)
        return put(t, "null", 4);
    if (value == Py_True)
        return put(t, "true", 4);
    if (value == Py_False)
        return put(t, "false", 5);
    return write_node(w, t, value, pointer);
}

static int write_object(Walk *w, Text *t, PyObject *node, PyObject *pointer)
{
    /* The members are taken first (nothing Python is handed back can change what is written),
     * their names checked as walk_object checks them and required to be exact texts (so that
     * sorting the items compares names only, which are all different), then sorted by name.
     * They are walked in that order, not in the object's: the salts depend on the pointers
     * alone, and what Python is handed back cannot change the members taken. */
    PyObject *items = PyDict_Items(node);
    if (items == NULL)
        return -1;
    Py_ssize_t count = PyList_GET_SIZE(items);
    for (Py_ssize_t i = 0; i < count; i++)
        if (check_name(w, PyTuple_GET_ITEM(PyList_GET_ITEM(items, i), 0), 1) < 0)
            goto fail;
    if (PyList_Sort(items) < 0 || put(t, "{", 1) < 0)
        goto fail;
    int first = 1;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *pair = PyList_GET_ITEM(items, i);
        PyObject *name = PyTuple_GET_ITEM(pair, 0), *value = PyTuple_GET_ITEM(pair, 1);
        if (is_secret_member(pointer, name))
            continue;
        if ((!first && put(t, ",", 1) < 0) || put_name(w, t, name) < 0 || put(t, ":", 1) < 0)
            goto fail;
        first = 0;
        PyObject *inner = member_pointer(pointer, name);
        if (inner == NULL)
            goto fail;
        int whole = PySet_Contains(w->whole_names, name);
        int done = whole < 0 ? -1 : whole ? put_encoded(w, t, hand_back(w->whole, inner, value)) : write_value(w, t, value, inner);
        Py_DECREF(inner);
        if (done < 0)
            goto fail;
    }
    if (put(t, "}", 1) < 0)
        goto fail;
    Py_DECREF(items);
    return 0;
fail:
    Py_DECREF(items);
    return -1;
}

static int write_array(Walk *w, Text *t, PyObject *node, PyObject *pointer)
{
    PyObject *items = PyTuple_CheckExact(node) ? Py_NewRef(node) : PyList_AsTuple(node);
    if (items == NULL)
        return -1;
    if (put(t, "[", 1) < 0)
        goto fail;
    Py_ssize_t count = PyTuple_GET_SIZE(items);
    for (Py_ssize_t index = 0; index < count; index++) {
        if (index && put(t, ",", 1) < 0)
            goto fail;
        PyObject *inner = index_pointer(pointer, index);
        if (inner == NULL)
            goto fail;
        int done = write_value(w, t, PyTuple_GET_ITEM(items, index), inner);
        Py_DECREF(inner);
        if (done < 0)
            goto fail;
    }
    if (put(t, "]", 1) < 0)
        goto fail;
    Py_DECREF(items);
    return 0;
fail:
    Py_DECREF(items);
    return -1;
}

/* walk's twin, writing. */
static int write_node(Walk *w, Text *t, PyObject *node, PyObject *pointer)
{
    if (is_text(w, node) || node == Py_None || PyBool_Check(node))
        return write_value(w, t, node, pointer);
    if (PyLong_CheckExact(node)) {
        long long number;
        int safe = safe_integer(node, &number);
        if (safe <= 0)
            return safe < 0 ? -1 : put_encoded(w, t, hand_back(w->other, pointer, node));
        char digits[32];
        int n = snprintf(digits, sizeof digits, "%lld", number);
        return n < 0 || (size_t)n >= sizeof digits ? -1 : put(t, digits, (size_t)n);
    }
    int object = PyDict_CheckExact(node);
    if (object || PyList_CheckExact(node) || (w->tuples && PyTuple_CheckExact(node))) {
        if (enter(w) < 0)
            return -1;
        int done = object ? write_object(w, t, node, pointer) : write_array(w, t, node, pointer);
        leave(w);
        return done;
    }
    return put_encoded(w, t, hand_back(w->other, pointer, node));
}

/* The event's secret (32 bytes: the caller has checked its 64 lower-case hex digits) as
 * HMAC-SHA256's two keyed states. */
static int keyed(Walk *w, PyObject *secret)
{
    if (!PyBytes_Check(secret) || PyBytes_GET_SIZE(secret) != 32) {
        PyErr_SetString(PyExc_ValueError, "an event's secret is 32 bytes");
        return -1;
    }
    unsigned char inner[64], outer[64];
    memset(inner, 0x36, sizeof inner);
    memset(outer, 0x5c, sizeof outer);
    const unsigned char *key = (const unsigned char *)PyBytes_AS_STRING(secret);
    for (int i = 0; i < 32; i++) {
        inner[i] ^= key[i];
        outer[i] ^= key[i];
    }
    SHA256_Init(&w->inner);
    SHA256_Update(&w->inner, inner, sizeof inner);
    SHA256_Init(&w->outer);
    SHA256_Update(&w->outer, outer, sizeof outer);
    return 0;
}

/* The walk's arguments (node, pointer, secret, escape, whole, other, key_check, whole_names,
 * tuples), checked into *w*; the pointer as UTF-8 bytes, or NULL with an exception set. */
static PyObject *begin(Walk *w, PyObject *const *args, const char *name)
{
    if (!PyUnicode_Check(args[1]) || !PyAnySet_Check(args[7])) {
        PyErr_Format(PyExc_TypeError, "%s() takes a text pointer and a set of names", name);
        return NULL;
    }
    if (keyed(w, args[2]) < 0)
        return NULL;
    w->escape = args[3];
    w->whole = args[4];
    w->other = args[5];
    w->key_check = args[6];
    w->whole_names = args[7];
    w->encode = NULL;
    w->tuples = PyObject_IsTrue(args[8]);
    if (w->tuples < 0)
        return NULL;
    w->depth = 0;
    return PyUnicode_AsUTF8String(args[1]);
}

static PyObject *committed(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 9) {
        PyErr_SetString(PyExc_TypeError, "committed() takes 9 arguments");
        return NULL;
    }
    Walk w;
    PyObject *pointer = begin(&w, args, "committed");
    if (pointer == NULL)
        return NULL;
    PyObject *result = walk(&w, args[0], pointer);
    Py_DECREF(pointer);
    return result;
}

static PyObject *committed_json(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 10) {
        PyErr_SetString(PyExc_TypeError, "committed_json() takes 10 arguments");
        return NULL;
    }
    Walk w;
    PyObject *pointer = begin(&w, args, "committed_json");
    if (pointer == NULL)
        return NULL;
    w.encode = args[9];
    Text t = {NULL, 0, 0};
    int done = write_node(&w, &t, args[0], pointer);
    Py_DECREF(pointer);
    PyObject *result = done < 0 ? NULL : PyBytes_FromStringAndSize(t.data, (Py_ssize_t)t.length);
    PyMem_Free(t.data);
    return result;
}

static PyObject *salt(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2 || !PyUnicode_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "salt() takes a secret and a text pointer");
        return NULL;
    }
    Walk w;
    if (keyed(&w, args[0]) < 0)
        return NULL;
    PyObject *pointer = PyUnicode_AsUTF8String(args[1]);
    if (pointer == NULL)
        return NULL;
    char text[SALT_HEX];
    salt_of(&w, PyBytes_AS_STRING(pointer), (size_t)PyBytes_GET_SIZE(pointer), text);
    Py_DECREF(pointer);
    return PyUnicode_FromStringAndSize(text, SALT_HEX);
}

static PyMethodDef methods[] = {
    {"committed", (PyCFunction)(void (*)(void))committed, METH_FASTCALL,
     "committed(node, pointer, secret, escape, whole, other, key_check, whole_names, tuples)\n\n"
     "The committed form of *node* at JSON Pointer *pointer* of an event whose secret is the 32\n"
     "bytes *secret*."},
    {"committed_json", (PyCFunction)(void (*)(void))committed_json, METH_FASTCALL,
     "committed_json(node, pointer, secret, escape, whole, other, key_check, whole_names, tuples, encode)\n\n"
     "The canonical JSON (UTF-8) of what committed() makes of *node*, written without making it;\n"
     "what Python hands back is written by *encode*."},
    {"salt", (PyCFunction)(void (*)(void))salt, METH_FASTCALL,
     "salt(secret, pointer)\n\nThe salt of the value at *pointer*: HMAC-SHA256(secret, pointer), 32 hex digits."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "evidence_catalog._commitments",
    "The custody log's salted commitments, in C (see evidence_catalog.custody).", -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__commitments(void)
{
    PyObject *made = PyModule_Create(&module);
    if (made != NULL && PyModule_AddStringConstant(made, "SOURCE_SHA256", EC_SOURCE_SHA256) < 0) {
        Py_DECREF(made);
        return NULL;
    }
    return made;
}
