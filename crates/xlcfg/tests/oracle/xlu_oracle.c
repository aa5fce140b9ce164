/*
 * Test oracle for vusb-xlcfg: parses a file with the real libxlu
 * (libxlutil, as `xl create` does: xlu_cfg_readdata on the whole file)
 * and prints, as JSON, the return code and the value of each setting
 * named on the command line. Strings are printed as hex of their bytes
 * so that any byte survives; lists as JSON arrays.
 *
 * usage: xlu_oracle FILE NAME...
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <libxlutil.h>

static void put_value(XLU_Config *cfg, XLU_ConfigValue *v)
{
    if (xlu_cfg_value_type(v) == XLU_STRING) {
        char *s;
        xlu_cfg_value_get_string(cfg, v, &s, 1);
        putchar('"');
        for (; *s; s++) printf("%02x", (unsigned char)*s);
        putchar('"');
    } else {
        XLU_ConfigList *l;
        XLU_ConfigValue *e;
        xlu_cfg_value_get_list(cfg, v, &l, 1);
        putchar('[');
        for (int i = 0; (e = xlu_cfg_get_listitem2(l, i)); i++) {
            if (i) putchar(',');
            put_value(cfg, e);
        }
        putchar(']');
    }
}

int main(int argc, char **argv)
{
    static char buf[1 << 20];
    FILE *f, *devnull;
    size_t n;
    XLU_Config *cfg;
    int rc;

    if (argc < 2) return 2;
    f = fopen(argv[1], "rb");
    if (!f) return 2;
    n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    devnull = fopen("/dev/null", "w");
    cfg = xlu_cfg_init(devnull, argv[1]);
    rc = xlu_cfg_readdata(cfg, buf, (int)n);
    printf("{\"rc\":%d,\"settings\":{", rc);
    if (!rc) {
        int first = 1;
        for (int i = 2; i < argc; i++) {
            XLU_ConfigList *l;
            const char *s;
            int r = xlu_cfg_get_list(cfg, argv[i], &l, 0, 1);
            if (r == ESRCH) continue;
            printf("%s\"%s\":", first ? "" : ",", argv[i]);
            first = 0;
            if (r == 0) {
                XLU_ConfigValue *e;
                putchar('[');
                for (int j = 0; (e = xlu_cfg_get_listitem2(l, j)); j++) {
                    if (j) putchar(',');
                    put_value(cfg, e);
                }
                putchar(']');
            } else {
                xlu_cfg_get_string(cfg, argv[i], &s, 1);
                putchar('"');
                for (; *s; s++) printf("%02x", (unsigned char)*s);
                putchar('"');
            }
        }
    }
    printf("}}\n");
    xlu_cfg_destroy(cfg);
    return 0;
}
