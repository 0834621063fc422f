/* OTLP attributes decoded straight from a message's wire bytes into Python values.

   The same values as `session_bridge.otlp.values` reads through the protobuf library
   (`attribute_dict`, `any_value`), ~5x faster: that path creates a wrapper object for
   every KeyValue and AnyValue it touches. Bytes the library refuses are refused here too
   (the fields this decoder does not return are checked as the library parses them), and
   whatever it does not decode exactly as the library would (a oneof set twice, fields of
   AnyValue or KeyValue it does not know, deep nesting) raises `Unsupported`: the caller
   then decodes those bytes with the library. The two paths never disagree.

   It also finds each span's bytes in an export request (`span_slices`), so that a span
   is stored as received instead of serialized again from its parsed message. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

static PyObject *Unsupported; /* module exception: decode these bytes the slow way */

/* AnyValue levels: three messages each (AnyValue, KeyValueList, KeyValue); the library
   refuses past about 100 messages, and event and link attributes start 3 deep */
#define MAX_DEPTH 31

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
} Reader;

static int fail(const char *why) {
    PyErr_SetString(Unsupported, why);
    return -1;
}

/* A varint of at most `max_bytes` bytes: 10 for a value, 5 for a tag or a length (the
   library refuses longer ones). */
static int read_varint_of(Reader *r, uint64_t *out, int max_bytes) {
    uint64_t value = 0;
    for (int i = 0; i < max_bytes; i++) {
        if (r->p >= r->end) return fail("truncated varint");
        uint8_t byte = *r->p++;
        if (i == 9 && byte > 1) return fail("varint past 64 bits");
        value |= (uint64_t)(byte & 0x7F) << (7 * i);
        if (!(byte & 0x80)) {
            *out = value;
            return 0;
        }
    }
    return fail("varint too long");
}

static int read_varint(Reader *r, uint64_t *out) { return read_varint_of(r, out, 10); }

static int read_tag(Reader *r, uint32_t *field, int *wire_type) {
    uint64_t tag;
    if (read_varint_of(r, &tag, 5) < 0) return -1;
    if ((tag >> 3) == 0 || (tag >> 3) > 0x1FFFFFFF) return fail("invalid field number");
    *field = (uint32_t)(tag >> 3);
    *wire_type = (int)(tag & 7);
    return 0;
}

static int read_fixed64(Reader *r, uint64_t *out) {
    if (r->end - r->p < 8) return fail("truncated fixed64");
    uint64_t value = 0;
    for (int i = 7; i >= 0; i--) value = (value << 8) | r->p[i]; /* little-endian */
    r->p += 8;
    *out = value;
    return 0;
}

static int read_bytes(Reader *r, Reader *out) {
    uint64_t size;
    if (read_varint_of(r, &size, 5) < 0) return -1;
    if (size > (uint64_t)(r->end - r->p)) return fail("truncated length-delimited field");
    out->p = r->p;
    out->end = r->p + size;
    r->p += size;
    return 0;
}

static int skip_field(Reader *r, int wire_type) {
    uint64_t ignored;
    Reader slice;
    switch (wire_type) {
    case WT_VARINT: return read_varint(r, &ignored);
    case WT_I64: return read_fixed64(r, &ignored);
    case WT_LEN: return read_bytes(r, &slice);
    case WT_I32:
        if (r->end - r->p < 4) return fail("truncated fixed32");
        r->p += 4;
        return 0;
    default: return fail("unsupported wire type");
    }
}

static PyObject *text(Reader s) {
    PyObject *out = PyUnicode_DecodeUTF8((const char *)s.p, s.end - s.p, "strict");
    if (out == NULL && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
        PyErr_Clear();
        fail("text that is not UTF-8");
    }
    return out;
}

/* Attribute keys repeat from span to span: a key met before (up to KEY_MAX_LEN bytes) is
   the str decoded the first time, its hash computed once, instead of a new str hashed
   again at every insert. A fixed table (a key replaces the one in its slot), so the
   memory it holds stays bounded; the GIL guards it. */
#define KEY_SLOTS 1024 /* a power of two */
#define KEY_MAX_LEN 64

typedef struct {
    Py_ssize_t len;
    uint8_t bytes[KEY_MAX_LEN];
    PyObject *str;
} KeySlot;

static KeySlot key_slots[KEY_SLOTS];

