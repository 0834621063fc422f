/* A span's observation event written as JSON in one call.

   `mapping.langfuse_events` decides what an observation event holds (its type, level,
   version, environment, input, output and generation fields); this module writes those
   values out: the envelope id (uuid5 of the event's name: SHA-1, with the CPU's SHA
   instructions where it has them), the timestamps, the ids in hex and the JSON of every
   value, the bytes `dumps(observation_event(...))` gives.
   Building that event as dictionaries and encoding them took about a third of the export
   process's CPU per span.

   The JSON is orjson's: the same escapes, integers and floats. Whatever this writer would
   not write exactly as orjson does (a value of another type, an integer or a time past 64
   bits, text that is not valid Unicode, deep nesting) raises `Unsupported`, and the caller
   builds the event the Python way. The two paths never disagree; tests hold them equal. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static PyObject *Unsupported; /* module exception: build this event the Python way */

/* orjson refuses past 254 levels; this writer hands back well before */
#define MAX_DEPTH 128

typedef struct {
    char *data;
    size_t len;
    size_t cap;
} Buffer;

static int unsupported(const char *why) {
    PyErr_SetString(Unsupported, why);
    return -1;
}

static int reserve(Buffer *b, size_t more) {
    if (b->len + more <= b->cap) return 0;
    size_t cap = b->cap * 2;
    while (cap < b->len + more) cap *= 2;
    char *data = PyMem_Realloc(b->data, cap);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

static int put(Buffer *b, const char *text, size_t size) {
    if (reserve(b, size) < 0) return -1;
    memcpy(b->data + b->len, text, size);
    b->len += size;
    return 0;
}

#define PUT_LITERAL(b, text) put((b), (text), sizeof(text) - 1)

/* -- SHA-1, for the uuid5 envelope ids ------------------------------------------------- */

/* one 64-byte block into the state */
typedef void (*Compress)(uint32_t h[5], const uint8_t *p);

typedef struct {
    uint32_t h[5];
    uint64_t length;
    uint8_t block[64];
    size_t used;
    Compress compress;
} Sha1;

static uint32_t rol(uint32_t value, int bits) { return (value << bits) | (value >> (32 - bits)); }

#define SHA1_ROUND(f, k, i)                                                                \
    do {                                                                                   \
        uint32_t t = rol(a, 5) + (f) + e + (k) + w[i];                                     \
        e = d;                                                                             \
        d = c;                                                                             \
        c = rol(b, 30);                                                                    \
        b = a;                                                                             \
        a = t;                                                                             \
    } while (0)

static void sha1_block_portable(uint32_t h[5], const uint8_t *p) {
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
    for (int i = 16; i < 80; i++) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 20; i++) SHA1_ROUND((b & c) | (~b & d), 0x5A827999, i);
    for (int i = 20; i < 40; i++) SHA1_ROUND(b ^ c ^ d, 0x6ED9EBA1, i);
    for (int i = 40; i < 60; i++) SHA1_ROUND((b & c) | (b & d) | (c & d), 0x8F1BBCDC, i);
    for (int i = 60; i < 80; i++) SHA1_ROUND(b ^ c ^ d, 0xCA62C1D6, i);
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>

/* The same block with the CPU's SHA instructions (x86-64 since 2016-2017): a tenth of the
   instructions. Words sit in a vector's lanes highest first; W[t] holds message words
   4t..4t+3, and each group of four rounds takes e from the a of four rounds before. */
__attribute__((target("sha,sse4.1"))) static void sha1_block_ni(uint32_t h[5],
                                                                 const uint8_t *p) {
    const __m128i reverse = _mm_set_epi64x(0x0001020304050607LL, 0x08090a0b0c0d0e0fLL);
    __m128i abcd = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)h), 0x1B);
    __m128i e0 = _mm_set_epi32((int)h[4], 0, 0, 0);
    __m128i abcd_start = abcd, w[4], e, earlier;
    for (int t = 0; t < 4; t++)
        w[t] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * t)), reverse);
