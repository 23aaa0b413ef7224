/*
 * form: a WASI preview1 CGI program in C that handles an HTML form.
 *
 *   GET  /        shows the form
 *   POST /        parses the application/x-www-form-urlencoded body
 *                 (fields `name` and `message`) and answers with a page
 *                 that greets the sender and quotes the message
 *   anything else 405, with an Allow header
 *
 * Everything printed comes from RFC 3875 variables (REQUEST_METHOD,
 * CONTENT_TYPE, CONTENT_LENGTH, SCRIPT_NAME) and stdin; user input is
 * HTML-escaped. Logs go to stderr (the call's stderr tail), never into the page.
 *
 * Build: ../build.sh (clang --target=wasm32-wasi).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_BODY 65536

static const char *env_or(const char *name, const char *fallback) {
    const char *v = getenv(name);
    return v ? v : fallback;
}

/* Prints s with &, <, >, " and ' escaped. */
static void html(const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", stdout); break;
        case '<': fputs("&lt;", stdout); break;
        case '>': fputs("&gt;", stdout); break;
        case '"': fputs("&quot;", stdout); break;
        case '\'': fputs("&#39;", stdout); break;
        default: putchar(*s);
        }
    }
}

static int hex(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes one urlencoded component in place ('+' is a space, %XX a byte). */
static void urldecode(char *s) {
    char *out = s;
    for (; *s; s++) {
        if (*s == '+') {
            *out++ = ' ';
        } else if (*s == '%' && hex(s[1]) >= 0 && hex(s[2]) >= 0) {
            *out++ = (char)(hex(s[1]) * 16 + hex(s[2]));
            s += 2;
        } else {
            *out++ = *s;
        }
    }
    *out = '\0';
}

/* The decoded value of field `key` in the urlencoded `body`, or NULL. */
static char *field(const char *body, const char *key) {
    size_t klen = strlen(key);
    const char *p = body;
    while (*p) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
            char *v = strndup(p + klen + 1, len - klen - 1);
            if (v) urldecode(v);
            return v;
        }
        if (!end) break;
        p = end + 1;
    }
    return NULL;
}

static void page_start(const char *status) {
    printf("Status: %s\n", status);
    printf("Content-Type: text/html; charset=utf-8\n\n");
    printf("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Olincloud form</title></head><body>\n");
}

static void show_form(void) {
    page_start("200 OK");
    printf("<h1>Leave a message</h1>\n<form method=\"post\" action=\"");
    html(env_or("SCRIPT_NAME", ""));
    printf("/\">\n");
    printf("<label>Name <input name=\"name\"></label>\n");
    printf("<label>Message <textarea name=\"message\"></textarea></label>\n");
    printf("<button type=\"submit\">Send</button>\n</form>\n</body></html>\n");
}

static int handle_post(void) {
    const char *type = env_or("CONTENT_TYPE", "");
    if (strncasecmp(type, "application/x-www-form-urlencoded", 33) != 0) {
        page_start("415 Unsupported Media Type");
        printf("<p>Send the form as application/x-www-form-urlencoded.</p></body></html>\n");
        return 0;
    }
    long length = atol(env_or("CONTENT_LENGTH", "0"));
    if (length < 0 || length > MAX_BODY) {
        page_start("413 Payload Too Large");
        printf("<p>The form may be at most %d bytes.</p></body></html>\n", MAX_BODY);
        return 0;
    }
    char *body = calloc((size_t)length + 1, 1);
    if (!body) {
        fprintf(stderr, "form: out of memory\n");
        return 1;
    }
    size_t got = fread(body, 1, (size_t)length, stdin);
    body[got] = '\0';
    char *name = field(body, "name");
    char *message = field(body, "message");
    fprintf(stderr, "form: message from %s (%zu bytes)\n", name ? name : "(anonymous)", got);
    page_start("200 OK");
    printf("<h1>Thanks, ");
    html(name && *name ? name : "stranger");
    printf("!</h1>\n<p>You said:</p>\n<blockquote>");
    html(message ? message : "");
    printf("</blockquote>\n</body></html>\n");
    free(name);
    free(message);
    free(body);
    return 0;
}

int main(void) {
    const char *method = env_or("REQUEST_METHOD", "GET");
    if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) {
        show_form();
        return 0;
    }
    if (strcmp(method, "POST") == 0) {
        return handle_post();
    }
    printf("Status: 405 Method Not Allowed\nAllow: GET, HEAD, POST\nContent-Type: text/plain\n\nUse GET or POST.\n");
    return 0;
}
