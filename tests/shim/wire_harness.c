/*
 * wire_harness.c: decode one wire test vector with wsgidaemon/shim/wire.h and print its dump.
 *
 *   wire_harness tests/protocol/corpus/wire/req-001-minimal-get.bin
 *
 * req-* files are decoded as the daemon does, resp-* files as the shim does; the dump format,
 * the actions of the other side and the order of the checks are those of
 * tests/protocol/corpus/wire/README.md. A stream that decodes without refusal and without an
 * unfinished frame is then encoded again from its events with wire.h's writers, and must give
 * back the same bytes. Exit status: 0 when done, 1 when re-encoding differs, 2 on bad usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

typedef struct { int in_request, confirmed; unsigned long body; } daemon_state;

static wd_buf again;                  /* the stream encoded again from the decoded events */

/* CRC-32 as in zlib, bit by bit. */
static uint32_t crc32(const unsigned char *p, size_t n)
{
    uint32_t crc = 0xFFFFFFFFu;
    int k;
    while (n--)
        for (crc ^= *p++, k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    return crc ^ 0xFFFFFFFFu;
}

/* Print bytes as a quoted string. */
static void quoted(const unsigned char *p, size_t n)
{
    putchar('"');
    for (; n--; p++)
        if (*p >= 0x20 && *p <= 0x7E && *p != '"' && *p != '\\')
            putchar(*p);
        else
            printf("\\x%02x", *p);
    putchar('"');
}

/* Print a body: its length, then the quoted bytes or their CRC-32 when longer than 64. */
static void body(const char *event, const unsigned char *p, uint32_t n)
{
    printf("%s %lu ", event, (unsigned long)n);
    if (n <= 64)
        quoted(p, n);
    else
        printf("crc32=0x%08lx", (unsigned long)crc32(p, n));
    putchar('\n');
}

/* Check the count pairs that end a head's payload: REQUEST_HEAD's environment (env) or a
 * RESPONSE_HEAD's pair list. */
static int check_pairs(wd_cursor *c, uint32_t count, int env)
{
    wd_str name, value;
    uint32_t i;
    for (i = 0; i < count; i++)
        if (env ? wd_get_env_pair(c, &name, &value) : wd_get_pair(c, &name, &value))
            return c->code;
    return wd_get_end(c);
}

/* Print checked pairs and encode them again. An environment string is followed by its NUL in
 * the frame, so it is a C string as it stands. */
static void print_pairs(wd_cursor *c, uint32_t count, int env)
{
    wd_str name, value;
    while (count-- && !(env ? wd_get_env_pair(c, &name, &value) : wd_get_pair(c, &name, &value))) {
        printf("  ");
        quoted(name.data, name.len);
        putchar(' ');
        quoted(value.data, value.len);
        putchar('\n');
        if (env)
            wd_put_env_pair(&again, (const char *)name.data, (const char *)value.data);
        else
            wd_put_pair(&again, name.data, name.len, value.data, value.len);
    }
}

/* Encode again a frame made of two u16 (the second optional) and a string. */
static void put_coded(unsigned type, unsigned a, int b, const wd_str *text)
{
    size_t mark = wd_begin_frame(&again, type);
    wd_put_u16(&again, a);
    if (b >= 0)
        wd_put_u16(&again, (unsigned)b);
    wd_put_str(&again, text->data, text->len);
    wd_end_frame(&again, mark);
}

/* The daemon's state rules, from the header alone: 0 or an ERROR code. */
static int daemon_check(const daemon_state *s, const wd_header *h)
{
    if (!wd_is_request_type(h->type) || (h->type == WD_REQUEST_HEAD) == s->in_request)
        return WD_ERR_MALFORMED;
    if (h->type == WD_REQUEST_BODY && !s->confirmed && s->body + h->length > WD_EAGER_WINDOW)
        return WD_ERR_TOO_LARGE;
    return 0;
}

/* Decode, print and encode again one frame the shim sent, as the daemon does. */
static int daemon_frame(daemon_state *s, const wd_header *h, const unsigned char *p)
{
    wd_cursor c, pairs;
    uint16_t version, flags;
    uint32_t count;
    wd_str reason;
    size_t mark;

    wd_cursor_init(&c, p, h->length);
    switch (h->type) {
    case WD_REQUEST_HEAD:
        if (wd_get_request_head(&c, &version, &flags, &count))
            return c.code;
        pairs = c;
        if (check_pairs(&c, count, 1))
            return c.code;
        printf("REQUEST_HEAD version=%u flags=0x%04x pairs=%lu\n", version, flags,
               (unsigned long)count);
        mark = wd_begin_frame(&again, WD_REQUEST_HEAD);
        wd_put_request_head(&again, flags, count);
        print_pairs(&pairs, count, 1);
        wd_end_frame(&again, mark);
        s->in_request = 1, s->confirmed = flags & WD_LARGE_BODY, s->body = 0;
        return 0;
    case WD_REQUEST_BODY:
        body("REQUEST_BODY", p, h->length);
        wd_put_frame(&again, WD_REQUEST_BODY, p, h->length);
        s->body += h->length;
        return 0;
    case WD_REQUEST_END:
        puts("REQUEST_END");
        wd_put_frame(&again, WD_REQUEST_END, NULL, 0);
        s->in_request = 0;
        return 0;
    default:                          /* REQUEST_ABORT */
        if (wd_get_request_abort(&c, &reason))
            return c.code;
        printf("REQUEST_ABORT ");
        quoted(reason.data, reason.len);
        putchar('\n');
        mark = wd_begin_frame(&again, WD_REQUEST_ABORT);
        wd_put_str(&again, reason.data, reason.len);
        wd_end_frame(&again, mark);
        s->in_request = 0;
        return 0;
    }
}

/* Decode, print and encode again one frame the daemon sent, as the shim does. */
static int shim_frame(wd_shim_state *s, const wd_header *h, const unsigned char *p)
{
    wd_cursor c, pairs;
    uint16_t version, status, a, b;
    uint32_t count;
    wd_str text;
    size_t mark;

    wd_cursor_init(&c, p, h->length);
    switch (h->type) {
    case WD_RESPONSE_HEAD:
        if (wd_get_response_head(&c, &version, &status, &text, &count))
            return c.code;
        pairs = c;
        if (check_pairs(&c, count, 0))
            return c.code;
        printf("RESPONSE_HEAD version=%u status=%u status_line=", version, status);
        quoted(text.data, text.len);
        printf(" pairs=%lu\n", (unsigned long)count);
        mark = wd_begin_frame(&again, WD_RESPONSE_HEAD);
        wd_put_response_head(&again, status, text.data, text.len, count);
        print_pairs(&pairs, count, 0);
        wd_end_frame(&again, mark);
        break;
    case WD_RESPONSE_BODY:
        body("RESPONSE_BODY", p, h->length);
        wd_put_frame(&again, WD_RESPONSE_BODY, p, h->length);
        break;
    case WD_RESPONSE_END:
        if (wd_get_response_end(&c, &a, &text, s->head))
            return c.code;
        printf("RESPONSE_END %u ", a);
        put_coded(h->type, a, -1, &text);
        break;
    case WD_RETRY:
    case WD_ERROR:
        if (h->type == WD_RETRY ? wd_get_retry(&c, &a, &b, &text) : wd_get_error(&c, &a, &b, &text))
            return c.code;
        printf("%s %u %u ", h->type == WD_RETRY ? "RETRY" : "ERROR_FRAME", a, b);
        put_coded(h->type, a, b, &text);
        break;
    default:                          /* START, GOAWAY */
        puts(wd_type_name(h->type));
        wd_put_frame(&again, h->type, NULL, 0);
    }
    if (h->type == WD_RESPONSE_END || h->type == WD_RETRY || h->type == WD_ERROR) {
        quoted(text.data, text.len);
        putchar('\n');
    }
    wd_shim_update(s, h->type);
    return 0;
}

/* Read a whole file into memory. */
static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    long size;

    if (!f || fseek(f, 0, SEEK_END) || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) ||
        !(buf = malloc((size_t)size + 1)) || fread(buf, 1, (size_t)size, f) != (size_t)size) {
        perror(path);
        exit(2);
    }
    fclose(f);
    *n = (size_t)size;
    return buf;
}

