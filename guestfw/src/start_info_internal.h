#pragma once

#include <stdint.h>

/* Records the start_info (0: none) for the guest_start_info() family. */
void guestfw_start_info_init(uint64_t paddr);
