"""What the host CPU can do fast: the instruction-set flags that decide int8 and fp16 speed.

int8 matrix kernels in onnxruntime (MLAS) take a different path with VNNI (one instruction that
multiplies u8×s8 and accumulates in int32) than without it (pairs summed in int16, which can
saturate). Quantization defaults and the report depend on which path this machine takes.
"""

from __future__ import annotations

import platform
from pathlib import Path

# Flags worth reporting; Linux /proc/cpuinfo names. AMX shows up as amx_tile / amx_int8 / amx_bf16.
INTERESTING = (
    "sse4_1", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni",
    "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16",
    "asimd", "asimddp", "fphp", "asimdhp", "i8mm",  # arm64: NEON, dot-product, fp16, int8 matmul
)


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The INTERESTING flags this CPU reports; empty where they cannot be read (macOS, Windows)."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return _fallback_flags()
    found: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        # x86 calls the line "flags", arm64 "Features"; every core repeats it, the first suffices
        if key.strip() in ("flags", "Features"):
            found.update(value.split())
            break
    return frozenset(found.intersection(INTERESTING))


def has_vnni(flags: frozenset[str] | None = None) -> bool:
    """True when int8 dot products accumulate without int16 saturation (x86 VNNI or AMX)."""
    flags = cpu_flags() if flags is None else flags
    return bool(flags & {"avx512_vnni", "avx_vnni", "amx_int8"})


def is_x86(machine: str | None = None) -> bool:
    """This host, or ``machine`` (platform.machine() as a report's environment recorded it)."""
    return (machine or platform.machine()).lower() in ("x86_64", "amd64", "i386", "i686", "x86")


def cpu_name(cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    try:
        for line in Path(cpuinfo).read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Hardware", "Model"):
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _fallback_flags() -> frozenset[str]:
    # Without /proc/cpuinfo only the architecture is certain: every arm64 core has NEON (asimd).
    # Claiming more (e.g. VNNI on an unknown x86) would pick defaults that saturate int8 sums.
    machine = platform.machine().lower()
    if machine in ("arm64", "aarch64"):
        return frozenset({"asimd"})
    return frozenset()
