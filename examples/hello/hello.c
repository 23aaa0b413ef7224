/*
 * hello: a WASI preview1 CGI program in C.
 *
 * It answers with the request's method, path, query string, User-Agent header
 * and body length, read from the RFC 3875 environment and stdin. A request for
 * the path /fail writes to stderr and exits with code 2, to show how a failing
 * function is reported.
 *
 * Build: ./build.sh (clang --target=wasm32-wasi, Debian packages clang lld
 * wasi-libc libclang-rt-14-dev-wasm32).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *env_or(const char *name, const char *fallback) {
    const char *v = getenv(name);
    return v ? v : fallback;
}

int main(void) {
    const char *path = env_or("PATH_INFO", "");
    if (strcmp(path, "/fail") == 0) {
        fprintf(stderr, "hello: asked to fail\n");
        return 2;
    }

    /* Count the body: stdin is the request body. */
    unsigned long body = 0;
    char buf[16384];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) {
        body += n;
    }

    printf("Content-Type: text/plain; charset=utf-8\n");
    printf("X-Powered-By: olincloud-hello\n");
    printf("\n");
    printf("Hello from Olincloud!\n");
    printf("method: %s\n", env_or("REQUEST_METHOD", "?"));
    printf("path: %s\n", path);
    printf("query: %s\n", env_or("QUERY_STRING", ""));
    printf("user-agent: %s\n", env_or("HTTP_USER_AGENT", ""));
    printf("body-length: %lu\n", body);
    printf("run-id: %s\n", env_or("RUN_ID", ""));
    return 0;
}
