/* command: decoding one client command of the Centrifugo JSON protocol
 * (protocol.md A3/A5) into a C struct. One line of a (possibly
 * newline-batched) WebSocket message is one command. Raw JSON fields (data)
 * are validated and re-encoded compactly, so they never contain a raw
 * newline and can be embedded as they are.
 *
 * Bad input (not JSON, not an object, wrong field types, a missing id where
 * one is required, out-of-range numbers) is a decode error: the caller
 * closes the connection with 3501 (bad request). */
#ifndef PLAZA_COMMAND_H
#define PLAZA_COMMAND_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

typedef enum {
    CMD_PONG = 0,          /* {} : answer to a server ping */
    CMD_CONNECT,
    CMD_SUBSCRIBE,
    CMD_UNSUBSCRIBE,
    CMD_PUBLISH,
    CMD_PRESENCE,
    CMD_PRESENCE_STATS,
    CMD_HISTORY,
    CMD_PING,
    CMD_SEND,
    CMD_RPC,
    CMD_REFRESH,
    CMD_SUB_REFRESH,
    CMD_COUNT
} cmd_type;

typedef struct proto_cmd {
    uint32_t id;              /* 0 only for PONG and SEND */
    cmd_type type;
    json_t *root;             /* owns the strings below */
    /* strings (NULL when absent; "" allowed) */
    const char *channel;      /* subscribe, unsubscribe, publish, presence, presence_stats, history, sub_refresh */
    const char *token;        /* connect, subscribe, refresh, sub_refresh */
    const char *method;       /* rpc */
    const char *name;         /* connect: client name */
    const char *version;      /* connect: client version */
    const char *epoch;        /* subscribe: recovery epoch */
    /* raw JSON (compact, malloc'd, NULL when absent): publish/rpc/send/connect/subscribe data */
    char *data;
    size_t data_len;
    /* subscribe */
    int recover, positioned, recoverable, join_leave;
    uint64_t offset;          /* subscribe: recovery offset */
    int64_t flag;             /* subscribe: flag bits (bit 2 = reject unrecovered) */
    int sub_type;             /* subscribe: type (0 = stream; 1 map, 2 map clients, 3 map users) */
    int phase;                /* subscribe (maps): 2 state, 1 stream, 0 live */
    const char *cursor;       /* subscribe (maps): where the next state page starts */
    json_t *tf;               /* subscribe: tags filter (borrowed; maps refuse it) */
    const char *delta;        /* subscribe: delta compression asked ("fossil"); not offered */
    /* publish (maps): type 1 writes key, or removes it */
    int pub_type;
    const char *key;
    int removed;
    /* history; subscribe (maps): page size */
    int32_t limit;
    int has_since;
    uint64_t since_offset;
    const char *since_epoch;
    int reverse;
    /* connect: subs map channel -> {recover, offset, epoch} (borrowed from root) */
    json_t *subs;
} proto_cmd;

/* Decodes one command from line[0..len). Returns 0, or -1 with a short
 * reason in err (the caller then closes with 3501). On success the caller
 * must call proto_cmd_free. */
int proto_cmd_decode(const char *line, size_t len, proto_cmd *cmd,
                     char *err, size_t errlen);

void proto_cmd_free(proto_cmd *cmd);

/* The request field name of a command type ("connect", "subscribe", ...). */
const char *proto_cmd_name(cmd_type t);

/* Validates raw JSON text (any value) and returns it re-encoded compactly
 * (no raw newlines) in a malloc'd buffer, or NULL if it is not JSON. Used by
 * the server API for `data` and `info`. */
char *proto_json_compact(const json_t *value, size_t *len);

#endif