#define NEXT_W(t)                                                                         \
    if ((t) >= 4)                                                                         \
    w[(t) & 3] = _mm_sha1msg2_epu32(                                                      \
        _mm_xor_si128(_mm_sha1msg1_epu32(w[(t) & 3], w[((t) + 1) & 3]), w[((t) + 2) & 3]),  \
        w[((t) + 3) & 3])
    e = _mm_add_epi32(e0, w[0]);
    earlier = abcd;
    abcd = _mm_sha1rnds4_epu32(abcd, e, 0);
    for (int t = 1; t < 20; t++) {
        NEXT_W(t);
        e = _mm_sha1nexte_epu32(earlier, w[t & 3]);
        earlier = abcd;
        switch (t / 5) { /* (the round function is an immediate) */
        case 0: abcd = _mm_sha1rnds4_epu32(abcd, e, 0); break;
        case 1: abcd = _mm_sha1rnds4_epu32(abcd, e, 1); break;
        case 2: abcd = _mm_sha1rnds4_epu32(abcd, e, 2); break;
        default: abcd = _mm_sha1rnds4_epu32(abcd, e, 3); break;
        }
    }
#undef NEXT_W
    e0 = _mm_sha1nexte_epu32(earlier, e0);
    abcd = _mm_shuffle_epi32(_mm_add_epi32(abcd, abcd_start), 0x1B);
    _mm_storeu_si128((__m128i *)h, abcd);
    h[4] = (uint32_t)_mm_extract_epi32(e0, 3);
}

static Compress fastest_compress(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSE4_1) || !(c & bit_SSSE3))
        return sha1_block_portable;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(b & bit_SHA))
        return sha1_block_portable;
    return sha1_block_ni;
}
#else
static Compress fastest_compress(void) { return sha1_block_portable; }
#endif

static Compress sha1_block = sha1_block_portable; /* the fastest this CPU runs, at import */

static void sha1_init(Sha1 *s, Compress compress) {
    static const uint32_t start[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476,
                                      0xC3D2E1F0};
    memcpy(s->h, start, sizeof start);
    s->length = 0;
    s->used = 0;
    s->compress = compress;
}

static void sha1_update(Sha1 *s, const uint8_t *p, size_t size) {
    s->length += size;
    while (size > 0) {
        size_t take = 64 - s->used < size ? 64 - s->used : size;
        memcpy(s->block + s->used, p, take);
        s->used += take;
        p += take;
        size -= take;
        if (s->used == 64) {
            s->compress(s->h, s->block);
            s->used = 0;
        }
    }
}

static void sha1_final(Sha1 *s, uint8_t digest[20]) {
    uint64_t bits = s->length * 8;
    /* 0x80, zeros up to 8 bytes short of a block's end, then the length in bits */
    uint8_t pad[72] = {0x80};
    size_t size = (s->used < 56 ? 56 : 120) - s->used;
    for (int i = 0; i < 8; i++) pad[size + (size_t)i] = (uint8_t)(bits >> (56 - 8 * i));
    sha1_update(s, pad, size + 8);
    for (int i = 0; i < 20; i++) digest[i] = (uint8_t)(s->h[i / 4] >> (24 - 8 * (i % 4)));
}

static const char HEX[] = "0123456789abcdef";

static void hex_into(char *out, const uint8_t *p, size_t size) {
    for (size_t i = 0; i < size; i++) {
        out[2 * i] = HEX[p[i] >> 4];
        out[2 * i + 1] = HEX[p[i] & 15];
    }
}

/* `str(uuid.uuid5(namespace, name))`: 36 characters */
static void uuid5_into(char *out, const uint8_t *namespace, const char *name, size_t size,
                       Compress compress) {
    Sha1 s;
    uint8_t digest[20];
    sha1_init(&s, compress);
    sha1_update(&s, namespace, 16);
    sha1_update(&s, (const uint8_t *)name, size);
    sha1_final(&s, digest);
    digest[6] = (uint8_t)((digest[6] & 0x0F) | 0x50); /* version 5 */
    digest[8] = (uint8_t)((digest[8] & 0x3F) | 0x80); /* variant 10 */
    static const int groups[5] = {4, 2, 2, 2, 6};
    const uint8_t *p = digest;
    for (int g = 0; g < 5; g++) {
        if (g) *out++ = '-';
        hex_into(out, p, (size_t)groups[g]);
        out += 2 * groups[g];
        p += groups[g];
    }
}

/* -- timestamps ------------------------------------------------------------------------ */

static void digits_into(char *out, int64_t value, int width) {
    for (int i = width - 1; i >= 0; i--) {
        out[i] = (char)('0' + value % 10);
        value /= 10;
    }
}

/* `timefmt.iso_from_ns`: `2026-04-03T10:00:00.123456Z`, 27 characters (64 bits of
   nanoseconds span the years 1677-2262: always four digits) */
