/*
 * wire.h: the wsgidaemon wire protocol, version 1, in plain C99 (docs/wire-protocol.md).
 *
 * No APR, no allocation, no I/O. Readers take a cursor over one frame's payload and check
 * every length against what is left before using it; writers append to a caller-sized
 * buffer and only count when it has no storage, so a caller can size a frame first and
 * encode it second. Every reader returns 0 or a wire ERROR code (WD_ERR_*), and the cursor
 * keeps the first failure's reason for the log. Checks run in the order that
 * tests/protocol/corpus/wire/README.md makes normative: the frame header (wd_header_check),
 * then the state (wd_shim_check on the shim's side), then the payload field by field.
 * Mirrored by wsgidaemon/protocol/wire*.py; both pass the same test vectors.
 */
#ifndef WSGIDAEMON_WIRE_H
#define WSGIDAEMON_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define WD_MAGIC        "WSGD"
#define WD_VERSION      2
#define WD_HEADER_SIZE  8
#define WD_MAX_HEAD     (16u * 1024u * 1024u)
#define WD_MAX_DATA     (1024u * 1024u)
#define WD_MAX_SMALL    (64u * 1024u)
#define WD_MAX_PAIRS    65536u
#define WD_EAGER_WINDOW 65536u

/* Frame types: shim to daemon, then daemon to shim. */
#define WD_REQUEST_HEAD  0x01
#define WD_REQUEST_BODY  0x02
#define WD_REQUEST_END   0x03
#define WD_REQUEST_ABORT 0x04
#define WD_RESPONSE_HEAD 0x11
#define WD_RESPONSE_BODY 0x12
#define WD_RESPONSE_END  0x13
#define WD_RETRY         0x14
#define WD_START         0x15
#define WD_GOAWAY        0x16
#define WD_ERROR         0x1F

/* REQUEST_HEAD flags. */
#define WD_LARGE_BODY 0x0001u

/* RESPONSE_END codes. */
#define WD_END_COMPLETE    0
#define WD_END_APP_ERROR   1
#define WD_END_TIMEOUT     2
#define WD_END_SHUTDOWN    3
#define WD_END_INPUT_ERROR 4

/* RETRY reasons. */
#define WD_RETRY_DRAINING       1
#define WD_RETRY_SCRIPT_CHANGED 2

/* ERROR codes; also what every reader below returns on failure. */
#define WD_ERR_BAD_MAGIC   1
#define WD_ERR_BAD_VERSION 2
#define WD_ERR_MALFORMED   3
#define WD_ERR_TOO_LARGE   4

typedef struct { const unsigned char *data; uint32_t len; } wd_str;
typedef struct { uint8_t type, flags; uint16_t reserved; uint32_t length; } wd_header;
typedef struct { const unsigned char *p, *end; int code; const char *error; } wd_cursor;
typedef struct { unsigned char *p; size_t cap, len; } wd_buf;  /* p == NULL: count only */
typedef struct { int started, head, goaway, error; } wd_shim_state;  /* what the daemon said */

/* The name of a frame type, or NULL when the type is unknown. */
static inline const char *wd_type_name(unsigned type)
{
    switch (type) {
    case WD_REQUEST_HEAD:  return "REQUEST_HEAD";
    case WD_REQUEST_BODY:  return "REQUEST_BODY";
    case WD_REQUEST_END:   return "REQUEST_END";
    case WD_REQUEST_ABORT: return "REQUEST_ABORT";
    case WD_RESPONSE_HEAD: return "RESPONSE_HEAD";
    case WD_RESPONSE_BODY: return "RESPONSE_BODY";
    case WD_RESPONSE_END:  return "RESPONSE_END";
    case WD_RETRY:         return "RETRY";
    case WD_START:         return "START";
    case WD_GOAWAY:        return "GOAWAY";
    case WD_ERROR:         return "ERROR";
    default:               return NULL;
    }
}

/* The name of a RESPONSE_END code, or NULL when unknown. */
static inline const char *wd_end_name(unsigned code)
{
    static const char *const names[] = {"COMPLETE", "APP_ERROR", "TIMEOUT", "SHUTDOWN",
                                        "INPUT_ERROR"};
    return code <= WD_END_INPUT_ERROR ? names[code] : NULL;
}

