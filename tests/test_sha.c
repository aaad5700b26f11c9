/* test_sha.c - SHA-256 (src/core/util.c): FIPS 180-4's examples, and the CPU's
 * SHA instructions (where this machine has them) against the portable
 * rounds on every length up to 1,000 bytes and on one of 10 MB. */
#include "test_util.h"

static int same(const uint8_t *p, size_t len)
{
    char a[65], b[65];
    hfc_sha256_hex(p, len, a);
    hfc_sha256_hex_portable(p, len, b);
    return !strcmp(a, b);
}

int main(void)
{
    static const struct {
        const char *msg, *hex;
    } known[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    for (size_t i = 0; i < sizeof known / sizeof *known; i++) {
        char a[65], b[65];
        const uint8_t *p = (const uint8_t *)known[i].msg;
        hfc_sha256_hex(p, strlen(known[i].msg), a);
        hfc_sha256_hex_portable(p, strlen(known[i].msg), b);
        check(!strcmp(a, known[i].hex) && !strcmp(b, known[i].hex),
              "sha256 of \"%s\" (%zu bytes) is %.16s...", known[i].msg, strlen(known[i].msg), a);
    }
    const size_t big = 10 << 20;
    uint8_t *buf = malloc(big);
    if (!buf)
        return 1;
    char hex[65];
    memset(buf, 'a', 1000000); /* FIPS 180-4's long example: full blocks */
    hfc_sha256_hex(buf, 1000000, hex);
    check(!strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
          "sha256 of a million 'a's is %.16s...", hex);
    uint32_t x = 12345;
    for (size_t i = 0; i < big; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (uint8_t)(x >> 24);
    }
    int bad = -1;
    for (size_t len = 0; len <= 1000 && bad < 0; len++)
        if (!same(buf + len % 7, len))
            bad = (int)len;
    check(bad < 0, "%s and portable SHA-256 agree on every length 0..1000%s",
          hfc_sha256_uses_cpu() ? "the CPU's SHA instructions" : "(no SHA instructions here:) the",
          bad < 0 ? "" : " (differ)");
    check(same(buf, big), "and on 10 MB");
    free(buf);
    return test_failures != 0;
}
