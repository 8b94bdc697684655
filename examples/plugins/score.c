/* score: an urgency score for support text, from weighted keywords found in its JSON input's strings.
 *
 * Output: {"score": 0..100, "urgent": true|false, "hits": N}. Matching ignores case; the score is the sum
 * of the weights of every keyword occurrence, capped at 100; "urgent" means a score of 50 or more.
 * ABI v1, no imports.
 */
#include "awe_plugin.h"

static const struct {
    const char *word;
    uint32_t weight;
} KEYWORDS[] = {
    {"urgent", 40}, {"asap", 30}, {"outage", 30}, {"down", 20}, {"failing", 20},
    {"error", 15},  {"500", 15},  {"broken", 15}, {"!", 5},
};

static char lower(char c) { return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c; }

static int matches(const char *s, size_t n, const char *word) {
    size_t i = 0;
    for (; word[i]; i++)
        if (i >= n || lower(s[i]) != word[i]) return 0;
    return 1;
}

AWE_EXPORT("run") uint64_t run(const char *input, uint32_t len) {
    uint32_t score = 0, hits = 0;
    int in_string = 0;
    for (size_t i = 0; i < len; i++) {
        char c = input[i];
        if (c == '"') {
            in_string = !in_string;
            continue;
        }
        if (!in_string) continue;
        if (c == '\\') {
            i++; /* an escaped character is never part of a keyword */
            continue;
        }
        for (size_t k = 0; k < sizeof KEYWORDS / sizeof KEYWORDS[0]; k++) {
            if (matches(input + i, len - i, KEYWORDS[k].word)) {
                score += KEYWORDS[k].weight;
                hits++;
            }
        }
    }
    if (score > 100) score = 100;
    awe_buf out = {0};
    awe_puts(&out, "{\"score\":");
    awe_put_u32(&out, score);
    awe_puts(&out, score >= 50 ? ",\"urgent\":true" : ",\"urgent\":false");
    awe_puts(&out, ",\"hits\":");
    awe_put_u32(&out, hits);
    awe_puts(&out, "}");
    return awe_return(&out);
}