/* The name of a RETRY reason, or NULL when unknown. */
static inline const char *wd_retry_name(unsigned reason)
{
    return reason == WD_RETRY_DRAINING ? "DRAINING"
         : reason == WD_RETRY_SCRIPT_CHANGED ? "SCRIPT_CHANGED" : NULL;
}

/* The name of an ERROR code, or NULL when unknown. */
static inline const char *wd_error_name(unsigned code)
{
    static const char *const names[] = {"BAD_MAGIC", "BAD_VERSION", "MALFORMED", "TOO_LARGE"};
    return code >= 1 && code <= 4 ? names[code - 1] : NULL;
}

/* True for the types the shim sends, which only the daemon may receive. */
static inline int wd_is_request_type(unsigned type)
{
    return type >= WD_REQUEST_HEAD && type <= WD_REQUEST_ABORT;
}

/* The largest payload a frame type may carry (max_head for the two heads). */
static inline uint32_t wd_payload_limit(unsigned type, uint32_t max_head)
{
    switch (type) {
    case WD_REQUEST_HEAD: case WD_RESPONSE_HEAD: return max_head;
    case WD_REQUEST_BODY: case WD_RESPONSE_BODY: return WD_MAX_DATA;
    case WD_REQUEST_END: case WD_START: case WD_GOAWAY: return 0;
    default: return WD_MAX_SMALL;
    }
}

/* Split the 8 bytes of a frame header into its fields, unchecked. */
static inline void wd_header_parse(const unsigned char b[WD_HEADER_SIZE], wd_header *h)
{
    h->type = b[0];
    h->flags = b[1];
    h->reserved = (uint16_t)((b[2] << 8) | b[3]);
    h->length = ((uint32_t)b[4] << 24) | ((uint32_t)b[5] << 16) | ((uint32_t)b[6] << 8) | b[7];
}

/* Check a header before its payload is read: 0, or an ERROR code with *why set. */
static inline int wd_header_check(const wd_header *h, uint32_t max_head, const char **why)
{
    uint32_t limit = wd_payload_limit(h->type, max_head);
    if (!wd_type_name(h->type))
        return *why = "unknown frame type", WD_ERR_MALFORMED;
    if (h->flags || h->reserved)
        return *why = "non-zero flags or reserved bits in a frame header", WD_ERR_MALFORMED;
    if ((h->type == WD_REQUEST_BODY || h->type == WD_RESPONSE_BODY) && h->length == 0)
        return *why = "empty body frame", WD_ERR_MALFORMED;
    if (h->length > limit && !limit)
        return *why = "payload on a frame that has none", WD_ERR_MALFORMED;
    if (h->length > limit)
        return *why = "frame payload above its limit", WD_ERR_TOO_LARGE;
    return 0;
}

/* Whether the daemon may send a frame of this type now: 0 or WD_ERR_MALFORMED.
 * Per response: START?, RESPONSE_HEAD, RESPONSE_BODY*, RESPONSE_END; or RETRY before START; or
 * a non-COMPLETE RESPONSE_END before the head. GOAWAY once, never inside a response, and then
 * only RETRY may answer. ERROR at any time, and nothing after it. */
static inline int wd_shim_check(const wd_shim_state *s, unsigned type)
{
    int busy = s->started || s->head;
    if (s->error || wd_is_request_type(type))
        return WD_ERR_MALFORMED;
    if (type == WD_ERROR)
        return 0;
    if (type == WD_GOAWAY || type == WD_RETRY)
        return busy || (type == WD_GOAWAY && s->goaway) ? WD_ERR_MALFORMED : 0;
    if (s->goaway || (type == WD_START && busy) || (type == WD_RESPONSE_HEAD && s->head) ||
        (type == WD_RESPONSE_BODY && !s->head))
        return WD_ERR_MALFORMED;
    return 0;
}

