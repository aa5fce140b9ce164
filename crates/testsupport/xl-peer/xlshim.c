/*
 * xlshim.c - LD_PRELOAD shim that lets Debian's real `xl` / libxenlight 4.17
 * (and xen-init-dom0) run on a host WITHOUT a Xen hypervisor, talking to a
 * real xenstored (see ../xenstored-harness) over XENSTORED_PATH.
 *
 * It does three things:
 *
 * 1. libxenctrl: replaces the few xc_* entry points libxl reaches on the
 *    paths used by `xl usb*` (and by xen-init-dom0):
 *      xc_interface_open/close       dummy handle (no /dev/xen/privcmd)
 *      xc_domain_getinfolist         the "hypervisor's" domain list
 *      xc_domain_getinfo             same, legacy struct
 *      xc_flask_sid_to_context       -1 (no XSM), like a non-FLASK Xen
 *      xc_cpupool_getinfo/infofree   one pool (Pool-0), for xen-init-dom0
 *    The domain list comes from the file $XLSHIM_ROOT/domains, re-read when
 *    its mtime changes.  One domain per line:
 *        <domid> <pv|hvm|pvh> [uuid] [memkb] [dying] [shutdown] [paused]
 *    '#' starts a comment.  Without a uuid, domid N gets the fixed uuid
 *    00000000-0000-4000-8000-<N as 12 hex digits> (dom0: all zeros).
 *    If the file does not exist, XLSHIM_DOMAINS="0:pv,1:pv,2:hvm" is used;
 *    default: just dom0.
 *    Any other xc_* function goes to the real libxenctrl, which has no
 *    hypervisor: set XLSHIM_DEBUG=1 to see what was reached if xl crashes.
 *
 * 2. Path redirection: absolute paths under
 *        /sys/bus/usb   /var/lib/xen   /var/run/xen   /run/xen
 *    are rewritten to $XLSHIM_ROOT/<same path> (/run/xen -> /var/run/xen) in
 *    open/open64/openat/fopen/fopen64/opendir/stat/lstat/access/readlink/
 *    mkdir/rmdir/unlink/rename/realpath/connect(AF_UNIX)/bind(AF_UNIX).
 *    realpath() results are mapped back, so libxl stores
 *    "/sys/bus/usb/drivers/usbhid" in xenstore exactly as on a real host.
 *
 * 3. sysfs driver bind/unbind semantics for the fixture tree: a write of
 *    "<intf>" to .../drivers/<D>/bind creates the symlinks
 *        drivers/<D>/<intf> -> ../../devices/<intf>
 *        devices/<intf>/driver -> ../../drivers/<D>
 *    and a write to .../drivers/<D>/unbind (or devices/<intf>/driver/unbind)
 *    removes them, failing with ENODEV/EBUSY like the kernel.  Every
 *    bind/unbind is appended to $XLSHIM_ROOT/sysfs.log.
 *
 *    vusb adaptation: writes to $XLSHIM_ROOT/sys/bus/usb/.../bind|unbind
 *    (the fixture reached directly, vusb --sysfs-root $XLSHIM_ROOT/sys) get
 *    the same semantics, so vusb and xl can be compared on sysfs too.
 *
 * Environment:
 *   XLSHIM_ROOT    fake-host state dir (required for 2/3, default /tmp/xlshim)
 *   XLSHIM_DOMAINS fallback domain list (see above)
 *   XLSHIM_DEBUG   log intercepted calls to stderr
 *
 * Build: gcc -O2 -Wall -shared -fPIC -o xlshim.so xlshim.c -ldl
 *    (vusb adaptation: statx/fstatat launder their path pointer before the
 *    NULL test: glibc declares it nonnull, gcc dropped the test, and Rust's
 *    std probes statx(0, NULL, ...) after a failed stat — a segfault in
 *    vusb under the shim, seen when a device had been unplugged.)
 * Use:   LD_PRELOAD=xlshim.so XLSHIM_ROOT=... XENSTORED_PATH=... xl usb-list 1
 *
 * Struct layouts (xen_domctl_getdomaininfo / xc_dominfo_t, Xen 4.17, x86_64)
 * are reproduced below; the getdomaininfo layout was checked against
 * RELEASE-4.17.7 xen/include/public/domctl.h (size 112, handle@76).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

/* ------------------------------------------------------------------ */
/* Xen 4.17 ABI structures (x86_64)                                    */

