#pragma once

#include <stdint.h>

#include "guestfw/boot_state.h"

/* Records the boot information (0: none) for the guest_start_info() family; Multiboot's is
 * translated into an hvm_start_info first. */
/* protocol: GUESTFW_BOOT_PVH or GUESTFW_BOOT_MULTIBOOT. */
void guestfw_start_info_init(uint64_t paddr, uint32_t protocol);
