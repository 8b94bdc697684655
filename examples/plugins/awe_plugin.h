/* awe_plugin.h: the plugin ABI v1 (docs/plugins.md) for C compiled to wasm32 without a libc.
 *
 * Gives a plugin the `alloc` export the host calls, a bump allocator that grows linear memory, an output
 * buffer, and `awe_return`, which packs the output's address and length into run's i64 result.
 * The instance lives for one call, so nothing is ever freed.
 */
#ifndef AWE_PLUGIN_H
#define AWE_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#define AWE_EXPORT(name) __attribute__((export_name(name)))

extern unsigned char __heap_base; /* set by wasm-ld: the first byte after the stack and static data */
static uintptr_t awe_heap;

static void *awe_alloc(size_t size) {
    if (!awe_heap) awe_heap = (uintptr_t)&__heap_base;
    uintptr_t ptr = (awe_heap + 7) & ~(uintptr_t)7;
    uintptr_t end = ptr + size;
    uintptr_t have = __builtin_wasm_memory_size(0) * 65536;
    if (end > have) {
        /* A grow the host's memory limit denies answers -1: trap, and the host reports the memory limit. */
        if (__builtin_wasm_memory_grow(0, (end - have + 65535) / 65536) == (size_t)-1) __builtin_trap();
    }
    awe_heap = end;
    return (void *)ptr;
}

AWE_EXPORT("alloc") uint32_t alloc(uint32_t len) { return (uint32_t)(uintptr_t)awe_alloc(len); }

/* clang lowers struct copies and some loops to these calls; without a libc, the plugin provides them. */
void *memcpy(void *dst, const void *src, size_t n) {
    unsigned char *d = dst;
    const unsigned char *s = src;
    while (n--) *d++ = *s++;
    return dst;
}

void *memset(void *dst, int c, size_t n) {
    unsigned char *d = dst;
    while (n--) *d++ = (unsigned char)c;
    return dst;
}

typedef struct {
    char *data;
    size_t len, cap;
} awe_buf;

static void awe_put(awe_buf *b, const char *s, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + n) cap *= 2;
        char *data = awe_alloc(cap);
        memcpy(data, b->data, b->len);
        b->data = data;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

static size_t awe_strlen(const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    return n;
}

static void awe_puts(awe_buf *b, const char *s) { awe_put(b, s, awe_strlen(s)); }

static void awe_put_u32(awe_buf *b, uint32_t n) {
    char digits[10];
    int i = 10;
    do {
        digits[--i] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    awe_put(b, digits + i, (size_t)(10 - i));
}

/* run's result: the output's address in the high 32 bits, its length in the low 32 bits. */
static uint64_t awe_return(const awe_buf *b) {
    return ((uint64_t)(uintptr_t)b->data << 32) | (uint64_t)b->len;
}

#endif