static PyObject *key_text(Reader s) {
    Py_ssize_t len = s.end - s.p;
    if (len == 0 || len > KEY_MAX_LEN) return text(s);
    uint32_t h = 2166136261u; /* FNV-1a */
    for (Py_ssize_t i = 0; i < len; i++) h = (h ^ s.p[i]) * 16777619u;
    KeySlot *slot = &key_slots[h & (KEY_SLOTS - 1)];
    if (slot->str != NULL && slot->len == len && memcmp(slot->bytes, s.p, (size_t)len) == 0)
        return Py_NewRef(slot->str);
    PyObject *out = text(s);
    if (out == NULL || PyObject_Hash(out) == -1) {
        Py_XDECREF(out);
        return NULL;
    }
    Py_XSETREF(slot->str, Py_NewRef(out));
    slot->len = len;
    memcpy(slot->bytes, s.p, (size_t)len);
    return out;
}

static PyObject *any_value(Reader v, int depth);

/* A KeyValue: its key and its value's bytes (`has_value` 0: no value field). */
static int key_value(Reader kv, PyObject **key, Reader *value, int *has_value) {
    int has_key = 0;
    *has_value = 0;
    Reader key_bytes = {NULL, NULL};
    while (kv.p < kv.end) {
        uint32_t field;
        int wt;
        if (read_tag(&kv, &field, &wt) < 0) return -1;
        if (field == 1 && wt == WT_LEN && !has_key) {
            if (read_bytes(&kv, &key_bytes) < 0) return -1;
            has_key = 1;
        } else if (field == 2 && wt == WT_LEN && !*has_value) {
            if (read_bytes(&kv, value) < 0) return -1;
            *has_value = 1;
        } else {
            return fail("unexpected KeyValue field");
        }
    }
    *key = has_key ? key_text(key_bytes) : PyUnicode_FromStringAndSize("", 0);
    return *key == NULL ? -1 : 0;
}

static PyObject *array_value(Reader a, int depth) {
    PyObject *list = PyList_New(0);
    if (list == NULL) return NULL;
    while (a.p < a.end) {
        uint32_t field;
        int wt;
        Reader item;
        if (read_tag(&a, &field, &wt) < 0 || field != 1 || wt != WT_LEN) {
            if (!PyErr_Occurred()) fail("unexpected ArrayValue field");
            goto error;
        }
        if (read_bytes(&a, &item) < 0) goto error;
        PyObject *value = any_value(item, depth + 1);
        if (value == NULL || PyList_Append(list, value) < 0) {
            Py_XDECREF(value);
            goto error;
        }
        Py_DECREF(value);
    }
    return list;
error:
    Py_DECREF(list);
    return NULL;
}

/* A KeyValueList as `{kv.key: any_value(kv.value)}`: a repeated key's last value. */
static PyObject *kvlist_value(Reader l, int depth) {
    PyObject *dict = PyDict_New();
    if (dict == NULL) return NULL;
    while (l.p < l.end) {
        uint32_t field;
        int wt, has_value;
        Reader kv, value_bytes;
        PyObject *key = NULL, *value;
        if (read_tag(&l, &field, &wt) < 0 || field != 1 || wt != WT_LEN) {
            if (!PyErr_Occurred()) fail("unexpected KeyValueList field");
            goto error;
        }
        if (read_bytes(&l, &kv) < 0 || key_value(kv, &key, &value_bytes, &has_value) < 0)
            goto error;
        if (has_value) {
            value = any_value(value_bytes, depth + 1);
        } else {
            value = Py_None;
            Py_INCREF(value);
        }
        if (value == NULL || PyDict_SetItem(dict, key, value) < 0) {
            Py_DECREF(key);
            Py_XDECREF(value);
            goto error;
        }
        Py_DECREF(key);
        Py_DECREF(value);
    }
    return dict;
error:
    Py_DECREF(dict);
    return NULL;
}

static PyObject *hex(Reader s) {
    static const char digits[] = "0123456789abcdef";
    Py_ssize_t n = s.end - s.p;
    PyObject *out = PyUnicode_New(2 * n, 127);
    if (out == NULL) return NULL;
    Py_UCS1 *data = PyUnicode_1BYTE_DATA(out);
    for (Py_ssize_t i = 0; i < n; i++) {
        data[2 * i] = (Py_UCS1)digits[s.p[i] >> 4];
        data[2 * i + 1] = (Py_UCS1)digits[s.p[i] & 15];
    }
    return out;
}