#define XEN_DOMINF_dying     (1U << 0)
#define XEN_DOMINF_hvm_guest (1U << 1)
#define XEN_DOMINF_shutdown  (1U << 2)
#define XEN_DOMINF_paused    (1U << 3)
#define XEN_DOMINF_blocked   (1U << 4)
#define XEN_DOMINF_running   (1U << 5)
#define XEN_DOMINF_hap       (1U << 8)

struct shim_getdomaininfo {          /* = xc_domaininfo_t */
	uint16_t domain;
	uint16_t pad1;
	uint32_t flags;
	uint64_t tot_pages;
	uint64_t max_pages;
	uint64_t outstanding_pages;
	uint64_t shr_pages;
	uint64_t paged_pages;
	uint64_t shared_info_frame;
	uint64_t cpu_time;
	uint32_t nr_online_vcpus;
	uint32_t max_vcpu_id;
	uint32_t ssidref;
	uint8_t handle[16];
	uint32_t cpupool;
	uint8_t gpaddr_bits;
	uint8_t pad2[7];
	uint32_t emulation_flags;    /* struct xen_arch_domainconfig */
	uint32_t misc_flags;
};
_Static_assert(sizeof(struct shim_getdomaininfo) == 112, "getdomaininfo");
_Static_assert(__builtin_offsetof(struct shim_getdomaininfo, handle) == 76,
	       "handle");

struct shim_dominfo {                /* = xc_dominfo_t */
	uint32_t domid;
	uint32_t ssidref;
	unsigned int dying:1, crashed:1, shutdown:1,
		paused:1, blocked:1, running:1,
		hvm:1, debugged:1, xenstore:1, hap:1;
	unsigned int shutdown_reason;
	unsigned long nr_pages;
	unsigned long nr_outstanding_pages;
	unsigned long nr_shared_pages;
	unsigned long nr_paged_pages;
	unsigned long shared_info_frame;
	uint64_t cpu_time;
	unsigned long max_memkb;
	unsigned int nr_online_vcpus;
	unsigned int max_vcpu_id;
	uint8_t handle[16];
	unsigned int cpupool;
	uint8_t gpaddr_bits;
	uint32_t emulation_flags;
	uint32_t misc_flags;
};

struct shim_cpupoolinfo {            /* = xc_cpupoolinfo_t */
	uint32_t cpupool_id;
	uint32_t sched_id;
	uint32_t n_dom;
	uint8_t *cpumap;
};

/* ------------------------------------------------------------------ */
/* helpers                                                             */

static int dbg = -1;

static void dlog(const char *fmt, ...)
{
	va_list ap;

	if (dbg < 0)
		dbg = getenv("XLSHIM_DEBUG") != NULL;
	if (!dbg)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "[xlshim %d] ", (int)getpid());
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static const char *shim_root(void)
{
	const char *r = getenv("XLSHIM_ROOT");

	return (r && *r) ? r : "/tmp/xlshim";
}

#define REAL(name) \
	static __typeof__(name) *real_##name; \
	if (!real_##name) real_##name = dlsym(RTLD_NEXT, #name)

/* ------------------------------------------------------------------ */
/* path redirection                                                    */

static const struct {
	const char *from;
	const char *to;     /* relative to root */
} prefixes[] = {
	{ "/sys/bus/usb", "/sys/bus/usb" },
	{ "/var/lib/xen", "/var/lib/xen" },
	{ "/var/run/xen", "/var/run/xen" },
	{ "/run/xen",     "/var/run/xen" },
};

/* Returns path itself, or buf filled with the redirected path. */
static const char *mapp(const char *path, char *buf, size_t len)
{
	size_t i;

	if (!path || path[0] != '/')
		return path;
	for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		size_t n = strlen(prefixes[i].from);

		if (!strncmp(path, prefixes[i].from, n) &&
		    (path[n] == '/' || path[n] == '\0')) {
			snprintf(buf, len, "%s%s%s", shim_root(),
				 prefixes[i].to, path + n);
			dlog("map %s -> %s", path, buf);
			return buf;
		}
	}
	return path;
}

