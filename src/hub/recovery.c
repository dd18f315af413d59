/* recovery: the recovered/not-recovered decision (see recovery.h). */
#include <string.h>
#include "hub/recovery.h"

int recovery_decide(uint64_t req_offset, const char *req_epoch,
                    const engine_stream_top *top, const engine_pub *pubs,
                    size_t n) {
    if (req_epoch && req_epoch[0] && strcmp(req_epoch, top->epoch) != 0)
        return 0;                                  /* history was lost */
    if (n == 0) return top->offset == req_offset;
    return pubs[0].offset == req_offset + 1 && pubs[n - 1].offset == top->offset;
}