/* Advance the shim's view after an accepted frame; RESPONSE_END and RETRY end a cycle. */
static inline void wd_shim_update(wd_shim_state *s, unsigned type)
{
    s->started |= type == WD_START;
    s->head |= type == WD_RESPONSE_HEAD;
    s->goaway |= type == WD_GOAWAY;
    s->error |= type == WD_ERROR;
    if (type == WD_RESPONSE_END || type == WD_RETRY)
        s->started = s->head = 0;
}

/* Start reading a payload of len bytes. */
static inline void wd_cursor_init(wd_cursor *c, const void *data, size_t len)
{
    c->p = (const unsigned char *)data;
    c->end = c->p + len;
    c->code = 0;
    c->error = NULL;
}

/* Record the first failure on a cursor and return its code. */
static inline int wd_fail(wd_cursor *c, int code, const char *why)
{
    if (!c->code) {
        c->code = code;
        c->error = why;
    }
    return c->code;
}

/* Take n raw bytes. */
static inline int wd_get_bytes(wd_cursor *c, size_t n, const unsigned char **out)
{
    *out = c->p;                      /* outputs are always set, to a harmless value on failure */
    if (c->code)
        return c->code;
    if ((size_t)(c->end - c->p) < n)
        return wd_fail(c, WD_ERR_MALFORMED, "a field runs past the end of the payload");
    *out = c->p;
    c->p += n;
    return 0;
}

/* Take a big-endian u16. */
static inline int wd_get_u16(wd_cursor *c, uint16_t *v)
{
    const unsigned char *b;
    *v = 0;
    if (wd_get_bytes(c, 2, &b))
        return c->code;
    *v = (uint16_t)((b[0] << 8) | b[1]);
    return 0;
}

/* Take a big-endian u32. */
static inline int wd_get_u32(wd_cursor *c, uint32_t *v)
{
    const unsigned char *b;
    *v = 0;
    if (wd_get_bytes(c, 4, &b))
        return c->code;
    *v = ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
    return 0;
}

/* Take a string: u32 length, then that many bytes. */
static inline int wd_get_str(wd_cursor *c, wd_str *s)
{
    s->data = c->p;
    if (wd_get_u32(c, &s->len) || wd_get_bytes(c, s->len, &s->data))
        return c->code;
    return 0;
}

/* Take a pair list's count; the pairs follow, read them with wd_get_pair. */
static inline int wd_get_count(wd_cursor *c, uint32_t *count)
{
    if (wd_get_u32(c, count))
        return c->code;
    if (*count > WD_MAX_PAIRS)
        return wd_fail(c, WD_ERR_TOO_LARGE, "pair list longer than MAX_PAIRS");
    if (*count > (size_t)(c->end - c->p) / 8)
        return wd_fail(c, WD_ERR_MALFORMED, "a field runs past the end of the payload");
    return 0;
}

/* Take one pair of a pair list; a name is never empty. */
static inline int wd_get_pair(wd_cursor *c, wd_str *name, wd_str *value)
{
    name->data = value->data = c->p, value->len = 0;
    if (wd_get_u32(c, &name->len))
        return c->code;
    if (!name->len)
        return wd_fail(c, WD_ERR_MALFORMED, "an empty name in a pair list");
    if (wd_get_bytes(c, name->len, &name->data) || wd_get_str(c, value))
        return c->code;
    return 0;
}

/* Fail unless the whole payload has been read. */
static inline int wd_get_end(wd_cursor *c)
{
    if (c->code)
        return c->code;
    if (c->p != c->end)
        return wd_fail(c, WD_ERR_MALFORMED, "bytes left over after the last field");
    return 0;
}

/* Take the magic and version that open both heads; a version other than ours ends there. */
static inline int wd_get_magic(wd_cursor *c, uint16_t *version)
{
    const unsigned char *m;
    *version = 0;
    if (wd_get_bytes(c, 4, &m))
        return c->code;
    if (memcmp(m, WD_MAGIC, 4))
        return wd_fail(c, WD_ERR_BAD_MAGIC, "bad magic");
    if (wd_get_u16(c, version))
        return c->code;
    if (*version != WD_VERSION)
        return wd_fail(c, WD_ERR_BAD_VERSION, "unsupported wire protocol version");
    return 0;
}