/* Undo mapp() on a resolved path (for realpath results). */
static void unmapp(char *path)
{
	const char *root = shim_root();
	char rr[PATH_MAX];
	size_t n;

	/* the root itself might contain symlinks */
	if (!realpath(root, rr)) {
		strncpy(rr, root, sizeof(rr) - 1);
		rr[sizeof(rr) - 1] = 0;
	}
	n = strlen(rr);
	if (!strncmp(path, rr, n) && path[n] == '/')
		memmove(path, path + n, strlen(path + n) + 1);
}

/* ---- fds opened on fixture bind/unbind files ---- */

#define MAXFD 1024
static char *ctlfd[MAXFD];  /* redirected path of a bind/unbind file */

static void note_ctl_fd(int fd, const char *mapped, const char *orig)
{
	char direct[PATH_MAX];
	const char *b;

	if (fd < 0 || fd >= MAXFD)
		return;
	if (mapped == orig) {
		/* vusb: a path straight into the fixture ($XLSHIM_ROOT/sys/bus/usb/...,
		 * given with --sysfs-root $XLSHIM_ROOT/sys) gets the same semantics. */
		snprintf(direct, sizeof(direct), "%s/sys/bus/usb/", shim_root());
		if (strncmp(orig, direct, strlen(direct)))
			return;
	} else if (strncmp(orig, "/sys/bus/usb/", 13))
		return;
	b = strrchr(orig, '/');
	if (!b || (strcmp(b, "/bind") && strcmp(b, "/unbind")))
		return;
	free(ctlfd[fd]);
	ctlfd[fd] = strdup(mapped);
}

static void sysfs_log(const char *fmt, ...)
{
	char p[PATH_MAX];
	va_list ap;
	FILE *f;
	REAL(fopen);

	snprintf(p, sizeof(p), "%s/sysfs.log", shim_root());
	f = real_fopen(p, "a");
	if (!f)
		return;
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
	fclose(f);
}

/* Perform a sysfs bind/unbind on the fixture.  ctl = redirected path of
 * the bind/unbind file, arg = interface name written to it. */
static int sysfs_ctl(const char *ctl, const char *arg0, size_t len)
{
	char arg[256], drvdir[PATH_MAX], tmp[PATH_MAX], usb[PATH_MAX];
	char devp[PATH_MAX], drvlink[PATH_MAX], link2[PATH_MAX], cur[PATH_MAX];
	const char *drv, *op;
	char *slash;
	struct stat st;
	ssize_t r;
	REAL(symlink);
	REAL(unlink);
	REAL(lstat);
	REAL(readlink);

	if (len >= sizeof(arg))
		len = sizeof(arg) - 1;
	memcpy(arg, arg0, len);
	arg[len] = 0;
	while (len && (arg[len - 1] == '\n' || arg[len - 1] == ' '))
		arg[--len] = 0;

	snprintf(usb, sizeof(usb), "%s/sys/bus/usb", shim_root());
	/* directory of the driver: resolve the control file's directory */
	snprintf(tmp, sizeof(tmp), "%s", ctl);
	slash = strrchr(tmp, '/');
	op = slash + 1;
	*slash = 0;
	if (!realpath(tmp, drvdir)) {
		errno = ENODEV;
		return -1;
	}
	drv = strrchr(drvdir, '/') + 1;

	snprintf(devp, sizeof(devp), "%s/devices/%s", usb, arg);
	snprintf(drvlink, sizeof(drvlink), "%s/driver", devp);
	snprintf(link2, sizeof(link2), "%s/%s", drvdir, arg);

	if (real_lstat(devp, &st)) {
		sysfs_log("%s %s %s -> ENODEV", op, drv, arg);
		errno = ENODEV;
		return -1;
	}
	r = real_readlink(drvlink, cur, sizeof(cur) - 1);
	if (r >= 0)
		cur[r] = 0;

	if (!strcmp(op, "bind")) {
		if (r >= 0) {
			sysfs_log("bind %s %s -> EBUSY (bound to %s)",
				  drv, arg, cur);
			errno = EBUSY;
			return -1;
		}
		snprintf(tmp, sizeof(tmp), "../../devices/%s", arg);
		if (real_symlink(tmp, link2))
			return -1;
		snprintf(tmp, sizeof(tmp), "../../drivers/%s", drv);
		if (real_symlink(tmp, drvlink))
			return -1;
		sysfs_log("bind %s %s", drv, arg);
		return 0;
	}
	/* unbind */
	if (r < 0 || strcmp(strrchr(cur, '/') ? strrchr(cur, '/') + 1 : cur,
			    drv)) {
		sysfs_log("unbind %s %s -> ENODEV (not bound)", drv, arg);
		errno = ENODEV;
		return -1;
	}
	real_unlink(drvlink);
	real_unlink(link2);
	sysfs_log("unbind %s %s", drv, arg);
	return 0;
}