static int iso_into(char *out, PyObject *unix_ns) {
    int overflow;
    long long ns = PyLong_AsLongLongAndOverflow(unix_ns, &overflow);
    if (ns == -1 && PyErr_Occurred()) return -1;
    if (overflow) return unsupported("a time past 64 bits");
    int64_t seconds = ns / 1000000000, nanos = ns % 1000000000;
    if (nanos < 0) { /* floor division, as divmod */
        nanos += 1000000000;
        seconds -= 1;
    }
    int64_t days = seconds / 86400, second_of_day = seconds % 86400;
    if (second_of_day < 0) {
        second_of_day += 86400;
        days -= 1;
    }
    /* the civil date of a day count since 1970-01-01 (proleptic Gregorian) */
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t day = doy - (153 * mp + 2) / 5 + 1;
    int64_t month = mp < 10 ? mp + 3 : mp - 9;
    int64_t year = yoe + era * 400 + (month <= 2);
    digits_into(out, year, 4);
    out[4] = '-';
    digits_into(out + 5, month, 2);
    out[7] = '-';
    digits_into(out + 8, day, 2);
    out[10] = 'T';
    digits_into(out + 11, second_of_day / 3600, 2);
    out[13] = ':';
    digits_into(out + 14, second_of_day / 60 % 60, 2);
    out[16] = ':';
    digits_into(out + 17, second_of_day % 60, 2);
    out[19] = '.';
    digits_into(out + 20, nanos / 1000, 6);
    out[26] = 'Z';
    return 0;
}

/* -- JSON values, as orjson writes them ------------------------------------------------- */

static int put_escaped(Buffer *b, uint32_t c) {
    char text[6] = {'\\', 'u', '0', '0', HEX[c >> 4], HEX[c & 15]};
    switch (c) {
    case '"': return PUT_LITERAL(b, "\\\"");
    case '\\': return PUT_LITERAL(b, "\\\\");
    case '\b': return PUT_LITERAL(b, "\\b");
    case '\t': return PUT_LITERAL(b, "\\t");
    case '\n': return PUT_LITERAL(b, "\\n");
    case '\f': return PUT_LITERAL(b, "\\f");
    case '\r': return PUT_LITERAL(b, "\\r");
    default: return put(b, text, 6);
    }
}

/* whether any of the 8 bytes of `x` is below 0x20, a quote or a backslash */
static int needs_escape8(uint64_t x) {
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t quote = x ^ (ones * '"'), backslash = x ^ (ones * '\\');
    uint64_t found = ((x - ones * 0x20) & ~x) | ((quote - ones) & ~quote) |
                     ((backslash - ones) & ~backslash);
    return (found & highs) != 0;
}

static int write_ascii(Buffer *b, const char *p, Py_ssize_t size) {
    if (reserve(b, (size_t)size + 2) < 0) return -1;
    b->data[b->len++] = '"';
    Py_ssize_t start = 0, i = 0;
    while (i < size) {
        if (i + 8 <= size) {
            uint64_t x;
            memcpy(&x, p + i, 8);
            if (!needs_escape8(x)) {
                i += 8;
                continue;
            }
        }
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            i++;
            continue;
        }
        memcpy(b->data + b->len, p + start, (size_t)(i - start));
        b->len += (size_t)(i - start);
        /* the escape, and room again for what is left */
        if (reserve(b, 6 + (size_t)(size - i) + 1) < 0 || put_escaped(b, c) < 0) return -1;
        start = ++i;
    }
    memcpy(b->data + b->len, p + start, (size_t)(size - start));
    b->len += (size_t)(size - start);
    b->data[b->len++] = '"';
    return 0;
}