/* An AnyValue: exactly one member of its oneof, else None (an empty AnyValue). */
static PyObject *any_value(Reader v, int depth) {
    if (depth > MAX_DEPTH) {
        fail("values nested too deep");
        return NULL;
    }
    uint32_t which = 0;
    uint64_t number = 0;
    Reader slice = {NULL, NULL};
    while (v.p < v.end) {
        uint32_t field;
        int wt;
        if (read_tag(&v, &field, &wt) < 0) return NULL;
        if (which != 0) {
            fail("AnyValue with more than one value");
            return NULL;
        }
        static const int expected[8] = {-1, WT_LEN, WT_VARINT, WT_VARINT, WT_I64,
                                        WT_LEN, WT_LEN, WT_LEN};
        if (field > 7 || wt != expected[field]) {
            fail("unexpected AnyValue field");
            return NULL;
        }
        which = field;
        int rc = wt == WT_LEN ? read_bytes(&v, &slice)
               : wt == WT_I64 ? read_fixed64(&v, &number)
                              : read_varint(&v, &number);
        if (rc < 0) return NULL;
    }
    switch (which) {
    case 0: Py_RETURN_NONE;
    case 1: return text(slice);
    case 2: return PyBool_FromLong(number != 0);
    case 3: return PyLong_FromLongLong((long long)(int64_t)number);
    case 4: {
        double d;
        memcpy(&d, &number, sizeof d);
        return PyFloat_FromDouble(d);
    }
    case 5: return array_value(slice, depth);
    case 6: return kvlist_value(slice, depth);
    default: return hex(slice); /* 7: bytes_value */
    }
}

/* Adds a KeyValue to `out` unless its key is there already (the first value wins); a
   top-level double that is not finite becomes its text, as `attribute_dict` does. */
static int add_attribute(PyObject *out, Reader kv) {
    PyObject *key, *value;
    Reader value_bytes;
    int has_value;
    if (key_value(kv, &key, &value_bytes, &has_value) < 0) return -1;
    if (has_value) {
        value = any_value(value_bytes, 0);
    } else {
        value = Py_None;
        Py_INCREF(value);
    }
    if (value != NULL && PyFloat_CheckExact(value) && !isfinite(PyFloat_AS_DOUBLE(value))) {
        PyObject *as_text = PyObject_Str(value);
        Py_DECREF(value);
        value = as_text;
    }
    if (value == NULL) {
        Py_DECREF(key);
        return -1;
    }
    int rc = PyDict_SetDefault(out, key, value) == NULL ? -1 : 0;
    Py_DECREF(key);
    Py_DECREF(value);
    return rc;
}

/* -- the fields not returned, checked as the library parses them ----------------------- */

typedef enum { STRING, MESSAGE, ATTRIBUTE } Kind;
typedef struct Schema Schema;
typedef struct {
    uint32_t number;
    Kind kind;
    const Schema *message; /* MESSAGE: its fields to check */
} Rule;
struct Schema {
    const Rule *rules;
    size_t count;
};

static const Rule STATUS_RULES[] = {{2, STRING, NULL}}; /* message */
static const Schema STATUS = {STATUS_RULES, 1};
static const Rule LINK_RULES[] = {{3, STRING, NULL}, {4, ATTRIBUTE, NULL}};
static const Schema LINK = {LINK_RULES, 2};
static const Rule ENTITY_REF_RULES[] = {
    {1, STRING, NULL}, {2, STRING, NULL}, {3, STRING, NULL}, {4, STRING, NULL}};
static const Schema ENTITY_REF = {ENTITY_REF_RULES, 4};
static const Rule EVENT_RULES[] = {{2, STRING, NULL}, {3, ATTRIBUTE, NULL}};
static const Schema EVENT = {EVENT_RULES, 2};
/* a Span's fields but its attributes (`decode_span` reads its name and events itself);
   a Resource's entity_refs */
static const Rule SPAN_RULES[] = {{3, STRING, NULL}, {5, STRING, NULL}, {11, MESSAGE, &EVENT},
                                  {13, MESSAGE, &LINK}, {15, MESSAGE, &STATUS}};
static const Schema SPAN_OTHERS = {SPAN_RULES, 5};
static const Rule RESOURCE_RULES[] = {{3, MESSAGE, &ENTITY_REF}};
static const Schema RESOURCE_OTHERS = {RESOURCE_RULES, 1};

static int check_message(Reader m, const Schema *schema);

/* A field this decoder does not return: a string must be UTF-8 and a message well formed
   (a known field with another wire type is, to the library, an unknown one: skipped). */
