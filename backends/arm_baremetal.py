"""Bare-metal support for the Cortex-M targets: boards, startup file and linker script.

Both QEMU boards (mps2-an386 for the M4, mps3-an547 for the M55) have RAM at 0x0 and
0x20000000, and at least 4 MiB at 0x21000000 (checked by writing and reading back). The one
linker script places code, read-only data and the initial values of .data at 0x0 (512 KiB), .data,
.bss, heap and stack at 0x20000000 (512 KiB), and the harness's tensor arena at 0x21000000.

The startup file (no C runtime start files: rdimon's crt0 moves the stack to where QEMU's
semihosting says the heap ends, which breaks malloc inside newlib's stdio) enables the FPU and
MVE (CPACR bits 20-23), copies .data from its load address, zeroes .bss, opens the semihosting
handles and calls main(). A fault exits through semihosting with status 99 instead of hanging.
"""

from __future__ import annotations

from dataclasses import dataclass

ARENA_SECTION = ".lw_arena"
ARENA_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Board:
    """A Cortex-M core, its compiler flags and the QEMU machine that emulates it."""

    core: str  # the target name
    cpu_flags: tuple[str, ...]
    machine: str
    features: str  # what the generated code uses, for docs and messages


BOARDS: dict[str, Board] = {
    "cortex-m4": Board("cortex-m4", ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard",
                                     "-mfpu=fpv4-sp-d16"), "mps2-an386",
                       "Armv7E-M: DSP (SMLAD dual 16-bit MAC), single-precision FPU"),
    "cortex-m55": Board("cortex-m55", ("-mcpu=cortex-m55", "-mthumb", "-mfloat-abi=hard"),
                        "mps3-an547", "Armv8.1-M: Helium (MVE) integer and float vectors, FPU"),
}

STARTUP = r"""/* Startup for the loopweave Cortex-M harness (backends/arm_baremetal.py). */
#include <stdint.h>
#include <stdlib.h>

extern uint32_t __data_load__, __data_start__, __data_end__, __bss_start__, __bss_end__;
extern uint32_t __stack;
extern void initialise_monitor_handles(void);
extern int main(void);

void _init(void) {}
void _fini(void) {}

void lw_reset(void) {
  volatile uint32_t *cpacr = (volatile uint32_t *)0xE000ED88u;
  *cpacr |= 0xFu << 20; /* full access to CP10/CP11: the FPU and MVE */
  __asm volatile("dsb\n isb");
  uint32_t *src = &__data_load__, *dst = &__data_start__;
  while (dst < &__data_end__) *dst++ = *src++;
  for (dst = &__bss_start__; dst < &__bss_end__;) *dst++ = 0;
  initialise_monitor_handles();
  exit(main());
}

static void lw_fault_exit(void) { exit(99); }

/* Return from the fault into lw_fault_exit: semihosting from a fault handler locks up. */
void lw_fault(void) {
  uint32_t *frame;
  __asm volatile("tst lr, #4\n ite eq\n mrseq %0, msp\n mrsne %0, psp" : "=r"(frame));
  frame[6] = (uint32_t)(uintptr_t)lw_fault_exit & ~1u;
  frame[7] = 0x01000000u; /* xPSR: Thumb state */
}

__attribute__((section(".vectors"), used))
static void (*const lw_vectors[16])(void) = {
  (void (*)(void))(uintptr_t)&__stack, lw_reset, lw_fault, lw_fault, lw_fault, lw_fault,
  lw_fault, 0, 0, 0, 0, lw_fault, lw_fault, 0, lw_fault, lw_fault};
"""

LINKER_SCRIPT = f"""/* Linker script for the loopweave Cortex-M harness (mps2-an386, mps3-an547). */
MEMORY {{
  CODE (rx)   : ORIGIN = 0x00000000, LENGTH = 512K
  RAM (rwx)   : ORIGIN = 0x20000000, LENGTH = 512K
  ARENA (rw)  : ORIGIN = 0x21000000, LENGTH = {ARENA_BYTES}
}}
ENTRY(lw_reset)
SECTIONS {{
  .text : {{
    KEEP(*(.vectors)) *(.text*) *(.rodata*) KEEP(*(.init)) KEEP(*(.fini))
    . = ALIGN(4);
    __preinit_array_start = .; KEEP(*(.preinit_array)) __preinit_array_end = .;
    __init_array_start = .; KEEP(*(SORT(.init_array.*))) KEEP(*(.init_array))
    __init_array_end = .;
    __fini_array_start = .; KEEP(*(.fini_array*)) __fini_array_end = .;
  }} > CODE
  .ARM.exidx : {{ *(.ARM.exidx*) }} > CODE
  .data : {{ . = ALIGN(4); __data_start__ = .; *(.data*) . = ALIGN(4); __data_end__ = .; }}
    > RAM AT > CODE
  __data_load__ = LOADADDR(.data);
  .bss (NOLOAD) : {{ . = ALIGN(4); __bss_start__ = .; *(.bss*) *(COMMON) . = ALIGN(4);
    __bss_end__ = .; }} > RAM
  end = .; __end__ = .;
  __stack = ORIGIN(RAM) + LENGTH(RAM);
  {ARENA_SECTION} (NOLOAD) : {{ *({ARENA_SECTION}) }} > ARENA
}}
"""

SUPPORT_FILES = {"startup.c": STARTUP, "link.ld": LINKER_SCRIPT}
LINK_FLAGS = ("--specs=rdimon.specs", "-nostartfiles", "-T", "link.ld", "-lm")
