/* codes: the Centrifugo client protocol's error codes (in replies) and
 * disconnect codes (WebSocket close codes), protocol.md A9/A10. Close codes
 * below 3500 make clients reconnect; 3500..3999 are terminal. */
#ifndef PLAZA_CODES_H
#define PLAZA_CODES_H

enum {
    ERR_INTERNAL = 100,            /* temporary */
    ERR_UNAUTHORIZED = 101,
    ERR_UNKNOWN_CHANNEL = 102,
    ERR_PERMISSION_DENIED = 103,
    ERR_METHOD_NOT_FOUND = 104,
    ERR_ALREADY_SUBSCRIBED = 105,
    ERR_LIMIT_EXCEEDED = 106,
    ERR_BAD_REQUEST = 107,
    ERR_NOT_AVAILABLE = 108,
    ERR_TOKEN_EXPIRED = 109,
    ERR_EXPIRED = 110,
    ERR_TOO_MANY_REQUESTS = 111,   /* temporary */
    ERR_UNRECOVERABLE_POSITION = 112,
};

enum {
    DISC_SHUTDOWN = 3001,
    DISC_INTERNAL = 3004,
    DISC_EXPIRED = 3005,
    DISC_SUB_EXPIRED = 3006,
    DISC_SLOW = 3008,
    DISC_WRITE_ERROR = 3009,
    DISC_INSUFFICIENT_STATE = 3010,
    DISC_FORCE_RECONNECT = 3011,
    DISC_NO_PONG = 3012,
    DISC_TOO_MANY_REQUESTS = 3013,
    DISC_INVALID_TOKEN = 3500,
    DISC_BAD_REQUEST = 3501,
    DISC_STALE = 3502,
    DISC_FORCE_DISCONNECT = 3503,
    DISC_CONNECTION_LIMIT = 3504,
    DISC_CHANNEL_LIMIT = 3505,
    DISC_PERMISSION_DENIED = 3507,
};

/* Unsubscribe push codes. */
enum {
    UNSUB_SERVER = 2000,
    UNSUB_INSUFFICIENT = 2500,
    UNSUB_EXPIRED = 2501,
};

/* Short message for an error code. */
static inline const char *proto_error_message(int code) {
    switch (code) {
    case ERR_INTERNAL: return "internal server error";
    case ERR_UNAUTHORIZED: return "unauthorized";
    case ERR_UNKNOWN_CHANNEL: return "unknown channel";
    case ERR_PERMISSION_DENIED: return "permission denied";
    case ERR_METHOD_NOT_FOUND: return "method not found";
    case ERR_ALREADY_SUBSCRIBED: return "already subscribed";
    case ERR_LIMIT_EXCEEDED: return "limit exceeded";
    case ERR_BAD_REQUEST: return "bad request";
    case ERR_NOT_AVAILABLE: return "not available";
    case ERR_TOKEN_EXPIRED: return "token expired";
    case ERR_EXPIRED: return "expired";
    case ERR_TOO_MANY_REQUESTS: return "too many requests";
    case ERR_UNRECOVERABLE_POSITION: return "unrecoverable position";
    default: return "error";
    }
}

#endif