static int write_text(Buffer *b, PyObject *text) {
    if (PyUnicode_READY(text) < 0) return -1;
    Py_ssize_t size = PyUnicode_GET_LENGTH(text);
    if (PyUnicode_IS_ASCII(text)) return write_ascii(b, PyUnicode_DATA(text), size);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    /* UTF-8 takes at most 2, 3 or 4 bytes a character of each kind */
    size_t width = kind == PyUnicode_1BYTE_KIND ? 2 : kind == PyUnicode_2BYTE_KIND ? 3 : 4;
    if (reserve(b, (size_t)size * width + 2) < 0) return -1;
    b->data[b->len++] = '"';
    char *out = b->data + b->len;
    for (Py_ssize_t i = 0; i < size; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c < 0x80) {
            if (c >= 0x20 && c != '"' && c != '\\') {
                *out++ = (char)c;
                continue;
            }
            b->len = (size_t)(out - b->data);
            if (reserve(b, 6 + (size_t)(size - i) * width + 1) < 0 || put_escaped(b, c) < 0)
                return -1;
            out = b->data + b->len;
        } else if (c < 0x800) {
            *out++ = (char)(0xC0 | (c >> 6));
            *out++ = (char)(0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
            if (c >= 0xD800 && c <= 0xDFFF) return unsupported("a lone surrogate");
            *out++ = (char)(0xE0 | (c >> 12));
            *out++ = (char)(0x80 | ((c >> 6) & 0x3F));
            *out++ = (char)(0x80 | (c & 0x3F));
        } else {
            *out++ = (char)(0xF0 | (c >> 18));
            *out++ = (char)(0x80 | ((c >> 12) & 0x3F));
            *out++ = (char)(0x80 | ((c >> 6) & 0x3F));
            *out++ = (char)(0x80 | (c & 0x3F));
        }
    }
    b->len = (size_t)(out - b->data);
    b->data[b->len++] = '"';
    return 0;
}

/* the decimal digits of `value`, written backwards from `end`; returns the first */
static char *decimal_into(char *end, unsigned long long value) {
    do {
        *--end = (char)('0' + value % 10);
        value /= 10;
    } while (value);
    return end;
}

static int write_integer(Buffer *b, PyObject *value) {
    char text[24];
    int overflow;
    long long number = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (number == -1 && PyErr_Occurred()) return -1;
    if (overflow > 0) {
        unsigned long long big = PyLong_AsUnsignedLongLong(value);
        if (big == (unsigned long long)-1 && PyErr_Occurred()) {
            PyErr_Clear();
            return unsupported("an integer past 64 bits");
        }
        char *first = decimal_into(text + sizeof text, big);
        return put(b, first, (size_t)(text + sizeof text - first));
    }
    if (overflow < 0) return unsupported("an integer past 64 bits");
    unsigned long long magnitude =
        number < 0 ? 0ULL - (unsigned long long)number : (unsigned long long)number;
    char *first = decimal_into(text + sizeof text, magnitude);
    if (number < 0) *--first = '-';
    return put(b, first, (size_t)(text + sizeof text - first));
}

/* orjson's float: Python's repr, but for the exponent, written without a plus's zero
   padding (1e-7, not 1e-07), and for exponent -5, which orjson writes as a decimal
   (0.000015, not 1.5e-05); what is not finite is null */
static int write_float(Buffer *b, PyObject *value) {
    double number = PyFloat_AS_DOUBLE(value);
    if (!isfinite(number)) return PUT_LITERAL(b, "null");
    char *repr = PyOS_double_to_string(number, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (repr == NULL) return -1;
    char *e = strchr(repr, 'e');
    int result;
    if (e == NULL) {
        result = put(b, repr, strlen(repr));
    } else {
        char *mantissa = repr;
        int negative = *mantissa == '-';
        mantissa += negative;
        int exponent = atoi(e + 1);
        char text[48];
        size_t size = 0;
        if (negative) text[size++] = '-';
        if (exponent == -5) {
            memcpy(text + size, "0.0000", 6);
            size += 6;
            for (char *p = mantissa; p < e; p++)
                if (*p != '.') text[size++] = *p;
        } else {
            memcpy(text + size, mantissa, (size_t)(e - mantissa));
            size += (size_t)(e - mantissa);
            size += (size_t)snprintf(text + size, sizeof text - size, "e%c%d",
                                     exponent < 0 ? '-' : '+', abs(exponent));
        }
        result = put(b, text, size);
    }
    PyMem_Free(repr);
    return result;
}

static int write_value(Buffer *b, PyObject *value, int depth);

/* a dict's `"key":value` pairs, comma-separated, and a comma before the first unless
   `first` (an object's own, or members added to one already begun) */
static int write_members(Buffer *b, PyObject *dict, int depth, int first) {
    PyObject *key, *value;
    Py_ssize_t position = 0;
    while (PyDict_Next(dict, &position, &key, &value)) {
        if (!PyUnicode_CheckExact(key)) return unsupported("a key that is not text");
        if (!first && PUT_LITERAL(b, ",") < 0) return -1;
        first = 0;
        if (write_text(b, key) < 0 || PUT_LITERAL(b, ":") < 0) return -1;
        if (write_value(b, value, depth + 1) < 0) return -1;
    }
    return 0;
}

static int write_object(Buffer *b, PyObject *dict, int depth) {
    if (PUT_LITERAL(b, "{") < 0 || write_members(b, dict, depth, 1) < 0) return -1;
    return PUT_LITERAL(b, "}");
}

static int write_value(Buffer *b, PyObject *value, int depth) {
    if (depth > MAX_DEPTH) return unsupported("values nested too deep");
    if (PyUnicode_CheckExact(value)) return write_text(b, value);
    if (value == Py_None) return PUT_LITERAL(b, "null");
    if (value == Py_True) return PUT_LITERAL(b, "true");
    if (value == Py_False) return PUT_LITERAL(b, "false");
    if (PyLong_CheckExact(value)) return write_integer(b, value);
    if (PyFloat_CheckExact(value)) return write_float(b, value);
    if (PyDict_CheckExact(value)) return write_object(b, value, depth);
    if (PyList_CheckExact(value)) {
        if (PUT_LITERAL(b, "[") < 0) return -1;
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(value); i++) {
            if (i && PUT_LITERAL(b, ",") < 0) return -1;
            if (write_value(b, PyList_GET_ITEM(value, i), depth + 1) < 0) return -1;
        }
        return PUT_LITERAL(b, "]");
    }
    return unsupported("a value of another type");
}

