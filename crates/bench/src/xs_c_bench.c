/*
 * The libxenstore side of `vusb-bench xenstore`: the same three operations
 * the vusb client is timed on, through the C library, against the daemon
 * named by XENSTORED_PATH. Compiled by the bench at run time:
 *   gcc -O2 -o xs_c_bench xs_c_bench.c -lxenstore
 * Usage: xs_c_bench ITERATIONS PATH
 * Prints "read NS", "write NS", "rmw NS RETRIES" (total nanoseconds).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xenstore.h>

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s ITERATIONS PATH\n", argv[0]);
        return 2;
    }
    long n = atol(argv[1]);
    const char *path = argv[2];
    struct xs_handle *h = xs_open(0);
    if (!h) {
        perror("xs_open");
        return 1;
    }
    if (!xs_write(h, XBT_NULL, path, "0", 1)) {
        perror("xs_write");
        return 1;
    }

    long long t0 = now_ns();
    for (long i = 0; i < n; i++) {
        unsigned int len;
        char *v = xs_read(h, XBT_NULL, path, &len);
        if (!v) {
            perror("xs_read");
            return 1;
        }
        free(v);
    }
    long long t_read = now_ns() - t0;

    char buf[32];
    t0 = now_ns();
    for (long i = 0; i < n; i++) {
        int len = snprintf(buf, sizeof(buf), "%ld", i);
        if (!xs_write(h, XBT_NULL, path, buf, len)) {
            perror("xs_write");
            return 1;
        }
    }
    long long t_write = now_ns() - t0;

    long retries = 0;
    t0 = now_ns();
    for (long i = 0; i < n; i++) {
        for (;;) {
            xs_transaction_t t = xs_transaction_start(h);
            if (t == XBT_NULL) {
                perror("xs_transaction_start");
                return 1;
            }
            unsigned int len;
            char *v = xs_read(h, t, path, &len);
            if (!v) {
                perror("xs_read (transaction)");
                return 1;
            }
            long val = atol(v);
            free(v);
            int wl = snprintf(buf, sizeof(buf), "%ld", val + 1);
            if (!xs_write(h, t, path, buf, wl)) {
                perror("xs_write (transaction)");
                return 1;
            }
            if (xs_transaction_end(h, t, false))
                break;
            if (errno != EAGAIN) {
                perror("xs_transaction_end");
                return 1;
            }
            retries++;
        }
    }
    long long t_rmw = now_ns() - t0;

    printf("read %lld\nwrite %lld\nrmw %lld %ld\n", t_read, t_write, t_rmw, retries);
    xs_close(h);
    return 0;
}