/* ---- intercepted libc functions ---- */

static mode_t va_mode(int flags, va_list ap)
{
	return (flags & (O_CREAT | O_TMPFILE)) ? va_arg(ap, mode_t) : 0;
}

EXPORT int open(const char *path, int flags, ...)
{
	char b[PATH_MAX];
	const char *m = mapp(path, b, sizeof(b));
	va_list ap;
	mode_t mode;
	int fd;
	REAL(open);

	va_start(ap, flags);
	mode = va_mode(flags, ap);
	va_end(ap);
	fd = real_open(m, flags, mode);
	note_ctl_fd(fd, m, path);
	return fd;
}

EXPORT int open64(const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = va_mode(flags, ap);
	va_end(ap);
	return open(path, flags, mode);
}

EXPORT int __open_2(const char *path, int flags)
{
	return open(path, flags, 0);
}

EXPORT int __open64_2(const char *path, int flags)
{
	return open(path, flags, 0);
}

EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
	char b[PATH_MAX];
	const char *m = mapp(path, b, sizeof(b));
	va_list ap;
	mode_t mode;
	int fd;
	REAL(openat);

	va_start(ap, flags);
	mode = va_mode(flags, ap);
	va_end(ap);
	fd = real_openat(dirfd, m, flags, mode);
	note_ctl_fd(fd, m, path);
	return fd;
}

EXPORT int openat64(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = va_mode(flags, ap);
	va_end(ap);
	return openat(dirfd, path, flags, mode);
}

EXPORT FILE *fopen(const char *path, const char *mode)
{
	char b[PATH_MAX];
	REAL(fopen);
	return real_fopen(mapp(path, b, sizeof(b)), mode);
}

EXPORT FILE *fopen64(const char *path, const char *mode)
{
	return fopen(path, mode);
}

EXPORT DIR *opendir(const char *path)
{
	char b[PATH_MAX];
	REAL(opendir);
	return real_opendir(mapp(path, b, sizeof(b)));
}

EXPORT int stat(const char *path, struct stat *st)
{
	char b[PATH_MAX];
	REAL(stat);
	return real_stat(mapp(path, b, sizeof(b)), st);
}

EXPORT int lstat(const char *path, struct stat *st)
{
	char b[PATH_MAX];
	REAL(lstat);
	return real_lstat(mapp(path, b, sizeof(b)), st);
}

EXPORT int stat64(const char *path, struct stat64 *st)
{
	char b[PATH_MAX];
	REAL(stat64);
	return real_stat64(mapp(path, b, sizeof(b)), st);
}

EXPORT int lstat64(const char *path, struct stat64 *st)
{
	char b[PATH_MAX];
	REAL(lstat64);
	return real_lstat64(mapp(path, b, sizeof(b)), st);
}

EXPORT int access(const char *path, int mode)
{
	char b[PATH_MAX];
	REAL(access);
	return real_access(mapp(path, b, sizeof(b)), mode);
}

EXPORT ssize_t readlink(const char *path, char *buf, size_t len)
{
	char b[PATH_MAX];
	REAL(readlink);
	return real_readlink(mapp(path, b, sizeof(b)), buf, len);
}

EXPORT int mkdir(const char *path, mode_t mode)
{
	char b[PATH_MAX];
	REAL(mkdir);
	return real_mkdir(mapp(path, b, sizeof(b)), mode);
}