static int check_field(Reader *r, uint32_t field, int wt, const Schema *schema) {
    for (size_t i = 0; wt == WT_LEN && i < schema->count; i++) {
        const Rule *rule = &schema->rules[i];
        if (rule->number != field) continue;
        Reader slice;
        if (read_bytes(r, &slice) < 0) return -1;
        if (rule->kind == MESSAGE) return check_message(slice, rule->message);
        PyObject *checked = rule->kind == STRING ? text(slice) : PyDict_New();
        int rc = checked == NULL ? -1 : 0;
        if (rc == 0 && rule->kind == ATTRIBUTE) rc = add_attribute(checked, slice);
        Py_XDECREF(checked);
        return rc;
    }
    return skip_field(r, wt);
}

static int check_message(Reader m, const Schema *schema) {
    while (m.p < m.end) {
        uint32_t field;
        int wt;
        if (read_tag(&m, &field, &wt) < 0 || check_field(&m, field, wt, schema) < 0) return -1;
    }
    return 0;
}

/* -- the functions ----------------------------------------------------------------------- */

/* The attributes a message keeps in `field` (repeated KeyValue); its other fields are
   checked against `others`. */
static PyObject *attributes_of(PyObject *arg, uint32_t wanted, const Schema *others) {
    Py_buffer buffer;
    if (PyObject_GetBuffer(arg, &buffer, PyBUF_SIMPLE) < 0) return NULL;
    Reader r = {buffer.buf, (const uint8_t *)buffer.buf + buffer.len};
    PyObject *out = PyDict_New();
    while (out != NULL && r.p < r.end) {
        uint32_t field;
        int wt;
        Reader kv;
        if (read_tag(&r, &field, &wt) < 0) goto error;
        if (field == wanted && wt == WT_LEN) {
            if (read_bytes(&r, &kv) < 0 || add_attribute(out, kv) < 0) goto error;
        } else if (field == wanted) {
            fail("attributes with an unexpected wire type");
            goto error;
        } else if (check_field(&r, field, wt, others) < 0) {
            goto error;
        }
    }
    PyBuffer_Release(&buffer);
    return out;
error:
    PyBuffer_Release(&buffer);
    Py_XDECREF(out);
    return NULL;
}

static PyObject *span_attributes(PyObject *self, PyObject *arg) {
    return attributes_of(arg, 9, &SPAN_OTHERS);
}

static PyObject *resource_attributes(PyObject *self, PyObject *arg) {
    return attributes_of(arg, 1, &RESOURCE_OTHERS);
}

/* Keeps the text of a string field's latest copy in `*slot` (every copy must be UTF-8). */
static int latest_text(Reader *r, PyObject **slot) {
    Reader slice;
    if (read_bytes(r, &slice) < 0) return -1;
    PyObject *copy = text(slice);
    if (copy == NULL) return -1;
    Py_XSETREF(*slot, copy);
    return 0;
}

/* A Span.Event: (name, time_unix_nano, attributes). */
static PyObject *span_event(Reader e) {
    PyObject *name = NULL, *attributes = PyDict_New();
    uint64_t time_ns = 0;
    if (attributes == NULL) return NULL;
    while (e.p < e.end) {
        uint32_t field;
        int wt;
        Reader kv;
        if (read_tag(&e, &field, &wt) < 0) goto error;
        if (field == 1 && wt == WT_I64) {
            if (read_fixed64(&e, &time_ns) < 0) goto error;
        } else if (field == 2 && wt == WT_LEN) {
            if (latest_text(&e, &name) < 0) goto error;
        } else if (field == 3 && wt == WT_LEN) {
            if (read_bytes(&e, &kv) < 0 || add_attribute(attributes, kv) < 0) goto error;
        } else if (field <= 3) {
            fail("Event field with an unexpected wire type");
            goto error;
        } else if (skip_field(&e, wt) < 0) {
            goto error;
        }
    }
    if (name == NULL && (name = PyUnicode_FromStringAndSize("", 0)) == NULL) goto error;
    return Py_BuildValue("(NKN)", name, (unsigned long long)time_ns, attributes);
error:
    Py_XDECREF(name);
    Py_DECREF(attributes);
    return NULL;
}

/* decode_span(data) -> (name, start_time_unix_nano, attributes, events): what the
   exporters read from a stored OTLP Span. */