/* REQUEST_HEAD up to its environment: magic, version, flags, pair count; the count pairs of
 * NUL-terminated strings follow, read them with wd_get_env_pair. */
static inline int wd_get_request_head(wd_cursor *c, uint16_t *version, uint16_t *flags,
                                      uint32_t *count)
{
    *flags = 0, *count = 0;
    if (wd_get_magic(c, version) || wd_get_u16(c, flags))
        return c->code;
    if (*flags & ~WD_LARGE_BODY)
        return wd_fail(c, WD_ERR_MALFORMED, "unknown REQUEST_HEAD flags");
    if (wd_get_u32(c, count))
        return c->code;
    if (*count > WD_MAX_PAIRS)
        return wd_fail(c, WD_ERR_TOO_LARGE, "environment longer than MAX_PAIRS");
    return 0;
}

/* Take one NUL-terminated string of the REQUEST_HEAD environment (len excludes the NUL). */
static inline int wd_get_env_str(wd_cursor *c, wd_str *s)
{
    const unsigned char *nul;
    if (c->code)
        return c->code;
    nul = memchr(c->p, 0, (size_t)(c->end - c->p));
    if (!nul)
        return wd_fail(c, WD_ERR_MALFORMED, "an environment string without its NUL");
    s->data = c->p, s->len = (uint32_t)(nul - c->p);
    c->p = nul + 1;
    return 0;
}

/* Take one pair of the REQUEST_HEAD environment; a name is never empty. */
static inline int wd_get_env_pair(wd_cursor *c, wd_str *name, wd_str *value)
{
    name->data = value->data = c->p, name->len = value->len = 0;
    if (wd_get_env_str(c, name))
        return c->code;
    if (!name->len)
        return wd_fail(c, WD_ERR_MALFORMED, "an empty name in the environment");
    return wd_get_env_str(c, value);
}

/* RESPONSE_HEAD up to its pairs: magic, version, status, status line, pair count. */
static inline int wd_get_response_head(wd_cursor *c, uint16_t *version, uint16_t *status,
                                       wd_str *status_line, uint32_t *count)
{
    *status = 0, *count = 0, status_line->data = c->p, status_line->len = 0;
    if (wd_get_magic(c, version) || wd_get_u16(c, status))
        return c->code;
    if (*status < 100 || *status > 999)
        return wd_fail(c, WD_ERR_MALFORMED, "a status outside 100..999");
    if (wd_get_str(c, status_line))
        return c->code;
    return wd_get_count(c, count);
}

/* REQUEST_ABORT: the reason. */
static inline int wd_get_request_abort(wd_cursor *c, wd_str *reason)
{
    reason->data = c->p, reason->len = 0;
    if (wd_get_str(c, reason))
        return c->code;
    return wd_get_end(c);
}

/* RESPONSE_END: a known code and the reason; COMPLETE only after the head. */
static inline int wd_get_response_end(wd_cursor *c, uint16_t *code, wd_str *reason, int head)
{
    *code = 0, reason->data = c->p, reason->len = 0;
    if (wd_get_u16(c, code) || wd_get_str(c, reason) || wd_get_end(c))
        return c->code;
    if (!wd_end_name(*code))
        return wd_fail(c, WD_ERR_MALFORMED, "an unknown RESPONSE_END code");
    if (*code == WD_END_COMPLETE && !head)
        return wd_fail(c, WD_ERR_MALFORMED, "RESPONSE_END COMPLETE before RESPONSE_HEAD");
    return 0;
}

/* RETRY: a known reason, the attempts the daemon suggests, a text. */
static inline int wd_get_retry(wd_cursor *c, uint16_t *reason, uint16_t *attempts, wd_str *text)
{
    *reason = *attempts = 0, text->data = c->p, text->len = 0;
    if (wd_get_u16(c, reason) || wd_get_u16(c, attempts) || wd_get_str(c, text) || wd_get_end(c))
        return c->code;
    return wd_retry_name(*reason) ? 0 : wd_fail(c, WD_ERR_MALFORMED, "an unknown RETRY reason");
}