EXPORT int rmdir(const char *path)
{
	char b[PATH_MAX];
	REAL(rmdir);
	return real_rmdir(mapp(path, b, sizeof(b)));
}

EXPORT int unlink(const char *path)
{
	char b[PATH_MAX];
	REAL(unlink);
	return real_unlink(mapp(path, b, sizeof(b)));
}

EXPORT int rename(const char *from, const char *to)
{
	char b1[PATH_MAX], b2[PATH_MAX];
	REAL(rename);
	return real_rename(mapp(from, b1, sizeof(b1)), mapp(to, b2, sizeof(b2)));
}

EXPORT char *realpath(const char *path, char *resolved)
{
	char b[PATH_MAX];
	const char *m = mapp(path, b, sizeof(b));
	char *r;
	REAL(realpath);

	r = real_realpath(m, resolved);
	if (r && m != path)
		unmapp(r);
	return r;
}


/* statx/fstatat: Rust's std and newer glibc callers stat through these. */
struct statx;
EXPORT int statx(int dirfd, const char *path, int flags, unsigned int mask,
		 struct statx *stx)
{
	char b[PATH_MAX];
	static int (*real_statx)(int, const char *, int, unsigned int, struct statx *);
	if (!real_statx)
		real_statx = dlsym(RTLD_NEXT, "statx");
	if (!real_statx) {
		errno = ENOSYS;
		return -1;
	}
	/* glibc declares path nonnull, so gcc drops a plain NULL test even with
	 * -fno-delete-null-pointer-checks; launder the pointer first (Rust's
	 * std probes statx(0, NULL, ...)). */
	const char *p = path;
	__asm__("" : "+r"(p));
	return real_statx(dirfd, p && p[0] == '/' ? mapp(p, b, sizeof(b)) : p,
			  flags, mask, stx);
}

EXPORT int fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
	char b[PATH_MAX];
	static int (*real_fstatat)(int, const char *, struct stat *, int);
	if (!real_fstatat)
		real_fstatat = dlsym(RTLD_NEXT, "fstatat");
	const char *p = path;
	__asm__("" : "+r"(p));
	return real_fstatat(dirfd, p && p[0] == '/' ? mapp(p, b, sizeof(b)) : p,
			    st, flags);
}

EXPORT int fstatat64(int dirfd, const char *path, struct stat64 *st, int flags)
{
	char b[PATH_MAX];
	static int (*real_fstatat64)(int, const char *, struct stat64 *, int);
	if (!real_fstatat64)
		real_fstatat64 = dlsym(RTLD_NEXT, "fstatat64");
	const char *p = path;
	__asm__("" : "+r"(p));
	return real_fstatat64(dirfd, p && p[0] == '/' ? mapp(p, b, sizeof(b)) : p,
			      st, flags);
}

static const struct sockaddr *map_sun(const struct sockaddr *sa,
				      socklen_t *len, struct sockaddr_un *tmp)
{
	const struct sockaddr_un *su = (const void *)sa;
	char b[PATH_MAX];
	const char *m;

	if (!sa || sa->sa_family != AF_UNIX || *len <= sizeof(sa_family_t) ||
	    su->sun_path[0] != '/')
		return sa;
	m = mapp(su->sun_path, b, sizeof(b));
	if (m == su->sun_path || strlen(m) >= sizeof(tmp->sun_path))
		return sa;
	memset(tmp, 0, sizeof(*tmp));
	tmp->sun_family = AF_UNIX;
	strcpy(tmp->sun_path, m);
	*len = offsetof(struct sockaddr_un, sun_path) + strlen(m) + 1;
	return (const struct sockaddr *)tmp;
}

EXPORT int connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	struct sockaddr_un tmp;
	REAL(connect);
	sa = map_sun(sa, &len, &tmp);
	return real_connect(fd, sa, len);
}

EXPORT int bind(int fd, const struct sockaddr *sa, socklen_t len)
{
	struct sockaddr_un tmp;
	REAL(bind);
	sa = map_sun(sa, &len, &tmp);
	return real_bind(fd, sa, len);
}

EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
	REAL(write);
	if (fd >= 0 && fd < MAXFD && ctlfd[fd]) {
		if (sysfs_ctl(ctlfd[fd], buf, n))
			return -1;
		return n;
	}
	return real_write(fd, buf, n);
}

EXPORT int close(int fd)
{
	REAL(close);
	if (fd >= 0 && fd < MAXFD && ctlfd[fd]) {
		free(ctlfd[fd]);
		ctlfd[fd] = NULL;
	}
	return real_close(fd);
}

/* ------------------------------------------------------------------ */
/* domain table                                                        */

#define MAXDOM 4096
struct dom {
	uint32_t domid;
	int hvm;
	uint8_t uuid[16];
	uint64_t memkb;
	int dying, shutdown, paused;
};
static struct dom doms[MAXDOM];
static int ndoms = -1;
static struct timespec doms_mtime;

static void default_uuid(uint32_t domid, uint8_t *u)
{
	memset(u, 0, 16);
	if (!domid)
		return;
	/* 00000000-0000-4000-8000-0000000000NN */
	u[6] = 0x40;
	u[8] = 0x80;
	u[12] = domid >> 24;
	u[13] = domid >> 16;
	u[14] = domid >> 8;
	u[15] = domid;
}

static int parse_uuid(const char *s, uint8_t *u)
{
	int i = 0;

	while (*s && i < 16) {
		unsigned int x;

		if (*s == '-') {
			s++;
			continue;
		}
		if (sscanf(s, "%2x", &x) != 1)
			return -1;
		u[i++] = x;
		s += 2;
	}
	return i == 16 ? 0 : -1;
}

static int dom_cmp(const void *a, const void *b)
{
	const struct dom *x = a, *y = b;
	return x->domid < y->domid ? -1 : x->domid > y->domid;
}

static void add_dom(uint32_t domid, const char *type)
{
	struct dom *d;

	if (ndoms >= MAXDOM)
		return;
	d = &doms[ndoms++];
	memset(d, 0, sizeof(*d));
	d->domid = domid;
	d->hvm = type && (!strcmp(type, "hvm") || !strcmp(type, "pvh"));
	d->memkb = domid ? 1048576 : 4194304;
	default_uuid(domid, d->uuid);
}

static void load_doms(void)
{
	char p[PATH_MAX], line[512];
	struct stat st;
	FILE *f;
	REAL(fopen);
	REAL(stat);

	snprintf(p, sizeof(p), "%s/domains", shim_root());
	if (!real_stat(p, &st)) {
		if (ndoms >= 0 &&
		    st.st_mtim.tv_sec == doms_mtime.tv_sec &&
		    st.st_mtim.tv_nsec == doms_mtime.tv_nsec)
			return;
		f = real_fopen(p, "r");
		if (!f)
			goto env;
		ndoms = 0;
		doms_mtime = st.st_mtim;
		while (fgets(line, sizeof(line), f)) {
			char *tok, *save = NULL, *c = strchr(line, '#');
			struct dom *d;

			if (c)
				*c = 0;
			tok = strtok_r(line, " \t\r\n", &save);
			if (!tok)
				continue;
			add_dom(strtoul(tok, NULL, 10), NULL);
			d = &doms[ndoms - 1];
			while ((tok = strtok_r(NULL, " \t\r\n", &save))) {
				if (!strcmp(tok, "pv"))
					d->hvm = 0;
				else if (!strcmp(tok, "hvm") ||
					 !strcmp(tok, "pvh"))
					d->hvm = 1;
				else if (!strcmp(tok, "dying"))
					d->dying = 1;
				else if (!strcmp(tok, "shutdown"))
					d->shutdown = 1;
				else if (!strcmp(tok, "paused"))
					d->paused = 1;
				else if (strlen(tok) == 36)
					parse_uuid(tok, d->uuid);
				else
					d->memkb = strtoull(tok, NULL, 10);
			}
		}
		fclose(f);
		goto sort;
	}
env:
	if (ndoms >= 0 && doms_mtime.tv_sec == -1)
		return;
	doms_mtime.tv_sec = -1;
	ndoms = 0;
	{
		const char *e = getenv("XLSHIM_DOMAINS");
		char *s, *tok, *save = NULL;

		if (!e || !*e) {
			add_dom(0, "pv");
			goto sort;
		}
		s = strdup(e);
		for (tok = strtok_r(s, ",", &save); tok;
		     tok = strtok_r(NULL, ",", &save)) {
			char *colon = strchr(tok, ':');
			add_dom(strtoul(tok, NULL, 10), colon ? colon + 1 : "pv");
		}
		free(s);
	}
sort:
	qsort(doms, ndoms, sizeof(doms[0]), dom_cmp);
}