static PyObject *decode_span(PyObject *self, PyObject *arg) {
    Py_buffer buffer;
    if (PyObject_GetBuffer(arg, &buffer, PyBUF_SIMPLE) < 0) return NULL;
    Reader r = {buffer.buf, (const uint8_t *)buffer.buf + buffer.len};
    uint64_t start_ns = 0;
    PyObject *name = NULL, *attributes = PyDict_New(), *events = PyList_New(0);
    if (attributes == NULL || events == NULL) goto error;
    while (r.p < r.end) {
        uint32_t field;
        int wt;
        Reader slice;
        if (read_tag(&r, &field, &wt) < 0) goto error;
        if (field == 5 && wt == WT_LEN) {
            if (latest_text(&r, &name) < 0) goto error;
        } else if (field == 7 && wt == WT_I64) {
            if (read_fixed64(&r, &start_ns) < 0) goto error;
        } else if (field == 9 && wt == WT_LEN) {
            if (read_bytes(&r, &slice) < 0 || add_attribute(attributes, slice) < 0) goto error;
        } else if (field == 11 && wt == WT_LEN) {
            PyObject *event;
            if (read_bytes(&r, &slice) < 0 || (event = span_event(slice)) == NULL) goto error;
            int rc = PyList_Append(events, event);
            Py_DECREF(event);
            if (rc < 0) goto error;
        } else if (field == 5 || field == 7 || field == 9 || field == 11) {
            fail("Span field with an unexpected wire type");
            goto error;
        } else if (check_field(&r, field, wt, &SPAN_OTHERS) < 0) {
            goto error;
        }
    }
    if (name == NULL && (name = PyUnicode_FromStringAndSize("", 0)) == NULL) goto error;
    PyBuffer_Release(&buffer);
    return Py_BuildValue("(NKNN)", name, (unsigned long long)start_ns, attributes, events);
error:
    PyBuffer_Release(&buffer);
    Py_XDECREF(name);
    Py_XDECREF(attributes);
    Py_XDECREF(events);
    return NULL;
}

/* collect(data, lookup) -> {field: value}: for a span the protobuf library has parsed
   already, `mapper._collect_decoded(span_attributes(data))` without the attributes the
   mapping does not read. `lookup` maps an attribute key to (field, rank), no two keys to
   the same pair (as `aliases._build_lookup` makes it); of the keys it names, a repeated
   key's first value counts, and each field gets the value of its best-ranked (lowest)
   key whose value is neither None nor "". The values of other keys are not decoded. */
#define MAX_FIELDS 256
#define MAX_RANKS 64 /* a bit each in `seen` */

static PyObject *collect(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyDict_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "collect(data, lookup: dict)");
        return NULL;
    }
    PyObject *lookup = args[1];
    Py_buffer buffer;
    if (PyObject_GetBuffer(args[0], &buffer, PyBUF_SIMPLE) < 0) return NULL;
    Reader r = {buffer.buf, (const uint8_t *)buffer.buf + buffer.len};
    long best[MAX_FIELDS];       /* per field, the rank of the value kept */
    uint64_t seen[MAX_FIELDS];   /* per field, the ranks (keys) met so far */
    for (int i = 0; i < MAX_FIELDS; i++) {
        best[i] = MAX_RANKS;
        seen[i] = 0;
    }
    PyObject *values = PyDict_New(), *key = NULL, *value = NULL;
    if (values == NULL) goto error;
    while (r.p < r.end) {
        uint32_t field;
        int wt, has_value;
        Reader kv, value_bytes;
        if (read_tag(&r, &field, &wt) < 0) goto error;
        if (field != 9) {
            if (skip_field(&r, wt) < 0) goto error;
            continue;
        }
        if (wt != WT_LEN) {
            fail("attributes with an unexpected wire type");
            goto error;
        }
        if (read_bytes(&r, &kv) < 0 || key_value(kv, &key, &value_bytes, &has_value) < 0)
            goto error;
        PyObject *hit = PyDict_GetItemWithError(lookup, key); /* borrowed */
        Py_CLEAR(key);
        if (hit == NULL) {
            if (PyErr_Occurred()) goto error;
            continue;
        }
        if (!PyTuple_CheckExact(hit) || PyTuple_GET_SIZE(hit) != 2) {
            PyErr_SetString(PyExc_TypeError, "lookup values are (field, rank)");
            goto error;
        }
        PyObject *fld = PyTuple_GET_ITEM(hit, 0);
        long index = PyLong_AsLong(fld), rank = PyLong_AsLong(PyTuple_GET_ITEM(hit, 1));
        if ((index == -1 || rank == -1) && PyErr_Occurred()) goto error;
        if (index < 0 || index >= MAX_FIELDS || rank < 0 || rank >= MAX_RANKS) {
            PyErr_SetString(PyExc_ValueError, "lookup fields are 0-255, ranks 0-63");
            goto error;
        }
        uint64_t bit = (uint64_t)1 << rank;
        if (seen[index] & bit) continue; /* a repeated key: the first value counts */
        seen[index] |= bit;
        value = has_value ? any_value(value_bytes, 0) : Py_NewRef(Py_None);
        if (value == NULL) goto error;
        if (PyFloat_CheckExact(value) && !isfinite(PyFloat_AS_DOUBLE(value)))
            Py_SETREF(value, PyObject_Str(value)); /* as `attribute_dict` reads it */
        if (value == NULL) goto error;
        int empty = value == Py_None ||
                    (PyUnicode_Check(value) && PyUnicode_GET_LENGTH(value) == 0);
        if (!empty && rank < best[index]) {
            best[index] = rank;
            if (PyDict_SetItem(values, fld, value) < 0) goto error;
        }
        Py_CLEAR(value);
    }
    PyBuffer_Release(&buffer);
    return values;