/* -- the event -------------------------------------------------------------------------- */

static uint8_t NAMESPACE[16]; /* `langfuse_events.NAMESPACE`, set by `set_namespace` */
static int namespace_set = 0;

/* ,"<key>":<text>  (a field of the fixed fields: text, exact or a str subclass) */
static int put_field_text(Buffer *b, const char *key, PyObject *text) {
    if (!PyUnicode_Check(text)) return unsupported("a field that is not text");
    if (put(b, key, strlen(key)) < 0) return -1;
    return write_text(b, text);
}

static int put_hex(Buffer *b, PyObject *id) {
    if (!PyBytes_Check(id)) return unsupported("an id that is not bytes");
    Py_ssize_t size = PyBytes_GET_SIZE(id);
    if (reserve(b, (size_t)size * 2 + 2) < 0) return -1;
    b->data[b->len++] = '"';
    hex_into(b->data + b->len, (const uint8_t *)PyBytes_AS_STRING(id), (size_t)size);
    b->len += (size_t)size * 2;
    b->data[b->len++] = '"';
    return 0;
}

static int put_time(Buffer *b, const char *iso) {
    if (PUT_LITERAL(b, "\"") < 0 || put(b, iso, 27) < 0) return -1;
    return PUT_LITERAL(b, "\"");
}

enum {
    A_KIND, A_TRACE_ID, A_SPAN_ID, A_PARENT_ID, A_NAME, A_START_NS, A_END_NS, A_LEVEL,
    A_STATUS_MESSAGE, A_INPUT, A_OUTPUT, A_ATTRIBUTES, A_RESOURCE, A_SCOPE_NAME,
    A_EVENT_TYPE, A_VERSION, A_ENVIRONMENT, A_EXTRA, N_ARGS
};