/* ------------------------------------------------------------------ */
/* libxenctrl replacements                                             */

static char dummy_xch[256];

EXPORT void *xc_interface_open(void *logger, void *dombuild_logger,
			       unsigned open_flags)
{
	dlog("xc_interface_open");
	return dummy_xch;
}

EXPORT int xc_interface_close(void *xch)
{
	dlog("xc_interface_close");
	return 0;
}

static void fill_info(const struct dom *d, struct shim_getdomaininfo *i)
{
	memset(i, 0, sizeof(*i));
	i->domain = d->domid;
	i->flags = XEN_DOMINF_running;
	if (d->hvm)
		i->flags |= XEN_DOMINF_hvm_guest | XEN_DOMINF_hap;
	if (d->dying)
		i->flags |= XEN_DOMINF_dying;
	if (d->shutdown)
		i->flags |= XEN_DOMINF_shutdown;
	if (d->paused)
		i->flags = (i->flags & ~XEN_DOMINF_running) | XEN_DOMINF_paused;
	i->tot_pages = d->memkb / 4;
	i->max_pages = d->memkb / 4 + 256;
	i->shared_info_frame = 0x1000 + d->domid;
	i->cpu_time = 1000000000ull * (d->domid + 1);
	i->nr_online_vcpus = 1;
	i->max_vcpu_id = 0;
	memcpy(i->handle, d->uuid, 16);
	i->cpupool = 0;
	i->gpaddr_bits = d->hvm ? 48 : 0;
	i->emulation_flags = d->hvm ? 0x7ff : 0;
}

EXPORT int xc_domain_getinfolist(void *xch, uint32_t first,
				 unsigned int max,
				 struct shim_getdomaininfo *info)
{
	int i, n = 0;

	load_doms();
	for (i = 0; i < ndoms && (unsigned)n < max; i++) {
		if (doms[i].domid < first)
			continue;
		fill_info(&doms[i], &info[n++]);
	}
	dlog("xc_domain_getinfolist(%u, %u) -> %d", first, max, n);
	return n;
}

EXPORT int xc_domain_getinfo(void *xch, uint32_t first, unsigned int max,
			     struct shim_dominfo *info)
{
	int i, n = 0;

	load_doms();
	for (i = 0; i < ndoms && (unsigned)n < max; i++) {
		struct shim_getdomaininfo g;
		struct shim_dominfo *o = &info[n];

		if (doms[i].domid < first)
			continue;
		fill_info(&doms[i], &g);
		memset(o, 0, sizeof(*o));
		o->domid = g.domain;
		o->dying = doms[i].dying;
		o->shutdown = doms[i].shutdown;
		o->paused = doms[i].paused;
		o->running = !doms[i].paused;
		o->hvm = doms[i].hvm;
		o->hap = doms[i].hvm;
		o->nr_pages = g.tot_pages;
		o->shared_info_frame = g.shared_info_frame;
		o->cpu_time = g.cpu_time;
		o->max_memkb = g.max_pages * 4;
		o->nr_online_vcpus = 1;
		memcpy(o->handle, g.handle, 16);
		o->gpaddr_bits = g.gpaddr_bits;
		o->emulation_flags = g.emulation_flags;
		n++;
	}
	dlog("xc_domain_getinfo(%u, %u) -> %d", first, max, n);
	return n;
}

EXPORT int xc_flask_sid_to_context(void *xch, int sid, char *buf,
				   uint32_t size)
{
	errno = ENOSYS;
	return -1;
}

EXPORT struct shim_cpupoolinfo *xc_cpupool_getinfo(void *xch,
						   uint32_t poolid)
{
	struct shim_cpupoolinfo *i;

	dlog("xc_cpupool_getinfo(%u)", poolid);
	if (poolid != 0)
		return NULL;
	i = calloc(1, sizeof(*i));
	i->cpumap = calloc(1, 8);
	i->cpumap[0] = 0xff;
	i->n_dom = 1;
	return i;
}

