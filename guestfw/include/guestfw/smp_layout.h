/* Where the AP start-up trampoline runs (shared by ap_trampoline.S and smp.c): 4 KiB aligned and
 * below 1 MiB as a startup IPI's vector requires (vector = address >> 12). 0x70000 is RAM in both
 * drvm's and QEMU's memory maps and away from their boot structures (docs/vmm.md). */
#pragma once

#define GUESTFW_AP_TRAMPOLINE 0x70000
#define GUESTFW_AP_STACK_SIZE 16384