error:
    PyBuffer_Release(&buffer);
    Py_XDECREF(key);
    Py_XDECREF(value);
    Py_XDECREF(values);
    return NULL;
}

/* Appends to `out`, as bytes objects, the messages reached from message `m` through the
   repeated message field `fields[0]`, then `fields[1]` inside each of those, and so on
   for `levels` fields. */
static int collect_slices(Reader m, const uint32_t *fields, int levels, PyObject *out) {
    while (m.p < m.end) {
        uint32_t field;
        int wt;
        Reader slice;
        if (read_tag(&m, &field, &wt) < 0) return -1;
        if (field != fields[0]) {
            if (skip_field(&m, wt) < 0) return -1;
            continue;
        }
        if (wt != WT_LEN) return fail("a message field with an unexpected wire type");
        if (read_bytes(&m, &slice) < 0) return -1;
        if (levels > 1) {
            if (collect_slices(slice, fields + 1, levels - 1, out) < 0) return -1;
            continue;
        }
        PyObject *item = PyBytes_FromStringAndSize((const char *)slice.p, slice.end - slice.p);
        if (item == NULL) return -1;
        int rc = PyList_Append(out, item);
        Py_DECREF(item);
        if (rc < 0) return -1;
    }
    return 0;
}

/* span_slices(data) -> list of bytes: each Span of a serialized
   ExportTraceServiceRequest (resource_spans 1 -> scope_spans 2 -> spans 2) as received,
   in the order the protobuf library lists them. */
static PyObject *span_slices(PyObject *self, PyObject *arg) {
    static const uint32_t path[] = {1, 2, 2};
    Py_buffer buffer;
    if (PyObject_GetBuffer(arg, &buffer, PyBUF_SIMPLE) < 0) return NULL;
    Reader r = {buffer.buf, (const uint8_t *)buffer.buf + buffer.len};
    PyObject *out = PyList_New(0);
    if (out != NULL && collect_slices(r, path, 3, out) < 0) Py_CLEAR(out);
    PyBuffer_Release(&buffer);
    return out;
}

static PyMethodDef methods[] = {
    {"span_attributes", span_attributes, METH_O,
     "span_attributes(data) -> dict: a serialized OTLP Span's attributes, the first value "
     "of a repeated key."},
    {"resource_attributes", resource_attributes, METH_O,
     "resource_attributes(data) -> dict: a serialized OTLP Resource's attributes."},
    {"decode_span", decode_span, METH_O,
     "decode_span(data) -> (name, start_time_unix_nano, attributes, events): a serialized "
     "OTLP Span; events as (name, time_unix_nano, attributes)."},
    {"collect", (PyCFunction)(void (*)(void))collect, METH_FASTCALL,
     "collect(data, lookup) -> dict: of a parsed span's attributes whose key `lookup` "
     "names (key -> (field, rank)), each field's best-ranked value that is not None or \"\"."},
    {"span_slices", span_slices, METH_O,
     "span_slices(data) -> list[bytes]: each Span of a serialized ExportTraceServiceRequest, "
     "its bytes as received, in the order the protobuf library lists them."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "session_bridge.otlp._wire",
    "OTLP attributes decoded from wire bytes (see session_bridge.otlp.values).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__wire(void) {
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Unsupported = PyErr_NewException("session_bridge.otlp._wire.Unsupported",
                                     PyExc_ValueError, NULL);
    if (Unsupported == NULL || PyModule_AddObjectRef(m, "Unsupported", Unsupported) < 0) {
        Py_CLEAR(Unsupported);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
