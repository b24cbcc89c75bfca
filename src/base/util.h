/* util — small helpers shared by every module: sizes, full-length I/O,
 * little-endian codecs, string building. No global state.
 */
#ifndef DIPOLE_UTIL_H
#define DIPOLE_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define ROUND_UP(x, a) ((((x) + (a) - 1) / (a)) * (a))

/* Parse "123", "4k", "1M", "2G", "1T" (binary units, optional "iB"/"B").
 * Returns 0 or -EINVAL/-ERANGE. */
int parse_size(const char *s, uint64_t *out);
/* Parse a decimal integer within [min,max]. 0 or -EINVAL/-ERANGE. */
int parse_int(const char *s, long min, long max, long *out);
/* Human size like "1.0 GiB" into buf. */
const char *fmt_size(uint64_t bytes, char *buf, size_t len);

/* Loop until all bytes are transferred. 0 on success, -errno on error,
 * -EPIPE when a stream ends early (read) */
int read_full(int fd, void *buf, size_t len);
int write_full(int fd, const void *buf, size_t len);
int pread_full(int fd, void *buf, size_t len, off_t off);
int pwrite_full(int fd, const void *buf, size_t len, off_t off);

struct iovec;
struct sockaddr_storage;
/* writev until every byte of iov[0..n) is written (iov is consumed). */
int writev_full(int fd, struct iovec *iov, int n);
/* The same on a socket, without SIGPIPE: a peer that went away is an error
 * return (-EPIPE), never a signal that kills the process. iov is consumed. */
int sendv_full(int fd, struct iovec *iov, int n);
/* "PREFIX: " then the formatted text into buf[len] (nothing if buf is
 * NULL or len 0): the shape of every protocol refusal's reason. */
void vmsg_prefixed(char *buf, size_t len, const char *prefix, const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));
/* "1.2.3.4:80" or "[fd00::1]:80" into a socket address. 0 or -EINVAL. */
int parse_sockaddr(const char *s, struct sockaddr_storage *ss, unsigned *sl);
/* Decode, in place, the octal escapes \NNN (000-377) that fstab(5) and
 * /proc/self/mountinfo (proc(5)) use for blanks and backslashes. */
void str_unescape_octal(char *s);

/* Little-endian and big-endian fixed-width codecs for on-disk/on-wire data. */
static inline void put_le32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static inline void put_le64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static inline uint32_t get_le32(const uint8_t *p) { uint32_t v = 0; for (int i = 3; i >= 0; i--) v = (v << 8) | p[i]; return v; }
static inline uint64_t get_le64(const uint8_t *p) { uint64_t v = 0; for (int i = 7; i >= 0; i--) v = (v << 8) | p[i]; return v; }
static inline void put_be16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void put_be32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (24 - 8 * i)); }
static inline void put_be64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (56 - 8 * i)); }
static inline uint16_t get_be16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t get_be32(const uint8_t *p) { uint32_t v = 0; for (int i = 0; i < 4; i++) v = (v << 8) | p[i]; return v; }
static inline uint64_t get_be64(const uint8_t *p) { uint64_t v = 0; for (int i = 0; i < 8; i++) v = (v << 8) | p[i]; return v; }

/* Growable string buffer; aborts on allocation failure (only used off the data path). */
struct strbuf { char *buf; size_t len, cap; };
void strbuf_printf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void strbuf_json_str(struct strbuf *sb, const char *s); /* appends a quoted JSON string */
void strbuf_free(struct strbuf *sb);

/* xmalloc family: abort with a message on OOM (config/CLI paths only). */
void *xcalloc(size_t n, size_t sz);
void *xrealloc(void *p, size_t sz);
char *xstrdup(const char *s);

uint32_t crc32c(const void *buf, size_t len);

/* Monotonic clock in nanoseconds. */
uint64_t now_ns(void);          /* monotonic */
uint64_t now_realtime_ns(void); /* wall clock, for timestamps kept on disk */

/* Testing hook: when the environment has DIPOLE_TEST_PAUSE=POINT=MS[,...]
 * naming `point`, sleep MS milliseconds (at most 60000) here. Integration
 * tests hold a race window open with it, so the race's outcome is checked
 * every run; unset (always, outside tests) it only reads the variable.
 * Points: "teardown" (peer.c: a lost link counts as down, the write policy
 * has not yet decided whether writes wait). */
void test_pause(const char *point);

#endif
