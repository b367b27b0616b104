// Counts the heap allocations of the process it is preloaded into (LD_PRELOAD), for
// AllocationTests: every malloc, calloc, realloc and aligned allocation, and every free, counted
// with one relaxed atomic add each and passed on to glibc's own functions. On SIGURG (which Baton
// does not use, and whose default action is to ignore it) it writes "<dumps> <allocations>
// <frees>\n" to the file named by BATON_MALLOC_COUNTS, at its start, in fixed-width fields, so a
// test reads the counts at two moments and divides the difference by the requests in between.
//
// Why by hand: swift-nio's allocation counter builds a whole test program around the code it
// measures; here the subject is a node process as deployed, under requests from outside.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static atomic_ulong allocations;
static atomic_ulong frees;
static atomic_ulong dumps;
static int output = -1;

static inline void counted(void) { atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed); }

void *malloc(size_t size) { counted(); return __libc_malloc(size); }
void *calloc(size_t count, size_t size) { counted(); return __libc_calloc(count, size); }
void *realloc(void *pointer, size_t size) { counted(); return __libc_realloc(pointer, size); }
void *memalign(size_t alignment, size_t size) { counted(); return __libc_memalign(alignment, size); }
void *aligned_alloc(size_t alignment, size_t size) { counted(); return __libc_memalign(alignment, size); }
int posix_memalign(void **result, size_t alignment, size_t size) {
    counted();
    void *p = __libc_memalign(alignment, size);
    if (p == NULL) return ENOMEM;
    *result = p;
    return 0;
}
void free(void *pointer) {
    if (pointer != NULL) atomic_fetch_add_explicit(&frees, 1, memory_order_relaxed);
    __libc_free(pointer);
}

/// Writes `value` as 20 decimal digits (async-signal-safe: no stdio).
static void digits(char *to, unsigned long value) {
    for (int i = 19; i >= 0; i--) {
        to[i] = (char)('0' + value % 10);
        value /= 10;
    }
}

static void dump(int signal) {
    (void)signal;
    int saved = errno;
    char line[63];
    unsigned long n = atomic_fetch_add(&dumps, 1) + 1;
    digits(line, n);
    line[20] = ' ';
    digits(line + 21, atomic_load(&allocations));
    line[41] = ' ';
    digits(line + 42, atomic_load(&frees));
    line[62] = '\n';
    if (output >= 0) (void)!pwrite(output, line, sizeof line, 0);
    errno = saved;
}

__attribute__((constructor)) static void start(void) {
    const char *path = getenv("BATON_MALLOC_COUNTS");
    if (path == NULL) return;
    output = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = dump;
    action.sa_flags = SA_RESTART;
    sigaction(SIGURG, &action, NULL);
}
