// SPDX-License-Identifier: MIT
// Compile check: the public xenstore.h builds on its own (compiled into the
// xenstore unit suite; the function is never called).
#include "xenstore/include/xenstore.h"

xs_transaction_t check_xenstore_hdr_xs(void);
xs_transaction_t check_xenstore_hdr_xs(void)
{
	return XBT_NULL;
}