/* ERROR: a known code, the sender's version, a text. */
static inline int wd_get_error(wd_cursor *c, uint16_t *code, uint16_t *version, wd_str *text)
{
    *code = *version = 0, text->data = c->p, text->len = 0;
    if (wd_get_u16(c, code) || wd_get_u16(c, version) || wd_get_str(c, text) || wd_get_end(c))
        return c->code;
    return wd_error_name(*code) ? 0 : wd_fail(c, WD_ERR_MALFORMED, "an unknown ERROR code");
}

/* Append n bytes (only count them when the buffer has no storage or is full). */
static inline void wd_put(wd_buf *b, const void *data, size_t n)
{
    if (b->p && b->len <= b->cap && n <= b->cap - b->len && n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
}

/* True when everything appended so far fitted. */
static inline int wd_buf_ok(const wd_buf *b)
{
    return b->len <= b->cap || !b->p;
}

/* Append a big-endian u16. */
static inline void wd_put_u16(wd_buf *b, unsigned v)
{
    unsigned char x[2] = {(unsigned char)(v >> 8), (unsigned char)v};
    wd_put(b, x, 2);
}

/* Append a big-endian u32. */
static inline void wd_put_u32(wd_buf *b, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    wd_put(b, x, 4);
}

/* Append a string. */
static inline void wd_put_str(wd_buf *b, const void *data, uint32_t len)
{
    wd_put_u32(b, len);
    wd_put(b, data, len);
}

/* Append a frame header; returns its offset, for wd_end_frame to fill in the length. */
static inline size_t wd_begin_frame(wd_buf *b, unsigned type)
{
    size_t mark = b->len;
    unsigned char x[4] = {(unsigned char)type, 0, 0, 0};
    wd_put(b, x, 4);
    wd_put_u32(b, 0);
    return mark;
}

/* Fill in the length of the frame begun at mark, now that its payload is written. */
static inline void wd_end_frame(wd_buf *b, size_t mark)
{
    uint32_t n = (uint32_t)(b->len - mark - WD_HEADER_SIZE);
    if (b->p && wd_buf_ok(b)) {
        unsigned char *x = b->p + mark + 4;
        x[0] = (unsigned char)(n >> 24), x[1] = (unsigned char)(n >> 16);
        x[2] = (unsigned char)(n >> 8), x[3] = (unsigned char)n;
    }
}

/* Append a whole frame whose payload is given raw (bodies, empty frames). */
static inline void wd_put_frame(wd_buf *b, unsigned type, const void *data, uint32_t len)
{
    size_t mark = wd_begin_frame(b, type);
    wd_put(b, data, len);
    wd_end_frame(b, mark);
}

/* Append the fields that open a REQUEST_HEAD payload; the count pairs follow. */
static inline void wd_put_request_head(wd_buf *b, unsigned flags, uint32_t count)
{
    wd_put(b, WD_MAGIC, 4);
    wd_put_u16(b, WD_VERSION);
    wd_put_u16(b, flags);
    wd_put_u32(b, count);
}

/* Append the fields that open a RESPONSE_HEAD payload; the count pairs follow. */
static inline void wd_put_response_head(wd_buf *b, unsigned status, const void *line,
                                        uint32_t line_len, uint32_t count)
{
    wd_put(b, WD_MAGIC, 4);
    wd_put_u16(b, WD_VERSION);
    wd_put_u16(b, status);
    wd_put_str(b, line, line_len);
    wd_put_u32(b, count);
}

/* Append one pair of the REQUEST_HEAD environment: name and value, each ended by a NUL (so
 * neither may contain one: Apache's are C strings). */
static inline void wd_put_env_pair(wd_buf *b, const char *name, const char *value)
{
    wd_put(b, name, strlen(name) + 1);
    wd_put(b, value, strlen(value) + 1);
}

/* Append one pair of a pair list. */
static inline void wd_put_pair(wd_buf *b, const void *name, uint32_t name_len,
                               const void *value, uint32_t value_len)
{
    wd_put_str(b, name, name_len);
    wd_put_str(b, value, value_len);
}

#endif
