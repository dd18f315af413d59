/* ws_echo: a WebSocket handler for tests and debugging, enabled only by the
 * debug_echo option. It echoes every message back unchanged, except a text
 * message starting with "broadcast:", whose remainder is sent to every
 * echo connection on every worker (the fan-out path of the net layer). */
#ifndef PLAZA_WS_ECHO_H
#define PLAZA_WS_ECHO_H

#include "net/conn.h"

extern const ws_handler ws_echo_handler;

#endif
