/* redact: replaces e-mail addresses and phone numbers in every string of its JSON input.
 *
 * Output: {"value": <the input, strings redacted>, "redacted": N}. An e-mail address becomes "[email]",
 * a phone number (7 to 15 digits, optionally led by + and separated by spaces, dashes, dots or
 * parentheses) becomes "[phone]". Everything outside strings is copied as it is. ABI v1, no imports.
 */
#include "awe_plugin.h"

static int is_local(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '%' || c == '+' || c == '-';
}

static int is_domain(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
}

static int is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* The length of the e-mail address starting at s[0], or 0. */
static size_t email_at(const char *s, size_t n) {
    size_t j = 0;
    while (j < n && is_local(s[j])) j++;
    if (j == 0 || j >= n || s[j] != '@') return 0;
    size_t k = j + 1;
    while (k < n && is_domain(s[k])) k++;
    while (k > j + 1 && (s[k - 1] == '.' || s[k - 1] == '-')) k--;
    size_t dot = 0;
    for (size_t d = j + 1; d < k; d++)
        if (s[d] == '.') dot = d;
    if (!dot || dot == j + 1 || k - dot - 1 < 2) return 0;
    for (size_t t = dot + 1; t < k; t++)
        if (!is_alpha(s[t])) return 0;
    return k;
}

/* The length of the phone number starting at s[0], or 0. */
static size_t phone_at(const char *s, size_t n) {
    if (!(s[0] == '+' || s[0] == '(' || is_digit(s[0]))) return 0;
    size_t j = 0, digits = 0, last = 0;
    while (j < n && (is_digit(s[j]) || s[j] == ' ' || s[j] == '-' || s[j] == '.' || s[j] == '(' || s[j] == ')' ||
                     (j == 0 && s[j] == '+'))) {
        if (is_digit(s[j])) {
            digits++;
            last = j + 1;
        }
        j++;
    }
    return digits >= 7 && digits <= 15 ? last : 0;
}

/* Copies the inside of one JSON string, redacted; returns how many things were redacted. */
static uint32_t redact(awe_buf *out, const char *s, size_t n) {
    uint32_t count = 0;
    size_t i = 0;
    while (i < n) {
        int boundary = i == 0 || !is_local(s[i - 1]);
        size_t m;
        if (s[i] == '\\') { /* an escape is copied whole: \uXXXX is six bytes, the others two */
            size_t len = (i + 1 < n && s[i + 1] == 'u') ? 6 : 2;
            if (i + len > n) len = n - i;
            awe_put(out, s + i, len);
            i += len;
        } else if (boundary && (m = email_at(s + i, n - i))) {
            awe_puts(out, "[email]");
            i += m;
            count++;
        } else if ((i == 0 || !is_digit(s[i - 1])) && (m = phone_at(s + i, n - i))) {
            awe_puts(out, "[phone]");
            i += m;
            count++;
        } else {
            awe_put(out, s + i, 1);
            i++;
        }
    }
    return count;
}

AWE_EXPORT("run") uint64_t run(const char *input, uint32_t len) {
    awe_buf out = {0};
    uint32_t count = 0;
    awe_puts(&out, "{\"value\":");
    size_t i = 0;
    while (i < len) {
        if (input[i] != '"') {
            awe_put(&out, input + i, 1);
            i++;
            continue;
        }
        size_t end = i + 1; /* find the closing quote, stepping over escapes */
        while (end < len && input[end] != '"') end += input[end] == '\\' ? 2 : 1;
        if (end > len) end = len;
        awe_put(&out, "\"", 1);
        count += redact(&out, input + i + 1, end - i - 1);
        awe_put(&out, "\"", 1);
        i = end + 1;
    }
    awe_puts(&out, ",\"redacted\":");
    awe_put_u32(&out, count);
    awe_puts(&out, "}");
    return awe_return(&out);
}
