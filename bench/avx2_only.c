/* bench/avx2_only.c - a peer that picks its kernels by CPUID (ONNX Runtime's
 * MLAS, which has no setting for it) sees a CPU without AVX-512.
 *
 *   LD_PRELOAD=build/avx2_only.so node bench/ort_run.js ...
 *
 * `bench/run --zoo --isa avx2` holds PyTorch to AVX2 by its own settings;
 * this holds ONNX Runtime there too, as a CPU without AVX-512 would. Linux's
 * CPUID faulting (arch_prctl ARCH_SET_CPUID, where /proc/cpuinfo lists
 * cpuid_fault) makes every CPUID instruction of the process trap; the
 * SIGSEGV handler below runs the real one (faulting off for that moment)
 * and clears the AVX-512 feature bits before the program sees them. Set up
 * before main, so every thread the program starts inherits it. Faults that
 * are not a CPUID instruction go to the default action (a crash, as they
 * would have). On a CPU without CPUID faulting the constructor prints one
 * line and exits 3: a run that would silently keep AVX-512 is refused.
 *
 * Only bench/run uses this; it is no part of hfc-eval. */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <cpuid.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

static int set_cpuid_faulting(int on)
{
    return (int)syscall(SYS_arch_prctl, ARCH_SET_CPUID, on ? 0 : 1);
}

static void on_segv(int sig, siginfo_t *si, void *ctx_)
{
    (void)si;
    ucontext_t *ctx = ctx_;
    greg_t *g = ctx->uc_mcontext.gregs;
    const uint8_t *ip = (const uint8_t *)g[REG_RIP];
    if (ip[0] != 0x0f || ip[1] != 0xa2) { /* not CPUID: what would have happened */
        signal(sig, SIG_DFL);
        return;
    }
    unsigned leaf = (unsigned)g[REG_RAX], sub = (unsigned)g[REG_RCX], a, b, c, d;
    set_cpuid_faulting(0);
    __cpuid_count(leaf, sub, a, b, c, d);
    set_cpuid_faulting(1);
    if (leaf == 7 && sub == 0) {
        /* EBX: AVX512F 16, DQ 17, IFMA 21, PF 26, ER 27, CD 28, BW 30, VL 31 */
        b &= ~(1u << 16 | 1u << 17 | 1u << 21 | 1u << 26 | 1u << 27 | 1u << 28 | 1u << 30 |
               1u << 31);
        /* ECX: VBMI 1, VBMI2 6, VNNI 11, BITALG 12, VPOPCNTDQ 14 */
        c &= ~(1u << 1 | 1u << 6 | 1u << 11 | 1u << 12 | 1u << 14);
        /* EDX: 4VNNIW 2, 4FMAPS 3, VP2INTERSECT 8, FP16 23 */
        d &= ~(1u << 2 | 1u << 3 | 1u << 8 | 1u << 23);
    } else if (leaf == 7 && sub == 1) {
        a &= ~(1u << 5); /* AVX512_BF16 */
    } else if (leaf == 0xd && sub == 0) {
        a &= ~(7u << 5); /* the opmask and ZMM state components */
    }
    g[REG_RAX] = a;
    g[REG_RBX] = b;
    g[REG_RCX] = c;
    g[REG_RDX] = d;
    g[REG_RIP] += 2;
}

__attribute__((constructor)) static void hide_avx512(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, NULL) != 0 || set_cpuid_faulting(1) != 0) {
        static const char msg[] = "avx2_only.so: this CPU or kernel has no CPUID faulting "
                                  "(cpuid_fault in /proc/cpuinfo): cannot hide AVX-512\n";
        ssize_t w = write(2, msg, sizeof msg - 1);
        (void)w;
        _exit(3);
    }
}
