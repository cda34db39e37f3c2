/* Everything an image uses. An image defines guest_main(); guestfw calls it once the CPU is in long
 * mode with COM1 and the IDT ready, and passes its return value to guest_exit(). */
#pragma once

#include "guestfw/exceptions.h"
#include "guestfw/exit.h"
#include "guestfw/format.h"
#include "guestfw/multiboot.h"
#include "guestfw/serial.h"
#include "guestfw/start_info.h"
#include "guestfw/string.h"
#include "guestfw/x86.h"

int guest_main(void);

/* Linker-script symbols: the image's extent and its stack. */
extern char __image_start[], __image_end[];
extern char __bss_start[], __bss_end[];
extern char __stack_bottom[], __stack_top[];