int main(int argc, char **argv)
{
    const char *name, *why = NULL;
    unsigned char *in;
    size_t n, at = 0;
    daemon_state ds = {0, 0, 0};
    wd_shim_state ss = {0, 0, 0, 0};
    wd_header h;
    int req, code = 0, status = 0;

    if (argc != 2) {
        fprintf(stderr, "usage: %s VECTOR.bin\n", argv[0]);
        return 2;
    }
    name = strrchr(argv[1], '/') ? strrchr(argv[1], '/') + 1 : argv[1];
    req = !strncmp(name, "req-", 4);
    in = slurp(argv[1], &n);
    again.p = malloc(n + 1), again.cap = n;
    while (!code && n - at >= WD_HEADER_SIZE) {
        wd_header_parse(in + at, &h);
        if ((code = wd_header_check(&h, WD_MAX_HEAD, &why)) ||
            (code = req ? daemon_check(&ds, &h) : wd_shim_check(&ss, h.type)) ||
            n - at - WD_HEADER_SIZE < h.length)
            break;
        code = req ? daemon_frame(&ds, &h, in + at + WD_HEADER_SIZE)
                   : shim_frame(&ss, &h, in + at + WD_HEADER_SIZE);
        at += code ? 0 : WD_HEADER_SIZE + h.length;
    }
    if (code)
        printf("ERROR %s\n", wd_error_name((unsigned)code));
    else {
        if (req && ds.in_request)
            puts("REQUEST_ABORT \"shim closed the connection mid-request\"");
        puts("CLOSED");
        if (at == n && (!wd_buf_ok(&again) || again.len != n || memcmp(again.p, in, n))) {
            fflush(stdout);
            fprintf(stderr, "%s: encoding the decoded events again gives different bytes\n",
                    name);
            status = 1;
        }
    }
    free(in);
    free(again.p);
    return status;
}