static int write_event(Buffer *b, PyObject *const *args, PyObject **event_id) {
    PyObject *kind = args[A_KIND], *trace_id = args[A_TRACE_ID], *span_id = args[A_SPAN_ID];
    if (!PyUnicode_CheckExact(kind) || !PyUnicode_IS_ASCII(kind) || !PyBytes_Check(trace_id) ||
        !PyBytes_Check(span_id))
        return unsupported("a kind or an id of another type");
    /* the envelope id: uuid5 of "<kind>:<trace hex>:<span hex>" */
    Py_ssize_t kind_size = PyUnicode_GET_LENGTH(kind);
    Py_ssize_t trace_size = PyBytes_GET_SIZE(trace_id), span_size = PyBytes_GET_SIZE(span_id);
    size_t name_size = (size_t)(kind_size + 2 + 2 * trace_size + 2 * span_size);
    char *name = PyMem_Malloc(name_size);
    if (name == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    char *p = name;
    memcpy(p, PyUnicode_DATA(kind), (size_t)kind_size);
    p += kind_size;
    *p++ = ':';
    hex_into(p, (const uint8_t *)PyBytes_AS_STRING(trace_id), (size_t)trace_size);
    p += 2 * trace_size;
    *p++ = ':';
    hex_into(p, (const uint8_t *)PyBytes_AS_STRING(span_id), (size_t)span_size);
    char id[36];
    uuid5_into(id, NAMESPACE, name, name_size, sha1_block);
    PyMem_Free(name);
    char started[27], ended[27];
    if (iso_into(started, args[A_START_NS]) < 0 || iso_into(ended, args[A_END_NS]) < 0) return -1;

    if (PUT_LITERAL(b, "{\"id\":\"") < 0 || put(b, id, 36) < 0) return -1;
    if (PUT_LITERAL(b, "\",\"timestamp\":") < 0 || put_time(b, ended) < 0) return -1;
    if (put_field_text(b, ",\"type\":", kind) < 0) return -1;
    if (PUT_LITERAL(b, ",\"body\":{\"id\":") < 0 || put_hex(b, span_id) < 0) return -1;
    if (PUT_LITERAL(b, ",\"traceId\":") < 0 || put_hex(b, trace_id) < 0) return -1;
    PyObject *parent = args[A_PARENT_ID];
    if (parent != Py_None && (!PyBytes_Check(parent) || PyBytes_GET_SIZE(parent) > 0)) {
        if (PUT_LITERAL(b, ",\"parentObservationId\":") < 0 || put_hex(b, parent) < 0) return -1;
    }
    if (put_field_text(b, ",\"name\":", args[A_NAME]) < 0) return -1;
    if (PUT_LITERAL(b, ",\"startTime\":") < 0 || put_time(b, started) < 0) return -1;
    if (PyUnicode_CompareWithASCIIString(kind, "event-create") != 0) {
        if (PUT_LITERAL(b, ",\"endTime\":") < 0 || put_time(b, ended) < 0) return -1;
    }
    if (put_field_text(b, ",\"level\":", args[A_LEVEL]) < 0) return -1;
    PyObject *message = args[A_STATUS_MESSAGE];
    if (message != Py_None && (!PyUnicode_Check(message) || PyUnicode_GET_LENGTH(message) > 0)) {
        if (put_field_text(b, ",\"statusMessage\":", message) < 0) return -1;
    }
    if (args[A_INPUT] != Py_None) {
        if (PUT_LITERAL(b, ",\"input\":") < 0 || write_value(b, args[A_INPUT], 1) < 0) return -1;
    }
    if (args[A_OUTPUT] != Py_None) {
        if (PUT_LITERAL(b, ",\"output\":") < 0 || write_value(b, args[A_OUTPUT], 1) < 0) return -1;
    }
    if (!PyDict_CheckExact(args[A_ATTRIBUTES]) || !PyDict_CheckExact(args[A_RESOURCE]))
        return unsupported("attributes that are not a dict");
    if (PUT_LITERAL(b, ",\"metadata\":{\"attributes\":") < 0) return -1;
    if (write_object(b, args[A_ATTRIBUTES], 2) < 0) return -1;
    if (PUT_LITERAL(b, ",\"resourceAttributes\":") < 0) return -1;
    if (write_object(b, args[A_RESOURCE], 2) < 0) return -1;
    if (put_field_text(b, ",\"scope\":{\"name\":", args[A_SCOPE_NAME]) < 0) return -1;
    if (put_field_text(b, "},\"eventType\":", args[A_EVENT_TYPE]) < 0) return -1;
    if (PUT_LITERAL(b, "}") < 0) return -1;
    if (args[A_VERSION] != Py_None && put_field_text(b, ",\"version\":", args[A_VERSION]) < 0)
        return -1;
    PyObject *environment = args[A_ENVIRONMENT];
    if (environment != Py_None && put_field_text(b, ",\"environment\":", environment) < 0)
        return -1;
    PyObject *extra = args[A_EXTRA];
    if (extra != Py_None) { /* the body's own members, after those above */
        if (!PyDict_CheckExact(extra)) return unsupported("generation fields that are not a dict");
        if (write_members(b, extra, 1, 0) < 0) return -1;
    }
    if (PUT_LITERAL(b, "}}") < 0) return -1;
    *event_id = PyUnicode_FromStringAndSize(id, 36);
    return *event_id == NULL ? -1 : 0;
}

static PyObject *observation(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != N_ARGS) {
        PyErr_Format(PyExc_TypeError, "observation() takes %d arguments (%zd given)", N_ARGS,
                     nargs);
        return NULL;
    }
    if (!namespace_set) {
        PyErr_SetString(PyExc_RuntimeError, "set_namespace() was not called");
        return NULL;
    }
    Buffer b = {PyMem_Malloc(2048), 0, 2048};
    if (b.data == NULL) return PyErr_NoMemory();
    PyObject *event_id = NULL, *result = NULL;
    if (write_event(&b, args, &event_id) == 0) {
        PyObject *payload = PyBytes_FromStringAndSize(b.data, (Py_ssize_t)b.len);
        if (payload != NULL) result = PyTuple_Pack(2, event_id, payload);
        Py_XDECREF(payload);
    }
    Py_XDECREF(event_id);
    PyMem_Free(b.data);
    return result;
}

