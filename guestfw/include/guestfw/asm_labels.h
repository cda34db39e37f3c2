/* For the images' assembly: `function NAME` starts a global function, `label NAME` marks a global
 * address inside one (the instruction a test compares a saved RIP against). Include from .S. */
#pragma once

.macro function name
  .globl \name
  .type \name, @function
\name:
.endm

.macro label name
  .globl \name
\name:
.endm