EXPORT void xc_cpupool_infofree(void *xch, struct shim_cpupoolinfo *i)
{
	if (!i)
		return;
	free(i->cpumap);
	free(i);
}

/* XENVER_* (xen/include/public/version.h) */
EXPORT int xc_version(void *xch, int cmd, void *arg)
{
	const char *cl = getenv("XLSHIM_XEN_CMDLINE");

	dlog("xc_version(%d)", cmd);
	switch (cmd) {
	case 0: /* XENVER_version */
		return (4 << 16) | 17;
	case 1: /* XENVER_extraversion: char[16] */
		snprintf(arg, 16, ".7");
		return 0;
	case 2: /* XENVER_compile_info */
		memset(arg, 0, 64 + 16 + 32 + 32);
		snprintf(arg, 64, "gcc (Debian 12.2.0-14) 12.2.0");
		snprintf((char *)arg + 64, 16, "xlshim");
		snprintf((char *)arg + 80, 32, "localdomain");
		snprintf((char *)arg + 112, 32, "Thu Jan  1 00:00:00 UTC 1970");
		return 0;
	case 3: /* XENVER_capabilities: char[1024] */
		snprintf(arg, 1024, "xen-3.0-x86_64 hvm-3.0-x86_32 "
			 "hvm-3.0-x86_32p hvm-3.0-x86_64");
		return 0;
	case 4: /* XENVER_changeset: char[64] */
		snprintf(arg, 64, "xlshim (no hypervisor)");
		return 0;
	case 5: /* XENVER_platform_parameters */
		*(uint64_t *)arg = 0xffff800000000000ull;
		return 0;
	case 7: /* XENVER_pagesize */
		return 4096;
	case 9: /* XENVER_commandline: char[1024] */
		snprintf(arg, 1024, "%s", cl ? cl : "placeholder");
		return 0;
	case 10: /* XENVER_build_id */
		return -ENODATA;
	default:
		errno = ENOSYS;
		return -ENOSYS;
	}
}

EXPORT int xc_get_max_cpus(void *xch)
{
	long n = sysconf(_SC_NPROCESSORS_CONF);
	return n > 0 ? (int)n : 1;
}

EXPORT int xc_get_online_cpus(void *xch)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

EXPORT int xc_get_max_nodes(void *xch)
{
	return 1;
}

struct shim_physinfo {               /* = xc_physinfo_t (xen_sysctl_physinfo) */
	uint32_t threads_per_core;
	uint32_t cores_per_socket;
	uint32_t nr_cpus;
	uint32_t max_cpu_id;
	uint32_t nr_nodes;
	uint32_t max_node_id;
	uint32_t cpu_khz;
	uint32_t capabilities;
	uint32_t arch_capabilities;
	uint32_t pad;
	uint64_t total_pages;
	uint64_t free_pages;
	uint64_t scrub_pages;
	uint64_t outstanding_pages;
	uint64_t max_mfn;
	uint32_t hw_cap[8];
};

/* Only needed by `xl create -n` (dry run) and friends, not by xl usb*. */
EXPORT int xc_physinfo(void *xch, struct shim_physinfo *p)
{
	int n = xc_get_online_cpus(xch);

	dlog("xc_physinfo");
	memset(p, 0, sizeof(*p));
	p->threads_per_core = 1;
	p->cores_per_socket = n;
	p->nr_cpus = n;
	p->max_cpu_id = n - 1;
	p->nr_nodes = 1;
	p->cpu_khz = 2000000;
	p->capabilities = 0x1f; /* hvm pv directio hap shadow */
	p->total_pages = 16ull << 18;  /* 16 GiB */
	p->free_pages = 8ull << 18;
	p->max_mfn = (16ull << 18) - 1;
	return 0;
}

EXPORT long xc_sharing_freed_pages(void *xch)
{
	errno = ENOSYS;
	return -1;
}

EXPORT long xc_sharing_used_frames(void *xch)
{
	errno = ENOSYS;
	return -1;
}