static PyObject *set_namespace(PyObject *module, PyObject *namespace) {
    if (!PyBytes_Check(namespace) || PyBytes_GET_SIZE(namespace) != 16) {
        PyErr_SetString(PyExc_ValueError, "the namespace is 16 bytes");
        return NULL;
    }
    memcpy(NAMESPACE, PyBytes_AS_STRING(namespace), 16);
    namespace_set = 1;
    Py_RETURN_NONE;
}

static PyObject *uuid5_with(PyObject *name, Compress compress) {
    if (!namespace_set) {
        PyErr_SetString(PyExc_RuntimeError, "set_namespace() was not called");
        return NULL;
    }
    Py_ssize_t size;
    const char *text = PyUnicode_AsUTF8AndSize(name, &size);
    if (text == NULL) return NULL;
    char id[36];
    uuid5_into(id, NAMESPACE, text, (size_t)size, compress);
    return PyUnicode_FromStringAndSize(id, 36);
}

static PyObject *event_id(PyObject *module, PyObject *name) {
    return uuid5_with(name, sha1_block);
}

static PyObject *event_id_portable(PyObject *module, PyObject *name) {
    return uuid5_with(name, sha1_block_portable);
}

static PyObject *sha1_instructions(PyObject *module, PyObject *unused) {
    return PyBool_FromLong(sha1_block != sha1_block_portable);
}

static PyObject *iso_from_ns(PyObject *module, PyObject *unix_ns) {
    if (!PyLong_Check(unix_ns)) {
        PyErr_SetString(PyExc_TypeError, "an integer of nanoseconds");
        return NULL;
    }
    char iso[27];
    if (iso_into(iso, unix_ns) < 0) return NULL;
    return PyUnicode_FromStringAndSize(iso, 27);
}

static PyObject *dumps(PyObject *module, PyObject *value) {
    Buffer b = {PyMem_Malloc(256), 0, 256};
    if (b.data == NULL) return PyErr_NoMemory();
    PyObject *result = NULL;
    if (write_value(&b, value, 0) == 0)
        result = PyBytes_FromStringAndSize(b.data, (Py_ssize_t)b.len);
    PyMem_Free(b.data);
    return result;
}

static PyMethodDef methods[] = {
    {"observation", (PyCFunction)(void (*)(void))observation, METH_FASTCALL,
     "(id, JSON) of an observation event from its decided fields."},
    {"set_namespace", set_namespace, METH_O, "The uuid5 namespace of envelope ids (16 bytes)."},
    {"event_id", event_id, METH_O, "str(uuid.uuid5(namespace, name))."},
    {"event_id_portable", event_id_portable, METH_O,
     "event_id without the CPU's SHA instructions (for the tests of both)."},
    {"sha1_instructions", sha1_instructions, METH_NOARGS,
     "Whether envelope ids use the CPU's SHA instructions."},
    {"iso_from_ns", iso_from_ns, METH_O, "`timefmt.iso_from_ns`, or Unsupported."},
    {"dumps", dumps, METH_O, "orjson.dumps(value), or Unsupported."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "session_bridge.mapping._event_json",
    "Observation events written as JSON (see session_bridge.mapping.langfuse_events).", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__event_json(void) {
    sha1_block = fastest_compress();
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) return NULL;
    Unsupported = PyErr_NewException("session_bridge.mapping._event_json.Unsupported",
                                     PyExc_ValueError, NULL);
    if (Unsupported == NULL || PyModule_AddObjectRef(module, "Unsupported", Unsupported) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
